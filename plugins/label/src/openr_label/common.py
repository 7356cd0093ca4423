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

import attrs

from openr_core import GenerationRequest, LabelledExample, Labeler, Problem, SamplingParams, Task
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
    ``rollout_temperature`` (up to ``rollout_max_tokens``)."""

    n_solutions: int = 4
    temperature: float = 1.0
    max_tokens: int = 96
    k: int = 8
    rollout_temperature: float = 0.7
    rollout_max_tokens: int = 96
    seed: int = 0

    def __attrs_post_init__(self):
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")


@attrs.define
class MCEstimate:
    """``correct`` of ``k`` rollouts from a prefix reached the right answer; ``tokens`` spent."""

    correct: int
    k: int
    tokens: int = 0

    @property
    def value(self) -> float:
        return self.correct / self.k if self.k else 0.0


class RolloutCache:
    """MC estimates by (problem id, prefix), filled in batched rounds (ONE generator call each).

    A complete solution (the prefix is the whole solution) is graded directly, with no
    rollouts, when ``grade_final`` is set: its MC is 1 if its answer is right, else 0.
    """

    def __init__(self, task: Task, generator, *, k: int, temperature: float, max_tokens: int, seed: int):
        self.task, self.generator = task, generator
        self.k, self.temperature, self.max_tokens, self.seed = k, temperature, max_tokens, seed
        self.values: dict[tuple[str, Steps], MCEstimate] = {}
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
        """Roll out every (problem, prefix) not cached yet, all in ONE generator call.
        Returns the items that were newly rolled out (each once)."""
        todo, seen = [], set()
        for problem, prefix in items:
            key = self.key(problem, prefix)
            if key in self.values or key in seen:
                continue
            seen.add(key)
            todo.append((problem, tuple(prefix)))
        if not todo:
            return []
        requests = [GenerationRequest(
            self.task.prompt(p) + self.task.join_steps(prefix),
            SamplingParams(n=self.k, temperature=self.temperature, max_tokens=self.max_tokens,
                           seed=stable_seed(self.seed, p.id + "\x00" + "\x00".join(prefix))))
            for p, prefix in todo]
        results = self.generator.generate(requests)
        self.calls += 1
        for (p, prefix), result in zip(todo, results):
            text = self.task.join_steps(prefix)
            correct = sum(self.task.grade(p, text + c.text).correct for c in result.completions)
            self.values[self.key(p, prefix)] = MCEstimate(correct, len(result.completions),
                                                          sum(c.n_tokens for c in result.completions))
        return todo


class SolutionLabeler(Labeler):
    """Base: ``label`` samples ``n_solutions`` per problem, then ``label_solutions`` labels them.

    Subclasses' Configs have ``n_solutions``, ``temperature``, ``max_tokens`` and ``seed``.
    ``self.stats`` accumulates ``rollouts``, ``tokens`` (labelling tokens), ``sample_tokens``,
    ``solutions`` and ``examples`` over the labeller's lifetime.
    """

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        self.stats: Counter = Counter()

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
