"""OmegaPRM-style labelling: binary search for the first wrong step with MC estimates.

MC(prefix) = fraction of ``k`` rollouts from the prefix that reach the right answer. Assuming
a prefix with MC = 0 already contains the error (the paper's rule):

* MC(steps[:m]) = 0  → the first error is at or before step m-1;
* MC(steps[:m]) > 0  → steps[:m] is good, the error comes after it.

So ``lo`` (longest prefix known good, starts at 0) and ``hi`` (shortest known bad, starts at
the whole solution, graded directly) close in O(log n) rollout rounds instead of n. Every
round is ONE generator call for the midpoints of every solution being searched in the batch,
and MC values are cached by prefix, so solutions sharing a prefix share its rollouts.

A solution whose final answer is right is searched too (``search_correct``): a right answer
does not make its steps right (errors can cancel), so ``hi`` starts at the whole solution as
"no wrong step found yet" and stays there when every probed prefix has MC > 0 (labelled all
good). With ``search_correct = false`` such solutions are labelled all good at no cost.

Rollout reuse (``reuse_rollouts``): a rollout from a probed prefix that writes the solution's
next steps is also a rollout from those longer prefixes; when one of them is probed later,
the pooled samples count towards its ``k`` and only the rest are generated (see
``RolloutCache``). Only new rollouts are counted.

``search: exponential`` probes prefixes of 1, 2, 4, ... steps until one has MC = 0, then
bisects between the last good and that one (about 2 log e probes for a first error at step e).
The paper's rule fails where MC is not monotone: an error that a later error cancels leaves
the midpoint prefix on the right track (MC > 0), and bisection then places the first error
after it. Probing short prefixes first finds early errors before a cancelling one can hide
them; on arith with the backbone as completer it lifts first-error accuracy from 0.862 to
0.962 at k = 8 (docs/labelling.md).

Output: one example per labelled solution, hard labels inferred (steps before the found error
good, it and the rest bad). ``soft_labels`` stay None because most steps have no MC estimate;
``meta["mc"]`` holds the MC value of every prefix the search visited (None elsewhere).

When ``search_budget`` caps the number of solutions searched per problem, they are picked one
at a time by the paper's score Q + U with Q = alpha^(1 - MC) * beta^(len / L) and
U = c_puct * sqrt(sum N) / (1 + N): MC is the problem's root MC (fraction of its sampled
solutions that are right), len the solution's length in whitespace-separated tokens, N the
number of already-picked solutions through the same first step (sum N: all picked so far).
Unpicked wrong-answer solutions are dropped; unpicked right-answer ones are labelled all good.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs

from openr_core import LabelledExample
from openr_core.config import count, number
from openr_label.common import RolloutCache, RolloutConfig, SolutionLabeler, labels_from_first_error


@attrs.frozen
class OmegaPRMConfig(RolloutConfig):
    """``n_solutions`` sampled at ``temperature`` per problem; ``k`` rollouts per visited prefix
    at ``rollout_temperature``; ``search_budget`` (None: all) solutions per problem are
    binary-searched, chosen by Q + U with ``alpha``, ``beta``, ``length_scale`` (L) and
    ``c_puct``; ``search_correct``: right-answer solutions are searched too; ``reuse_rollouts``:
    rollouts passing through a later prefix count towards its estimate; ``search``: ``binary``
    (the paper's midpoint first) or ``exponential`` (prefixes of 1, 2, 4, ... steps, then bisect)."""

    search: Literal["binary", "exponential"] = "binary"
    search_budget: int | None = count(None, minimum=0)
    search_correct: bool = True
    reuse_rollouts: bool = True
    alpha: float = number(0.5, minimum=0)
    beta: float = number(0.9, minimum=0)
    length_scale: float = number(500.0, above=0)
    c_puct: float = number(0.125, minimum=0)


def selection_score(mc: float, length: float, n_branch: int, n_total: int, *, alpha: float = 0.5,
                    beta: float = 0.9, length_scale: float = 500.0, c_puct: float = 0.125) -> float:
    """OmegaPRM's Q + U: alpha^(1-MC) * beta^(len/L) + c_puct * sqrt(sum N) / (1 + N)."""
    q = alpha ** (1.0 - mc) * beta ** (length / length_scale)
    return q + c_puct * math.sqrt(n_total) / (1 + n_branch)


@attrs.define
class _Search:
    problem: object
    steps: tuple
    lo: int
    hi: int
    galloping: bool = False  # exponential search: still doubling, no bad prefix found yet
    rollouts: int = 0
    tokens: int = 0
    rounds: int = 0

    @property
    def mid(self) -> int:
        """The prefix length probed next."""
        if self.galloping and max(1, 2 * self.lo) < self.hi:
            return max(1, 2 * self.lo)
        return (self.lo + self.hi) // 2

    @property
    def done(self) -> bool:
        return self.hi - self.lo <= 1


class OmegaPRMLabeler(SolutionLabeler):
    """OmegaPRM: binary search for each wrong solution's first error with cached MC rollouts."""

    Config = OmegaPRMConfig

    def select(self, steps_list, correct, mc_root: float) -> list[int]:
        """Indices of the solutions to search, in pick order (Q + U, greedy)."""
        c = self.config
        candidates = [i for i, ok in enumerate(correct) if c.search_correct or not ok]
        if c.search_budget is None or len(candidates) <= c.search_budget:
            return candidates
        picked, branches = [], {}
        while len(picked) < c.search_budget:
            def score(i):
                steps = steps_list[i]
                length = sum(len(s.split()) for s in steps)
                return selection_score(mc_root, length, branches.get(steps[0], 0), len(picked), alpha=c.alpha,
                                       beta=c.beta, length_scale=c.length_scale, c_puct=c.c_puct)
            best = max((i for i in candidates if i not in picked), key=lambda i: (score(i), -i))
            picked.append(best)
            branches[steps_list[best][0]] = branches.get(steps_list[best][0], 0) + 1
        return picked

    def label_solutions(self, problems, solutions, *, task, generator):
        c = self.config
        cache = RolloutCache(task, self.completer(generator), k=c.k, temperature=c.rollout_temperature,
                             max_tokens=c.rollout_max_tokens, seed=c.seed, reuse=c.reuse_rollouts)
        searches: dict[tuple[int, int], _Search] = {}
        correct_of: dict[tuple[int, int], bool] = {}
        for pi, (problem, sols) in enumerate(zip(problems, solutions)):
            sols = [tuple(s) for s in sols]
            correct = [cache.grade_final(problem, s).correct > 0 for s in sols]
            mc_root = sum(correct) / len(correct) if correct else 0.0
            for si, ok in enumerate(correct):
                correct_of[pi, si] = ok
            for si in self.select(sols, correct, mc_root):
                searches[pi, si] = _Search(problem, sols[si], 0, len(sols[si]), c.search == "exponential")
        rounds = 0
        while True:  # one generator call per round, for the midpoints of every open search
            active = [s for s in searches.values() if not s.done]
            if not active:
                break
            new = set(cache.fill([(s.problem, s.steps[: s.mid]) for s in active]))
            rounds += 1
            for s in active:
                prefix = s.steps[: s.mid]
                est = cache.get(s.problem, prefix)
                if (s.problem, prefix) in new:  # count each rollout once, on the first solution that asked
                    new.discard((s.problem, prefix))
                    s.rollouts, s.tokens = s.rollouts + est.fresh, s.tokens + est.tokens
                s.rounds += 1
                if est.correct > 0:
                    s.lo = s.mid
                else:
                    s.hi, s.galloping = s.mid, False
        out = []
        for pi, (problem, sols) in enumerate(zip(problems, solutions)):
            for si, steps in enumerate(sols):
                steps = tuple(steps)
                search = searches.get((pi, si))
                if search is None and correct_of[pi, si]:
                    first, rollouts, tokens = -1, 0, 0
                elif search is None:
                    self.stats["unsearched"] += 1
                    continue
                else:
                    found = not (correct_of[pi, si] and search.hi == len(steps))
                    first, rollouts, tokens = (search.hi - 1 if found else -1), search.rollouts, search.tokens
                mc = []
                for i in range(len(steps)):
                    est = cache.get(problem, steps[: i + 1])
                    mc.append(None if est is None else est.value)
                self.stats.update(rollouts=rollouts, tokens=tokens, solutions=1, examples=1)
                out.append(LabelledExample(problem.question, steps, labels_from_first_error(len(steps), first), None,
                                           problem.id, {"labeler": "omegaprm", "rollouts": rollouts, "tokens": tokens,
                                                        "mc": mc, "search_rounds": search.rounds if search else 0}))
        self.stats["generator_calls"] += rounds
        return out
