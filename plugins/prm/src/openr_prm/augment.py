"""Perturbed copies of correct solutions, labelled exactly by the task's step verifier.

A standard PRM data recipe ("gold solutions next to perturbed copies"): take a solution whose
steps are all correct, change one number in one step, and let the task's ``verify_steps``
say which steps are now wrong. Labels stay exact ground truth (a perturbation that happens
to give a correct step is labelled correct), so this works for any task that implements
``verify_steps`` and writes numbers in its steps.

``max_delta`` bounds how far the new number lies from the old one: a large bound gives far
errors (easy to see, a curriculum's first lesson), a small one near misses.

Without a verifier (or to stay with one kind of labels), :func:`labelled_copies` has the job's
labeller label a fixed pool of such copies instead (e.g. MC rollouts from a completer).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import attrs

from openr_core.errors import ConfigError, DataError
from openr_core.labelling import first_error_labels
from openr_core.types import LabelledExample, Problem

NUMBER = re.compile(r"-?\d+")


def perturb_number(step: str, rng: random.Random, low: int, high: int, max_delta: int | None = None) -> str | None:
    """``step`` with its last integer replaced by a different one in [low, high], at most
    ``max_delta`` away (None: anywhere in the range); None when the step has no integer or no
    other value is allowed."""
    matches = list(NUMBER.finditer(step))
    if not matches:
        return None
    m = matches[-1]
    old = int(m.group())
    lo, hi = low, high
    if max_delta is not None:
        lo, hi = max(low, old - max_delta), min(high, old + max_delta)
    choices = hi - lo + 1 - (lo <= old <= hi)
    if choices <= 0:
        return None
    new = lo + rng.randrange(choices)
    if lo <= old <= new:
        new += 1  # skip the old value
    return step[: m.start()] + str(new) + step[m.end():]


def is_gold(example: LabelledExample) -> bool:
    return bool(example.completions) and all(example.labels)


def perturb_steps(steps: Sequence[str], rng: random.Random, low: int, high: int, max_delta: int | None = None,
                  tries: int = 8) -> tuple[list[str], int] | None:
    """``steps`` with one number of one step changed, and that step's index (None if none could be)."""
    steps = list(steps)
    for _ in range(tries):
        k = rng.randrange(len(steps))
        changed = perturb_number(steps[k], rng, low, high, max_delta)
        if changed is not None:
            return steps[:k] + [changed] + steps[k + 1:], k
    return None


def perturbed_copy(example: LabelledExample, task, rng: random.Random, low: int, high: int,
                   max_delta: int | None = None, tries: int = 8) -> LabelledExample | None:
    """A copy of ``example`` with one number changed in one step, labelled by the task's verifier
    (None if no step could be changed or the task cannot verify the result)."""
    drawn = perturb_steps(example.completions, rng, low, high, max_delta, tries)
    if drawn is None:
        return None
    new, k = drawn
    verdicts = task.verify_steps(Problem(example.problem_id or "perturbed", example.prompt), new)
    if verdicts is None:
        return None
    return LabelledExample(example.prompt, new, first_error_labels(verdicts), None, example.problem_id,
                           {"perturbed_step": k, "outcome": all(verdicts), "gold_steps": list(example.completions)})


def labelled_copies(golds: Sequence[LabelledExample], problems: dict[str, Problem], labeler, task, generator,
                    n: int, low: int, high: int, seed: int) -> list[LabelledExample]:
    """``n`` perturbed copies of ``golds`` labelled by ``labeler.label_solutions`` (ONE call; e.g.
    Math-Shepherd MC labels, no verifier). ``problems`` by id give the labeller the gold answers."""
    rng = random.Random(seed)
    by_problem: dict[str, list] = {}
    for _ in range(n * 4):
        if sum(len(v) for v in by_problem.values()) >= n:
            break
        gold = rng.choice(golds)
        drawn = perturb_steps(gold.completions, rng, low, high)
        if drawn is not None and gold.problem_id in problems:
            by_problem.setdefault(gold.problem_id, []).append((tuple(drawn[0]), drawn[1], gold))
    ids = sorted(by_problem)
    labelled = labeler.label_solutions([problems[i] for i in ids], [[c[0] for c in by_problem[i]] for i in ids],
                                       task=task, generator=generator)
    copies = [c for i in ids for c in by_problem[i]]
    if len(labelled) != len(copies):
        raise DataError(f"trainer prm: the labeller returned {len(labelled)} labelled copies for {len(copies)}")
    return [attrs.evolve(e, meta={**e.meta, "perturbed_step": k, "gold_steps": list(gold.completions)})
            for e, (_, k, gold) in zip(labelled, copies)]


