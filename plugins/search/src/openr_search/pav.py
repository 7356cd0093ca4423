"""PAV-guided beam search (Setlur et al., "Rewarding Progress", arXiv 2410.08146).

Beam search in which a new path ``s + a`` is ranked by its effective reward
``PRM(s + a) + alpha * (Q(s + a) - V(s))``: the reward model's (reduced) score plus the step's
*progress* under a prover policy mu. Because a step moves the state deterministically,
``Q^mu(s, a) = V^mu(s + a)``, so each round needs one value per new path, and ``V(s)`` is the
parent's value from the round before (at the root, the mean over its children, which leaves
the ranking of first steps to the PRM: a constant shift).

Values come from either
- ``value_model`` (a reward-model section whose last step score predicts V, e.g. a PRM trained
  on Monte-Carlo labels), one extra reward-model call per round; or
- prover rollouts: ``rollouts`` completions of every unfinished new path by ``prover`` (a
  generator section; default the search's generator) at ``prover_temperature``, in one generator
  call; V is the mean reduced reward-model score of the completed rollouts, scored in the same
  reward-model call as the paths (test time has no gold answers, so the reward model stands in
  for the success check of the paper's training targets). A finished path's value is its own score.

Rollout tokens are generated tokens: they count against the budget like any other.
"""

from __future__ import annotations

import math

import attrs

from openr_core.config import number
from openr_search.common import BuildsOwn, Path, Round, check_section
from openr_search.tree import Beam, BeamConfig


@attrs.frozen
class PAVConfig(BeamConfig):
    """Beam fields plus ``alpha``, ``rollouts``, ``prover``, ``prover_temperature``, ``value_model``."""

    alpha: float = number(1.0, minimum=0)
    rollouts: int = 1
    prover: dict | None = None
    prover_temperature: float = number(1.0, minimum=0)
    value_model: dict | None = None

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        check_section("prover", self.prover, "generator")
        check_section("value_model", self.value_model, "reward_model")
        if self.rollouts < 1:
            raise ValueError(f"rollouts must be >= 1, got {self.rollouts}")


class PAVBeam(BuildsOwn, Beam):
    """Beam search ranked by PRM score + alpha x progress (Q - V) under a prover policy."""

    Config = PAVConfig

    def search(self, problems, *, task, generator, reward_model=None):
        self.values: dict[tuple[int, tuple[str, ...]], float] = {}
        return super().search(problems, task=task, generator=generator, reward_model=reward_model)

    def rank(self, rnd: Round, paths: list[Path]) -> dict[int, float]:
        c = self.config
        q = self.value_model_values(rnd, paths) if c.value_model else self.rollout_values(rnd, paths)
        out = {}
        parents: dict[tuple[int, tuple[str, ...]], list[float]] = {}
        for p, value in zip(paths, q):
            parents.setdefault((p.problem, tuple(p.steps[:-1])), []).append(value)
        for p, value in zip(paths, q):
            parent = (p.problem, tuple(p.steps[:-1]))
            v = self.values.get(parent)
            if v is None:  # the root: centre on its children
                v = sum(parents[parent]) / len(parents[parent])
            progress = value - v if math.isfinite(value) and math.isfinite(v) else 0.0
            out[id(p)] = p.value(c.reducer) + c.alpha * progress
        for p, value in zip(paths, q):
            self.values[(p.problem, tuple(p.steps))] = value
        return out

    def rollout_values(self, rnd: Round, paths: list[Path]) -> list[float]:
        c = self.config
        prover = self.own.get("generator", c.prover, rnd.generator)
        rollouts = rnd.complete(paths, c.rollouts, c.prover_temperature, prover)
        extra = [r for p, rs in zip(paths, rollouts) if not p.done for r in rs]
        rnd.score(list(paths) + extra)  # one reward-model call for the new paths and their rollouts
        return [sum(r.value(c.reducer) for r in rs) / len(rs) for rs in rollouts]

    def value_model_values(self, rnd: Round, paths: list[Path]) -> list[float]:
        rnd.score(paths)
        model = self.own.get("reward_model", self.config.value_model)
        return [s[-1] if s else 0.0 for s in rnd.score_steps(paths, model)]
