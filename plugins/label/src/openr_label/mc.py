"""Math-Shepherd labelling: k rollouts from every step prefix of every solution."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from openr_core import LabelledExample, Problem
from openr_label.common import (RolloutCache, RolloutConfig, SolutionLabeler, Steps, first_error_of,
                                labels_from_first_error)


@attrs.frozen
class MCConfig(RolloutConfig):
    """``n_solutions`` sampled at ``temperature`` per problem are labelled; each step prefix gets
    ``k`` rollouts at ``rollout_temperature`` (up to ``rollout_max_tokens``). ``grade_final``:
    the complete solution is graded directly instead of rolled out. ``monotone``: every step
    after the first one with MC = 0 is labelled bad too (first-error semantics); otherwise a
    step's hard label is just MC > 0 (the paper's)."""

    grade_final: bool = True
    monotone: bool = True


class MCLabeler(SolutionLabeler):
    """Math-Shepherd: hard label = some rollout from the step's prefix is right, soft = fraction right."""

    Config = MCConfig

    def rollout_cache(self, task, generator) -> RolloutCache:
        c = self.config
        return RolloutCache(task, self.completer(generator), k=c.k, temperature=c.rollout_temperature,
                            max_tokens=c.rollout_max_tokens, seed=c.seed)

    def estimates(self, cache: RolloutCache, problems: Sequence[Problem], solutions: Sequence[Sequence[Steps]],
                  grade_final: bool) -> list[list[tuple[list[float], int, int]]]:
        """Per problem, per solution: (MC estimate of every step, rollouts, tokens charged to it).
        Every prefix not cached yet is rolled out in ONE generator call; each rollout is charged
        to one solution only (the first whose prefix it is)."""
        items = []
        for problem, sols in zip(problems, solutions):
            for steps in sols:
                last = len(steps) - (1 if grade_final else 0)
                items += [(problem, tuple(steps[: i + 1])) for i in range(last)]
        charged = set(cache.fill(items))
        out = []
        for problem, sols in zip(problems, solutions):
            found = []
            for steps in sols:
                steps = tuple(steps)
                values, rollouts, tokens = [], 0, 0
                for i in range(len(steps)):
                    prefix = steps[: i + 1]
                    if grade_final and i == len(steps) - 1:
                        est = cache.grade_final(problem, prefix)
                    else:
                        est = cache.get(problem, prefix)
                        if (problem, prefix) in charged:
                            charged.discard((problem, prefix))
                            rollouts, tokens = rollouts + est.fresh, tokens + est.tokens
                    values.append(est.value)
                found.append((values, rollouts, tokens))
            out.append(found)
        return out

    def label_solutions(self, problems, solutions, *, task, generator):
        c = self.config
        cache = self.rollout_cache(task, generator)
        out = []
        for problem, sols, found in zip(problems, solutions, self.estimates(cache, problems, solutions, c.grade_final)):
            for steps, (estimates, rollouts, tokens) in zip(sols, found):
                hard = [v > 0 for v in estimates]
                if c.monotone:
                    hard = labels_from_first_error(len(steps), first_error_of(hard))
                self.stats.update(rollouts=rollouts, tokens=tokens, solutions=1, examples=1)
                out.append(LabelledExample(problem.question, tuple(steps), hard, estimates, problem.id,
                                           {"labeler": "mc", "rollouts": rollouts, "tokens": tokens}))
        return out
