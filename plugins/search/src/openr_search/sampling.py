"""Searchers that sample whole solutions: greedy, majority (self-consistency), best-of-n."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from openr_core import Problem, SearchResult, Searcher
from openr_core.config import count
from openr_core.evaluation import reduce_scores
from openr_search.common import Round, SearchConfig, choose, solution


def _results(task, problems, rnd: Round, candidates, chosen, extra=None) -> list[SearchResult]:
    out = []
    for i, problem in enumerate(problems):
        sols = [solution(task, problem, text, tokens) for text, tokens, _ in candidates[i]]
        pick = chosen[i]
        out.append(SearchResult(problem.id, sols[pick].answer if pick is not None else None,
                                sols[pick] if pick is not None else None, sols, rnd.budgets[i],
                                (extra or [{}] * len(problems))[i]))
    return out


@attrs.frozen
class GreedyConfig:
    max_tokens: int = count(256)


class Greedy(Searcher):
    """One greedy (temperature 0) solution per problem."""

    Config = GreedyConfig

    def search(self, problems: Sequence[Problem], *, task, generator, reward_model=None) -> list[SearchResult]:
        rnd = Round(problems, task, generator, None, SearchConfig(n=1, max_tokens=self.config.max_tokens))
        candidates = rnd.sample(range(len(problems)), 1, 0.0)
        return _results(task, problems, rnd, candidates, [0] * len(problems))


class Majority(Searcher):
    """Self-consistency: majority vote over n sampled solutions."""

    Config = SearchConfig

    def search(self, problems, *, task, generator, reward_model=None) -> list[SearchResult]:
        c = self.config
        rnd = Round(problems, task, generator, None, c)
        candidates = rnd.sample(range(len(problems)), c.n, c.temperature)
        chosen = [choose(task, [t for t, _, _ in cands], None, "majority") for cands in candidates]
        return _results(task, problems, rnd, candidates, chosen)


class BestOfN(Searcher):
    """n sampled solutions scored by a reward model; reducer x selection (max, vote, weighted vote)."""

    Config = SearchConfig

    def search(self, problems, *, task, generator, reward_model=None) -> list[SearchResult]:
        c = self.config
        if reward_model is None:
            raise ValueError("best-of-n needs a reward_model")
        rnd = Round(problems, task, generator, reward_model, c)
        candidates = rnd.sample(range(len(problems)), c.n, c.temperature)
        flat = [(i, text) for i, cands in enumerate(candidates) for text, _, _ in cands]
        scores = iter(rnd.score_texts(flat))
        chosen, extra = [], []
        for cands in candidates:
            values = [reduce_scores(next(scores), c.reducer) for _ in cands]
            chosen.append(choose(task, [t for t, _, _ in cands], values, c.selection))
            extra.append({"values": values})
        return _results(task, problems, rnd, candidates, chosen, extra)
