"""rStar (Qi et al., arXiv 2408.06195): MCTS generation plus a mutual-consistency discriminator.

1. Generation: this package's MCTS (``mcts`` fields) at a budget of ``n`` minus what the
   discriminator is expected to spend, so the total stays at ``n`` full-solution equivalents.
   Its finished paths are the candidates.
2. Discrimination: the ``checks`` best-valued distinct candidates are cut at a random point
   (uniform in ``[cut_low, cut_high]`` of their steps, seeded by the candidate) and a second
   generator, ``discriminator`` (a generator section; default the search's generator),
   completes each prefix ``check_samples`` times at ``check_temperature``, all in one call.
   A candidate is *consistent* when at least ``agree`` of its completions reach its answer.
3. The answer is chosen (``selection``, default a majority vote) among the consistent
   candidates; when none is, among all candidates (never with the gold answer: rStar's
   evaluation script fell back on it, see docs/search.md).

What differs from the paper: generation uses one action, "next step" (A1), with the reward
model's values in MCTS, instead of rStar's five actions (sub-questions, rephrasing) valued by
answer self-consistency; OpenR's ``rstar_mcts`` has the five actions but no discriminator.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import attrs

from openr_core import SearchResult, Searcher
from openr_core.config import number
from openr_search.common import BuildsOwn, Path, Round, check_section, choose, node_seed
from openr_search.mcts import MCTS, MCTSConfig


@attrs.frozen
class RStarConfig(MCTSConfig):
    """MCTS fields plus the discriminator's; see the module docstring."""

    selection: Literal["max", "majority", "weighted"] = "majority"
    checks: int = 4
    check_samples: int = 1
    check_temperature: float = number(0.0, minimum=0)
    cut_low: float = 0.2
    cut_high: float = 0.8
    agree: float = 0.5
    discriminator: dict | None = None

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        check_section("discriminator", self.discriminator, "generator")
        if not 0.0 <= self.cut_low <= self.cut_high <= 1.0:
            raise ValueError(f"need 0 <= cut_low <= cut_high <= 1, got {self.cut_low}, {self.cut_high}")
        if self.checks < 1 or self.check_samples < 1:
            raise ValueError("checks and check_samples must be >= 1")
        if self.generation_n < 1:
            raise ValueError(f"n ({self.n}) leaves no budget for generation after {self.checks} checks")

    @property
    def generation_n(self) -> int:
        """MCTS's share of ``n``: each check completes about 1 - mean cut of a solution."""
        checking = self.checks * self.check_samples * (1 - (self.cut_low + self.cut_high) / 2)
        return self.n - math.ceil(checking)


def cut_point(config: RStarConfig, problem, steps) -> int:
    """How many of a candidate's steps the discriminator sees (at least 0, at most all but one)."""
    frac = random.Random(node_seed(config.seed, problem, steps, "cut")).uniform(config.cut_low, config.cut_high)
    return min(len(steps) - 1, max(0, int(frac * len(steps))))


class RStar(BuildsOwn, Searcher):
    """rStar: MCTS candidates checked by a second generator completing masked prefixes."""

    Config = RStarConfig

    def search(self, problems, *, task, generator, reward_model=None) -> list[SearchResult]:
        c = self.config
        mcts_fields = {f.name: getattr(c, f.name) for f in attrs.fields(MCTSConfig)}
        generated = MCTS(MCTSConfig(**{**mcts_fields, "n": c.generation_n, "selection": "max"})).search(
            problems, task=task, generator=generator, reward_model=reward_model)
        rnd = Round(problems, task, generator, reward_model, c)
        checked = []  # (problem index, candidate index)
        prefixes = []
        for i, result in enumerate(generated):
            order = sorted(range(len(result.candidates)), key=lambda k: -result.meta["values"][k])
            distinct, seen = [], set()
            for k in order:
                if result.candidates[k].steps not in seen:
                    seen.add(result.candidates[k].steps)
                    distinct.append(k)
            for k in distinct[: c.checks]:
                steps = result.candidates[k].steps
                checked.append((i, k))
                prefixes.append(Path(i, list(steps[: cut_point(c, problems[i], steps)])))
        discriminator = self.own.get("generator", c.discriminator, generator)
        completions = rnd.complete(prefixes, c.check_samples, c.check_temperature, discriminator,
                                   [f"check{k}" for _, k in checked])
        consistent: dict[int, list[int]] = {i: [] for i in range(len(problems))}
        for (i, k), done in zip(checked, completions):
            answer = generated[i].candidates[k].answer
            agreeing = sum(1 for p in done if answer is not None and (a := task.extract_answer(task.join_steps(p.steps)))
                           is not None and task.same_answer(a, answer))
            if answer is not None and agreeing >= c.agree * len(done):
                consistent[i].append(k)
        out = []
        for i, result in enumerate(generated):
            pool = consistent[i] or list(range(len(result.candidates)))
            texts = [task.join_steps(result.candidates[k].steps) for k in pool]
            pick = choose(task, texts, [result.meta["values"][k] for k in pool], c.selection)
            best = result.candidates[pool[pick]] if pick is not None else None
            out.append(SearchResult(result.problem_id, best.answer if best else None, best, result.candidates,
                                    result.budget + rnd.budgets[i],
                                    {**result.meta, "checked": sum(1 for j, _ in checked if j == i),
                                     "consistent": consistent[i]}))
        return out
