"""Math-Shepherd labelling: k rollouts from every step prefix of every solution."""

from __future__ import annotations

import attrs

from openr_core import LabelledExample
from openr_label.common import RolloutCache, RolloutConfig, SolutionLabeler, first_error_of, labels_from_first_error


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

    def label_solutions(self, problems, solutions, *, task, generator):
        c = self.config
        cache = RolloutCache(task, self.completer(generator), k=c.k, temperature=c.rollout_temperature,
                             max_tokens=c.rollout_max_tokens, seed=c.seed)
        items = []
        for problem, sols in zip(problems, solutions):
            for steps in sols:
                last = len(steps) - (1 if c.grade_final else 0)
                items += [(problem, tuple(steps[: i + 1])) for i in range(last)]
        charged = set(cache.fill(items))  # ONE generator call for every prefix in the batch
        out = []
        for problem, sols in zip(problems, solutions):
            for steps in sols:
                steps = tuple(steps)
                estimates, rollouts, tokens = [], 0, 0
                for i in range(len(steps)):
                    prefix = steps[: i + 1]
                    if c.grade_final and i == len(steps) - 1:
                        est = cache.grade_final(problem, prefix)
                    else:
                        est = cache.get(problem, prefix)
                        if (problem, prefix) in charged:  # each rollout is counted on one example only
                            charged.discard((problem, prefix))
                            rollouts, tokens = rollouts + est.fresh, tokens + est.tokens
                    estimates.append(est.value)
                hard = [v > 0 for v in estimates]
                if c.monotone:
                    hard = labels_from_first_error(len(steps), first_error_of(hard))
                self.stats.update(rollouts=rollouts, tokens=tokens, solutions=1, examples=1)
                out.append(LabelledExample(problem.question, steps, hard, estimates, problem.id,
                                           {"labeler": "mc", "rollouts": rollouts, "tokens": tokens}))
        return out
