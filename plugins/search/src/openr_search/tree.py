"""Step-level tree searches guided by a reward model: beam search and DVTS."""

from __future__ import annotations

import attrs

from openr_core import SearchResult, Searcher, Solution
from openr_search.common import Path, Round, SearchConfig, choose


def _unique(paths: list[Path]) -> list[Path]:
    seen, out = set(), []
    for p in paths:
        key = tuple(p.steps)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _finish(task, problems, rnd: Round, finished: dict[int, list[Path]], config: SearchConfig) -> list[SearchResult]:
    out = []
    for i, problem in enumerate(problems):
        paths = finished[i]
        texts = [task.join_steps(p.steps) for p in paths]
        values = [p.value(config.reducer) for p in paths]
        pick = choose(task, texts, values, config.selection)
        sols = [Solution(problem.id, tuple(p.steps), task.extract_answer(t), p.tokens, p.done) for p, t in zip(paths, texts)]
        best = sols[pick] if pick is not None else None
        out.append(SearchResult(problem.id, best.answer if best else None, best, sols, rnd.budgets[i], {"values": values}))
    return out


@attrs.frozen
class BeamConfig(SearchConfig):
    """``width`` paths are kept each round and the round's ``n`` children are shared among them
    (``n // width`` each; more when fewer distinct paths survive), so every round costs n paths.
    The first round expands the question into ``n`` children. ``prune_below``: also drop paths
    whose value is below this score (the best path always survives), so the budget goes to
    paths the reward model believes in instead of filling the beam with rejected ones."""

    width: int = 4
    prune_below: float | None = None

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if not 1 <= self.width <= self.n:
            raise ValueError(f"width must be in 1..n ({self.n}), got {self.width}")


class Beam(Searcher):
    """Step-level beam search: keep the best `width` paths, expand each into `expansions`."""

    Config = BeamConfig

    def search(self, problems, *, task, generator, reward_model=None) -> list[SearchResult]:
        c = self.config
        if reward_model is None:
            raise ValueError("beam needs a reward_model")
        rnd = Round(problems, task, generator, reward_model, c)
        active = {i: [Path(i, [])] for i in range(len(problems))}
        finished: dict[int, list[Path]] = {i: [] for i in range(len(problems))}
        for depth in range(c.max_steps):
            parents = [p for i in active for p in active[i]]
            if not parents:
                break
            # the round's n children are shared among a problem's surviving (distinct) paths
            ks = [c.n // len(active[p.problem]) + (j < c.n % len(active[p.problem]))
                  for i in active for j, p in enumerate(active[i])]
            children = [kid for kids in rnd.expand(parents, ks) for kid in kids]
            by_problem: dict[int, list[Path]] = {}
            for kid in children:
                by_problem.setdefault(kid.problem, []).append(kid)
            fresh = {i: _unique(kids) for i, kids in by_problem.items()}
            rank = self.rank(rnd, [kid for kids in fresh.values() for kid in kids])
            for i, kids in fresh.items():
                ranked = sorted(kids, key=lambda p: -rank[id(p)])  # stable: ties keep generation order
                finished[i] += [p for p in ranked if p.done]
                room = c.width - len(finished[i])
                keep = [p for p in ranked if not p.done][: max(0, room)]
                if c.prune_below is not None:
                    keep = keep[:1] + [p for p in keep[1:] if rank[id(p)] >= c.prune_below]
                active[i] = keep
                if not active[i]:
                    del active[i]
        for i, paths in active.items():  # out of steps: unfinished paths still compete
            finished[i] += paths
        return _finish(task, problems, rnd, finished, c)

    def rank(self, rnd: Round, paths: list[Path]) -> dict[int, float]:
        """Score a round's new paths (one reward-model call); the value each is ranked by, by id."""
        rnd.score(paths)
        return {id(p): p.value(self.config.reducer) for p in paths}


@attrs.frozen
class DVTSConfig(SearchConfig):
    """``n // expansions`` independent subtrees; each keeps its single best child per step."""

    expansions: int = 4

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if not 1 <= self.expansions <= self.n:
            raise ValueError(f"expansions must be in 1..n ({self.n}), got {self.expansions}")


class DVTS(Searcher):
    """Diverse verifier tree search: independent subtrees, greedy by PRM within each."""

    Config = DVTSConfig

    def search(self, problems, *, task, generator, reward_model=None) -> list[SearchResult]:
        c = self.config
        if reward_model is None:
            raise ValueError("dvts needs a reward_model")
        rnd = Round(problems, task, generator, reward_model, c)
        subtrees = max(1, c.n // c.expansions)
        # (problem, subtree) -> current path; subtree j expands with its own seed salt
        current = {(i, j): Path(i, []) for i in range(len(problems)) for j in range(subtrees)}
        finished: dict[int, list[Path]] = {i: [] for i in range(len(problems))}
        for _ in range(c.max_steps):
            if not current:
                break
            keys = list(current)
            expanded = rnd.expand([current[k] for k in keys], c.expansions, [f"t{j}" for _, j in keys])
            children = dict(zip(keys, expanded))
            rnd.score([kid for kids in children.values() for kid in kids])
            for k, kids in children.items():
                best = max(kids, key=lambda p: p.value(c.reducer))
                if best.done:
                    finished[k[0]].append(best)
                    del current[k]
                else:
                    current[k] = best
        for (i, _), path in current.items():
            finished[i].append(path)
        return _finish(task, problems, rnd, finished, c)