def delta_at(step: int, total: int, start: int | None, end: int | None, span: int) -> int | None:
    """The perturbation bound at training step ``step`` of ``total``: ``start`` moving linearly
    to ``end`` (None: unbounded, i.e. ``span``); None when both are unbounded."""
    if start is None and end is None:
        return None
    a = span if start is None else start
    b = span if end is None else end
    return max(1, round(a + (b - a) * step / max(1, total - 1)))


class PoolAugmenter:
    """Draws from a fixed pool of labelled copies (:func:`labelled_copies`), deterministically per step."""

    def __init__(self, pool: Sequence[LabelledExample], seed: int):
        if not pool:
            raise ConfigError("trainer prm: `augment` with `augment_labels: labeler` got no labelled copies")
        self.pool, self.seed = list(pool), seed

    def draw(self, step: int, n: int, max_delta: int | None = None) -> list[LabelledExample]:
        rng = random.Random(self.seed * 1_000_003 + step)
        return [rng.choice(self.pool) for _ in range(n)]


def corrupted_copy(example: LabelledExample, task, rng: random.Random) -> LabelledExample | None:
    """The task's consistently corrupted solution of ``example``'s problem
    (:meth:`Task.corrupted_solution`), labelled by its verifier (None if the task makes none); the
    correct solution it was drawn from is its ``gold_steps`` (the auxiliary target's source)."""
    problem = Problem(example.problem_id or "corrupted", example.prompt)
    steps = task.corrupted_solution(problem, rng)
    verdicts = task.verify_steps(problem, steps) if steps else None
    if verdicts is None:
        return None
    return LabelledExample(example.prompt, list(steps), first_error_labels(verdicts), None, example.problem_id,
                           {"outcome": all(verdicts), "corrupted": True, "gold_steps": list(example.completions)})


class Augmenter:
    """Draws perturbed copies of the gold examples of a training set, deterministically per step:
    one number changed, or (a fraction ``corrupt`` of them) the task's consistent corruptions."""

    def __init__(self, train: Sequence[LabelledExample], task, low: int, high: int, seed: int, corrupt: float = 0.0):
        if task is None:
            raise ConfigError("trainer prm: `augment` needs a task that can verify steps (give the job a `task:`)")
        self.golds = [e for e in train if is_gold(e)]
        if not self.golds:
            raise ConfigError("trainer prm: `augment` needs correct solutions in the training data")
        probe = self.golds[0]
        if task.verify_steps(Problem(probe.problem_id or "probe", probe.prompt), list(probe.completions)) is None:
            raise ConfigError("trainer prm: `augment` needs a task whose verify_steps checks these examples")
        self.task, self.low, self.high, self.seed, self.corrupt = task, low, high, seed, corrupt
        if corrupt and not any(corrupted_copy(g, task, random.Random(seed)) for g in self.golds[:20]):
            raise ConfigError("trainer prm: `augment_corrupt` needs a task that makes corrupted solutions "
                              "(Task.corrupted_solution) for these problems")

    def draw(self, step: int, n: int, max_delta: int | None) -> list[LabelledExample]:
        rng = random.Random(self.seed * 1_000_003 + step)
        n_corrupt = round(n * self.corrupt)
        out = []
        for _ in range(n * 50):
            if len(out) == n:
                break
            gold = rng.choice(self.golds)
            if len(out) < n_corrupt:
                copy = corrupted_copy(gold, self.task, rng)
            else:
                copy = perturbed_copy(gold, self.task, rng, self.low, self.high, max_delta)
            if copy is not None:
                out.append(copy)
        if len(out) < n:
            raise DataError(f"trainer prm: could not draw {n} perturbed copies from {len(self.golds)} correct solutions")
        return out
