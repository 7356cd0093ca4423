"""The `arith` task: seeded splits of arithmetic word problems with exact step checking."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from openr_core import ConfigError, Problem, Task
from openr_arith import problems as P

# Fixed split sizes and seeds: dev and test never change; ood has longer chains.
SPLIT_SIZES = {"dev": 500, "test": 1000, "ood": 500}


@attrs.frozen
class ArithConfig(P.Difficulty):
    """Difficulty knobs (see docs/arith.md), the seed of the unbounded train stream, and how
    many more operations the ``ood`` split has."""

    train_seed: int = 0
    ood_extra_steps: int = 3

    def difficulty(self, split: str = "test") -> P.Difficulty:
        extra = self.ood_extra_steps if split == "ood" else 0
        fields = {f.name: getattr(self, f.name) for f in attrs.fields(P.Difficulty)}
        return P.Difficulty(**{**fields, "min_steps": self.min_steps + extra, "max_steps": self.max_steps + extra})


class ArithTask(Task):
    """Multi-step arithmetic word problems with an exact step verifier."""

    Config = ArithConfig
    step_separator = "\n"
    error_types = P.ERROR_TYPES
    splits = ("train", "dev", "test", "ood")

    def __init__(self, config=None, **fields):
        try:
            super().__init__(config, **fields)
        except ValueError as e:
            raise ConfigError(f"task arith: {e}") from None
        self._cache: dict[str, P.ArithProblem] = {}

    def _make(self, split: str, index: int) -> P.ArithProblem:
        key = f"train-{self.config.train_seed}" if split == "train" else split
        return P.generate(key, index, self.config.difficulty(split))

    def load(self, split: str, limit: int | None = None) -> list[Problem]:
        if split not in self.splits:
            raise ConfigError(f"task arith: unknown split '{split}'; splits: {', '.join(self.splits)}")
        if split == "train":
            if limit is None:
                raise ConfigError("task arith: the train split is unbounded; give a limit")
            held_out = {self._make(s, i).question for s in ("dev", "test") for i in range(SPLIT_SIZES[s])}
            out, index = [], 0
            while len(out) < limit:
                p = self._make(split, index)
                if p.question not in held_out:
                    out.append(self._problem(split, index, p))
                index += 1
            return out
        size = SPLIT_SIZES[split] if limit is None else min(limit, SPLIT_SIZES[split])
        return [self._problem(split, i, self._make(split, i)) for i in range(size)]

    def _problem(self, split: str, index: int, p: P.ArithProblem) -> Problem:
        pid = f"arith-{split}-{index}"
        self._cache[p.question] = p
        solution = "\n".join(p.solution_steps())
        return Problem(pid, p.question, str(p.answer), {"solution": solution, "n_ops": len(p.ops)})

    def _parsed(self, problem: Problem) -> P.ArithProblem | None:
        parsed = self._cache.get(problem.question)
        if parsed is None:
            parsed = P.parse_question(problem.question)
        return parsed

    def prompt(self, problem: Problem) -> str:
        return problem.question + "\n"

    def extract_answer(self, text: str) -> str | None:
        return P.extract_answer(text)

    def reference_solution(self, problem: Problem) -> str | None:
        return problem.meta.get("solution")

    def verify_steps(self, problem: Problem, steps: Sequence[str]) -> list[bool] | None:
        parsed = self._parsed(problem)
        if parsed is None:
            return None
        return P.check_steps(parsed, [str(s) for s in steps])

    def first_error(self, problem: Problem, steps: Sequence[str]) -> int:
        """Index of the first wrong step (-1: none); raises ValueError for non-arith questions."""
        parsed = self._parsed(problem)
        if parsed is None:
            raise ValueError(f"problem {problem.id}: not an arith question")
        return P.first_error(parsed, [str(s) for s in steps])

    def corrupted_solution(self, problem: Problem, rng) -> list[str] | None:
        """A reference solution with one consistent error of a kind drawn uniformly from
        ``problems.CORRUPTIONS`` (None: not an arith question, or the kind does not apply)."""
        parsed = self._parsed(problem)
        return None if parsed is None else P.corrupted_solution(parsed, rng, rng.choice(P.CORRUPTIONS))

    def error_type(self, problem: Problem, steps: Sequence[str]) -> str | None:
        """One of ``problems.ERROR_TYPES`` for the first wrong step (None: no error, or not an arith question)."""
        parsed = self._parsed(problem)
        return None if parsed is None else P.error_type(parsed, [str(s) for s in steps])
