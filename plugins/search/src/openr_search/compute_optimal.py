"""Compute-optimal allocation (Snell et al., arXiv 2408.03314): pick the strategy per difficulty.

A cheap first pass, ``probe`` sampled solutions per problem scored by the reward model, gives
each problem's *predicted difficulty*: the mean reduced score of its probe samples (the
paper's label-free "model-predicted difficulty"). Problems fall into ``bins`` difficulty bins,
whose edges are the quantiles of the dev problems' difficulties.

The policy is learned on the dev split (``dev_split``, first ``dev_limit`` problems) the first
time the searcher runs: the probe, then every one of ``strategies`` (searcher sections:
majority, best-of-n, beam at several widths and budgets, ...) on all dev problems. Per bin it
takes the strategy that, over all bins together, answers the most dev problems correctly at an
average cost, probe included, of at most ``n`` solutions of the probe's mean length — the same
average budget as a fixed strategy at ``n`` (all combinations are tried: ``len(strategies) **
bins`` of them; ties go to the cheaper, then the earlier; the choice is printed). The dev fit is not
charged to test problems; the probe is.

Test problems are probed, binned and handed to their bin's searcher (one batched search per
bin, so a bin's problems share each generator and reward-model call).
"""

from __future__ import annotations

import itertools

import attrs
import click

from openr_core import SearchResult, Searcher
from openr_core.evaluation import reduce_scores
from openr_search.common import BuildsOwn, Round, SearchConfig, check_section

@attrs.frozen
class ComputeOptimalConfig(SearchConfig):
    """``strategies`` (searcher sections), ``probe``, ``bins``, ``dev_split``, ``dev_limit``; ``n`` is the average budget."""

    strategies: list[dict] = attrs.field(factory=list)
    probe: int = 4
    bins: int = 5
    dev_split: str = "dev"
    dev_limit: int = 100

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if not self.strategies:
            raise ValueError("strategies must list at least one searcher section")
        for k, spec in enumerate(self.strategies):
            check_section(f"strategies.{k}", spec, "searcher")
            if spec["type"] == "compute-optimal":
                raise ValueError(f"strategies.{k}: compute-optimal cannot choose itself")
        if self.probe < 1 or self.bins < 1 or self.dev_limit < self.bins:
            raise ValueError("probe and bins must be >= 1 and dev_limit >= bins")


@attrs.frozen
class Policy:
    """Bin edges (ascending difficulty scores) and the strategy index chosen per bin."""

    edges: tuple[float, ...]
    choice: tuple[int, ...]

    def bin(self, difficulty: float) -> int:
        return sum(difficulty > e for e in self.edges)


def quantile_edges(values: list[float], bins: int) -> tuple[float, ...]:
    """Each edge is the highest value of the bin below it, so equal values share a bin (a bin
    may be empty when many values tie)."""
    ordered = sorted(values)
    return tuple(ordered[max(0, round(k * len(ordered) / bins) - 1)] for k in range(1, bins))


def allocate(correct: list[list[list[bool]]], tokens: list[list[list[int]]], limit: float) -> tuple[int, ...]:
    """Per bin the strategy index maximising total correct answers with total tokens <= ``limit``.

    ``correct[b][s]`` / ``tokens[b][s]``: per dev problem of bin b, under strategy s. When no
    combination fits, the cheapest strategy of every bin."""
    bins, strategies = len(correct), len(correct[0])
    gain = [[sum(correct[b][s]) for s in range(strategies)] for b in range(bins)]
    cost = [[sum(tokens[b][s]) for s in range(strategies)] for b in range(bins)]
    best = None
    for combo in itertools.product(range(strategies), repeat=bins):
        spent = sum(cost[b][s] for b, s in enumerate(combo))
        if spent > limit:
            continue
        key = (-sum(gain[b][s] for b, s in enumerate(combo)), spent, combo)
        best = min(best, key) if best else key
    if best is None:
        return tuple(min(range(strategies), key=lambda s: (cost[b][s], s)) for b in range(bins))
    return best[2]


class ComputeOptimal(BuildsOwn, Searcher):
    """Compute-optimal scaling: a probe estimates difficulty; per bin the strategy learned on dev."""

    Config = ComputeOptimalConfig

    policy: Policy | None = None  # learned on dev by the first search

    def strategy(self, k: int) -> Searcher:
        return self.own.get("searcher", self.config.strategies[k])

    def probe(self, problems, task, generator, reward_model) -> tuple[Round, list[float], list[int]]:
        """Difficulty score and probe tokens per problem (charged to the returned Round)."""
        c = self.config
        rnd = Round(problems, task, generator, reward_model, c)
        samples = rnd.sample(range(len(problems)), c.probe, c.temperature, "probe")
        scores = iter(rnd.score_texts([(i, t) for i, cands in enumerate(samples) for t, _, _ in cands]))
        difficulty = []
        for cands in samples:
            values = [reduce_scores(next(scores), c.reducer) for _ in cands]
            finite = [v for v in values if v != float("-inf")]
            difficulty.append(sum(finite) / len(finite) if finite else float("-inf"))
        return rnd, difficulty, [sum(n for _, n, _ in cands) for cands in samples]

    def fit(self, task, generator, reward_model) -> Policy:
        c = self.config
        dev = task.load(c.dev_split, c.dev_limit)
        _, difficulty, probe_tokens = self.probe(dev, task, generator, reward_model)
        edges = quantile_edges(difficulty, c.bins)
        members = [[] for _ in range(c.bins)]
        for j, d in enumerate(difficulty):
            members[Policy(edges, ()).bin(d)].append(j)
        correct = [[[] for _ in c.strategies] for _ in range(c.bins)]
        tokens = [[[] for _ in c.strategies] for _ in range(c.bins)]
        for s in range(len(c.strategies)):
            results = self.strategy(s).search(dev, task=task, generator=generator, reward_model=reward_model)
            for b, js in enumerate(members):
                for j in js:
                    r = results[j]
                    correct[b][s].append(r.answer is not None and task.answers_match(dev[j], r.answer))
                    tokens[b][s].append(r.budget.generated_tokens)
        per_solution = sum(probe_tokens) / (len(dev) * c.probe)
        limit = (c.n * per_solution - sum(probe_tokens) / len(dev)) * len(dev)
        choice = allocate(correct, tokens, limit)
        policy = Policy(edges, choice)
        for b, s in enumerate(choice):
            click.echo(f"compute-optimal: bin {b} (difficulty > {edges[b - 1] if b else '-inf'}, {len(members[b])} dev "
                       f"problems): {c.strategies[s]}, dev accuracy {sum(correct[b][s]) / max(1, len(correct[b][s])):.3f}",
                       err=True)
        return policy

    def search(self, problems, *, task, generator, reward_model=None) -> list[SearchResult]:
        if reward_model is None:
            raise ValueError("compute-optimal needs a reward_model (its probe is scored by it)")
        if self.policy is None:
            self.policy = self.fit(task, generator, reward_model)
        rnd, difficulty, _ = self.probe(problems, task, generator, reward_model)
        bins = [self.policy.bin(d) for d in difficulty]
        out: list[SearchResult | None] = [None] * len(problems)
        for b in sorted(set(bins)):
            idx = [i for i, x in enumerate(bins) if x == b]
            s = self.policy.choice[b]
            found = self.strategy(s).search([problems[i] for i in idx], task=task, generator=generator,
                                            reward_model=reward_model)
            for i, r in zip(idx, found):
                out[i] = attrs.evolve(r, budget=r.budget + rnd.budgets[i],
                                      meta={**r.meta, "difficulty": difficulty[i], "bin": b, "strategy": s})
        return out
