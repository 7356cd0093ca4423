"""SCAN: self-denoising Monte Carlo annotation (Ding et al. 2025, arXiv 2509.16548).

MC labels are noisy where the completer is weak on a problem: it fails from correct prefixes
too, so MC puts the first error too early. SCAN measures the completer's *self-confidence*
on each problem, SC(q) = the fraction of its ``k`` rollouts from the bare question that reach
the right answer, and uses it three ways:

1. a solution whose final answer is right is labelled all-good, with no rollouts;
2. a wrong solution is MC-annotated (:meth:`MCLabeler.estimates`, k rollouts per prefix) only
   when SC(q) > ``min_confidence``; otherwise it is dropped (the completer's MC would be noise);
3. the predicted first error is the first step with MC = 0 (the graded wrong answer at the
   latest); the ``window`` steps before it get the soft label min(MC / SC, 1) (MC rescaled to
   what this completer reaches from the root), earlier steps 1, the error and later steps 0.

Hard labels are first-error labels at the predicted error; train on the soft ones
(``soft_labels: true`` in the prm trainer). Rollout cost: k per problem for SC, plus MC's for
the kept wrong solutions only.
"""

from __future__ import annotations

import attrs

from openr_core import LabelledExample
from openr_core.config import count, number
from openr_label.common import RolloutConfig, first_error_of, labels_from_first_error
from openr_label.mc import MCLabeler


@attrs.frozen
class ScanConfig(RolloutConfig):
    """``min_confidence``: wrong solutions to problems where the completer's self-confidence is
    at most this are dropped (the paper's ε). ``window``: how many steps before the predicted
    error get the soft label min(MC / SC, 1) (the paper's d; 2 was its best)."""

    min_confidence: float = number(0.0, minimum=0, maximum=1)
    window: int = count(2, minimum=0)


def scan_soft_labels(estimates: list[float], confidence: float, window: int) -> tuple[int, list[float]]:
    """(predicted first error, soft labels) from a wrong solution's MC ``estimates`` (the last
    one: its graded answer, 0) and the completer's self-confidence (> 0)."""
    error = first_error_of([v > 0 for v in estimates])
    if error == -1:
        error = len(estimates) - 1  # a wrong answer: its last step is wrong whatever MC said
    soft = [1.0 if i < error - window else min(estimates[i] / confidence, 1.0) if i < error else 0.0
            for i in range(len(estimates))]
    return error, soft


class ScanLabeler(MCLabeler):
    """SCAN: MC labels rescaled by the completer's self-confidence; right answers need no rollouts."""

    Config = ScanConfig

    def label_solutions(self, problems, solutions, *, task, generator):
        c = self.config
        cache = self.rollout_cache(task, generator)
        fresh = set(cache.fill([(p, ()) for p in problems]))  # self-confidence: k rollouts from the root
        confidence = {p.id: cache.get(p, ()).value for p in problems}
        right = [[task.grade(p, task.join_steps(s)).correct for s in sols] for p, sols in zip(problems, solutions)]
        annotate = [[s for s, ok in zip(sols, oks) if not ok] if confidence[p.id] > c.min_confidence else []
                    for p, sols, oks in zip(problems, solutions, right)]
        found = self.estimates(cache, problems, annotate, grade_final=True)
        out = []
        for problem, sols, oks, mc in zip(problems, solutions, right, found):
            root = cache.get(problem, ())
            charge = (root.fresh, root.tokens) if (problem, ()) in fresh else (0, 0)  # on the problem's first example
            mc = iter(mc)
            sc = confidence[problem.id]
            for steps, ok in zip(sols, oks):
                n = len(steps)
                if ok:
                    error, soft, rollouts, tokens = -1, [1.0] * n, 0, 0
                elif sc > c.min_confidence:
                    estimates, rollouts, tokens = next(mc)
                    error, soft = scan_soft_labels(estimates, sc, c.window)
                else:
                    self.stats["dropped"] += 1
                    continue
                rollouts, tokens = rollouts + charge[0], tokens + charge[1]
                self.stats.update(rollouts=rollouts, tokens=tokens, solutions=1, examples=1)
                charge = (0, 0)
                out.append(LabelledExample(problem.question, tuple(steps), labels_from_first_error(n, error), soft,
                                           problem.id, {"labeler": "scan", "rollouts": rollouts, "tokens": tokens,
                                                        "confidence": sc}))
            if charge != (0, 0):  # every solution dropped: the root rollouts still count
                self.stats.update(rollouts=charge[0], tokens=charge[1])
        return out
