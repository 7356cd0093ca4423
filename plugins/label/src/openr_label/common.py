"""What every labeller here shares: sampling the solutions to label, batched MC rollouts, costs.

Every labeller labels *given* solutions with ``label_solutions``; ``label`` samples
``n_solutions`` per problem first and then calls it, so a consensus labeller (or a benchmark)
can have two labellers judge exactly the same solutions.

Seeds depend only on the seed, the problem id and the prefix text, never on batch composition,
so the same prefix always gets the same rollouts (labellers sharing a seed agree on MC values).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from openr_core import GenerationRequest, LabelledExample, Labeler, Problem, SamplingParams, Task
from openr_core.config import ComponentSpec, component, count, number
from openr_core.evaluation import stable_seed

Steps = tuple[str, ...]


def first_error_of(labels: Sequence[bool]) -> int:
    """Index of the first False label, -1 when all are True."""
    return next((i for i, ok in enumerate(labels) if not ok), -1)


def labels_from_first_error(n: int, first_error: int) -> list[bool]:
    """Steps before ``first_error`` good, it and every later step bad (-1: all good)."""
    return [first_error < 0 or i < first_error for i in range(n)]


def sample_solutions(problems: Sequence[Problem], task: Task, generator, *, n: int, temperature: float,
                     max_tokens: int, seed: int, dedupe: bool = True) -> tuple[list[list[Steps]], list[int]]:
    """``n`` sampled solutions per problem (as step tuples, empty ones dropped) in ONE call,
    and the tokens spent per problem."""
    if not problems or n < 1:
        return [[] for _ in problems], [0] * len(problems)
    requests = [GenerationRequest(task.prompt(p), SamplingParams(
        n=n, temperature=temperature, max_tokens=max_tokens, seed=stable_seed(seed, f"{p.id}@solutions")))
        for p in problems]
    results = generator.generate(requests)
    solutions, tokens = [], []
    for result in results:
        seen, sols = set(), []
        for c in result.completions:
            steps = tuple(task.split_steps(c.text))
            if not steps or (dedupe and steps in seen):
                continue
            seen.add(steps)
            sols.append(steps)
        solutions.append(sols)
        tokens.append(sum(c.n_tokens for c in result.completions))
    return solutions, tokens


@attrs.frozen
class RolloutConfig:
    """Fields every rollout-based labeller has: ``n_solutions`` sampled at ``temperature`` (up to
    ``max_tokens``) per problem are labelled with ``k`` rollouts per prefix at
    ``rollout_temperature`` (up to ``rollout_max_tokens``). ``completer``: an optional generator
    section (``{type: ..., ...}``, checked like the job's) the rollouts come from instead of the
    job's generator, which still samples the solutions (Math-Shepherd's separate completer model)."""

    n_solutions: int = count(4)
    temperature: float = number(1.0, minimum=0)
    max_tokens: int = count(96)
    k: int = count(8)
    rollout_temperature: float = number(0.7, minimum=0)
    rollout_max_tokens: int = count(96)
    completer: Any = component("generator", optional=True)
    seed: int = 0


@attrs.define
class MCEstimate:
    """``correct`` of ``k`` rollouts from a prefix reached the right answer. ``fresh`` of them
    were generated for this prefix (``tokens`` spent on those); the other ``k - fresh`` were
    reused from rollouts of shorter prefixes that continued through this one (already paid for)."""

    correct: int
    k: int
    tokens: int = 0
    fresh: int | None = None

    def __attrs_post_init__(self):
        if self.fresh is None:
            self.fresh = self.k

    @property
    def value(self) -> float:
        return self.correct / self.k if self.k else 0.0


class RolloutCache:
    """MC estimates by (problem id, prefix), filled in batched rounds (ONE generator call each).

    A complete solution (the prefix is the whole solution) is graded directly, with no
    rollouts, when ``grade_final`` is set: its MC is 1 if its answer is right, else 0.

    ``reuse``: a rollout from prefix P whose text continues with steps s_1..s_j passes through
    the prefixes P+s_1, ..., P+s_1..s_j; the part after each of them is a sample of the policy
    continuing that longer prefix, so it is kept (its grade: the rollout's) in a pool. When such
    a prefix is estimated later, up to ``k`` pooled samples are used and only the rest are
    generated: still ``k`` samples per estimate, fewer new rollouts. Pooled samples are never
    charged twice (``MCEstimate.fresh`` counts the new ones).
    """

    def __init__(self, task: Task, generator, *, k: int, temperature: float, max_tokens: int, seed: int,
                 reuse: bool = False):
        self.task, self.generator = task, generator
        self.k, self.temperature, self.max_tokens, self.seed = k, temperature, max_tokens, seed
        self.reuse = reuse
        self.values: dict[tuple[str, Steps], MCEstimate] = {}
        self.pool: dict[tuple[str, Steps], list[bool]] = {}
        self.calls = 0

    def key(self, problem: Problem, prefix: Steps) -> tuple[str, Steps]:
        return (problem.id, tuple(prefix))

    def get(self, problem: Problem, prefix: Steps) -> MCEstimate | None:
        return self.values.get(self.key(problem, prefix))

    def grade_final(self, problem: Problem, steps: Steps) -> MCEstimate:
        key = self.key(problem, steps)
        if key not in self.values:
            ok = self.task.grade(problem, self.task.join_steps(steps)).correct
            self.values[key] = MCEstimate(int(ok), 1, 0)
        return self.values[key]

    def fill(self, items: Sequence[tuple[Problem, Steps]]) -> list[tuple[Problem, Steps]]:
        """Estimate every (problem, prefix) not cached yet, generating in ONE generator call.
        Returns the items that were newly estimated (each once)."""
        todo, seen = [], set()
        for problem, prefix in items:
            key = self.key(problem, prefix)
            if key in self.values or key in seen:
                continue
            seen.add(key)
            todo.append((problem, tuple(prefix)))
        if not todo:
            return []
        reused = {self.key(p, prefix): self.pool.get(self.key(p, prefix), [])[: self.k] if self.reuse else []
                  for p, prefix in todo}
        asks = [(p, prefix, self.k - len(reused[self.key(p, prefix)])) for p, prefix in todo]
        asks = [a for a in asks if a[2] > 0]
        requests = [GenerationRequest(
            self.task.prompt(p) + self.task.join_steps(prefix),
            SamplingParams(n=n, temperature=self.temperature, max_tokens=self.max_tokens,
                           seed=stable_seed(self.seed, p.id + "\x00" + "\x00".join(prefix))))
            for p, prefix, n in asks]
        results = self.generator.generate(requests) if requests else []
        self.calls += bool(requests)
        fresh: dict[tuple[str, Steps], tuple[list[bool], int]] = {}
        for (p, prefix, _), result in zip(asks, results):
            text = self.task.join_steps(prefix)
            grades = []
            for c in result.completions:
                grades.append(self.task.grade(p, text + c.text).correct)
                if self.reuse:
                    self._pool(p, prefix, c.text, grades[-1])
            fresh[self.key(p, prefix)] = (grades, sum(c.n_tokens for c in result.completions))
        for p, prefix in todo:
            key = self.key(p, prefix)
            grades, tokens = fresh.get(key, ([], 0))
            self.values[key] = MCEstimate(sum(reused[key]) + sum(grades), len(reused[key]) + len(grades), tokens,
                                          len(grades))
        return todo

    def _pool(self, problem: Problem, prefix: Steps, completion: str, correct: bool) -> None:
        """Record a rollout from ``prefix`` as a sample of every longer prefix it passes through
        (each step it writes completes one; the last step ends the rollout, so it adds nothing)."""
        steps = self.task.split_steps(completion)
        for j in range(1, len(steps)):
            self.pool.setdefault(self.key(problem, prefix + tuple(steps[:j])), []).append(bool(correct))


class SolutionLabeler(Labeler):
    """Base: ``label`` samples ``n_solutions`` per problem, then ``label_solutions`` labels them.

    Subclasses' Configs have ``n_solutions``, ``temperature``, ``max_tokens`` and ``seed``.
    ``self.stats`` accumulates ``rollouts``, ``tokens`` (labelling tokens), ``sample_tokens``,
    ``solutions`` and ``examples`` over the labeller's lifetime.
    """

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        self.stats: Counter = Counter()
        self._own = None

    def own_generator(self, spec: ComponentSpec | None, generator):
        """The generator built from ``spec`` (a checked generator section; built once, closed with
        the labeller), or the job's ``generator`` when ``spec`` is None."""
        if spec is None:
            return generator
        if self._own is None:
            self._own = spec.build()
        return self._own

    def completer(self, generator):
        """The generator rollouts come from: the config's ``completer`` section, else ``generator``."""
        return self.own_generator(getattr(self.config, "completer", None), generator)

    def close(self) -> None:
        if self._own is not None:
            self._own.close()
            self._own = None

    def sample(self, problems: Sequence[Problem], task: Task, generator) -> list[list[Steps]]:
        c = self.config
        if generator is None:
            raise ValueError(f"{type(self).__name__} needs a generator to sample solutions")
        solutions, tokens = sample_solutions(problems, task, generator, n=c.n_solutions, temperature=c.temperature,
                                             max_tokens=c.max_tokens, seed=c.seed)
        self.stats["sample_tokens"] += sum(tokens)
        return solutions

    def label(self, problems, *, task, generator=None) -> Iterator[LabelledExample]:
        problems = list(problems)
        solutions = self.sample(problems, task, generator)
        yield from self.label_solutions(problems, solutions, task=task, generator=generator)

    def label_solutions(self, problems: Sequence[Problem], solutions: Sequence[Sequence[Steps]], *, task: Task,
                        generator) -> list[LabelledExample]:
        """One example per given solution (``solutions[i]`` are problem i's step tuples), in order;
        a labeller may drop solutions it cannot label (the judge drops unparseable verdicts)."""
        raise NotImplementedError
