"""Particle filtering and particle Gibbs over solution steps (Puri et al. 2025, its_hub).

The policy is the transition model and the reward model the likelihood of an "accepted" step.
Each round, every unfinished particle of every problem is advanced by one step (one generator
call), the new prefixes are scored (one reward-model call), and each problem's particles are
resampled: ``m`` draws with probabilities ``softmax(w / softmax_temperature)``, where a
particle's log-weight ``w`` is its prefix's reduced score (``reducer``, default ``last``: each
prefix score replaces the last, as in its_hub), mapped by ``weight``: ``logit`` (log-odds of a
probability-valued PRM, clipped to [1e-7, 1 - 1e-7]) or ``score`` (a PRM whose scores already
are log-odds, e.g. the implicit PRM's beta * log-ratio). Finished particles keep their weight
and stay in the pool; a resampled finished particle stays finished. ``resample: ess`` resamples
only when the effective sample size ``1 / sum(p^2)`` falls below ``ess_threshold * m``.

Particle Gibbs runs ``iterations`` sweeps of ``n // iterations`` particles. From the second
sweep on, slot 0 holds the reference particle (drawn by weight from the previous sweep's
particles): it follows the reference trajectory one step per round without generating, is
weighted by its *prefix's* scores (not the whole trajectory's, its_hub#54), can be drawn by
the other slots, and always survives. The answer is chosen (``selection``) among the final
particles of all sweeps.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import attrs

from openr_core import SearchResult, Searcher
from openr_core.config import number
from openr_search.common import Path, Round, SearchConfig, node_seed
from openr_search.tree import _finish


@attrs.frozen
class ParticleConfig(SearchConfig):
    """``n`` particles (full-solution equivalents); see the module docstring."""

    reducer: Literal["min", "last", "mean", "product"] = "last"
    softmax_temperature: float = number(1.0, above=0)
    weight: Literal["logit", "score"] = "logit"
    resample: Literal["always", "ess"] = "always"
    ess_threshold: float = number(0.5, minimum=0, maximum=1)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if self.softmax_temperature <= 0:
            raise ValueError(f"softmax_temperature must be > 0, got {self.softmax_temperature}")


@attrs.frozen
class GibbsConfig(ParticleConfig):
    """``iterations`` sweeps of ``n // iterations`` particles, one reference particle kept between sweeps."""

    iterations: int = 4

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if not 1 <= self.iterations <= self.n // 2:
            raise ValueError(f"iterations must be in 1..n/2 ({self.n // 2}) so a sweep has 2 particles, got {self.iterations}")


def log_weight(path: Path, config: ParticleConfig) -> float:
    value = path.value(config.reducer)
    if config.weight == "logit" and math.isfinite(value):
        r = min(max(value, 1e-7), 1 - 1e-7)
        return math.log(r / (1 - r))
    return value


def resampling_probabilities(log_weights: list[float], temperature: float) -> list[float]:
    """softmax(w / T); particles with -inf weight get 0 (uniform when all are -inf)."""
    finite = [w for w in log_weights if math.isfinite(w)]
    if not finite:
        return [1.0 / len(log_weights)] * len(log_weights)
    top = max(finite)
    e = [math.exp((w - top) / temperature) if math.isfinite(w) else 0.0 for w in log_weights]
    return [x / sum(e) for x in e]


def effective_sample_size(probabilities: list[float]) -> float:
    return 1.0 / sum(p * p for p in probabilities)


def reference_prefix(reference: Path, length: int) -> Path:
    """The reference trajectory's first ``length`` steps, weighted by their own scores."""
    steps = reference.steps[:length]
    tokens = round(reference.tokens * length / len(reference.steps)) if reference.steps else 0
    return Path(reference.problem, list(steps), tokens, length >= len(reference.steps) and reference.done,
                list(reference.scores[:length]))


def sweep(rnd: Round, config: ParticleConfig, m: int, references: dict[int, Path | None], salt: str) -> dict[int, list[Path]]:
    """One particle filter over all problems at once: ``m`` particles each; slot 0 follows
    ``references[i]`` where given. Returns the final particles per problem."""
    problems = rnd.problems
    particles = {i: [Path(i, [])] * m for i in range(len(problems))}
    for depth in range(1, config.max_steps + 1):
        free = [(i, j) for i, slots in particles.items() for j, p in enumerate(slots)
                if not p.done and not (j == 0 and references.get(i))]
        refs = [i for i in particles if references.get(i) and not particles[i][0].done]
        if not free and not refs:
            break
        children = rnd.expand([particles[i][j] for i, j in free], 1, [f"{salt}p{j}" for _, j in free])
        rnd.score([kids[0] for kids in children])
        for (i, j), kids in zip(free, children):
            particles[i][j] = kids[0]
        for i in refs:
            particles[i][0] = reference_prefix(references[i], depth)
        for i in {i for i, _ in free} | set(refs):
            slots = particles[i]
            if all(p.done for p in slots):
                continue
            probs = resampling_probabilities([log_weight(p, config) for p in slots], config.softmax_temperature)
            if config.resample == "ess" and effective_sample_size(probs) >= config.ess_threshold * m:
                continue
            rng = random.Random(node_seed(config.seed, problems[i], [], f"{salt}resample{depth}"))
            keep = 1 if references.get(i) else 0
            drawn = rng.choices(range(m), weights=probs, k=m - keep)
            particles[i] = slots[:keep] + [attrs.evolve(slots[k], steps=list(slots[k].steps), scores=list(slots[k].scores))
                                           for k in drawn]
    return particles


class ParticleFilter(Searcher):
    """Particle filtering: n particles advanced a step at a time, resampled by PRM weight."""

    Config = ParticleConfig

    def search(self, problems, *, task, generator, reward_model=None) -> list[SearchResult]:
        if reward_model is None:
            raise ValueError(f"{type(self).__name__} needs a reward_model")
        rnd = Round(problems, task, generator, reward_model, self.config)
        return _finish(task, problems, rnd, self.run(rnd), self.config)

    def run(self, rnd: Round) -> dict[int, list[Path]]:
        return sweep(rnd, self.config, self.config.n, {}, "")


class ParticleGibbs(ParticleFilter):
    """Particle Gibbs: several particle-filter sweeps, each keeping a reference particle from the last."""

    Config = GibbsConfig

    def run(self, rnd: Round) -> dict[int, list[Path]]:
        c = self.config
        m = c.n // c.iterations
        everything: dict[int, list[Path]] = {i: [] for i in range(len(rnd.problems))}
        references: dict[int, Path | None] = {}
        for it in range(c.iterations):
            final = sweep(rnd, c, m, references, f"g{it}")
            for i, slots in final.items():
                everything[i] += slots
                pool = [p for p in slots if p.done] or slots
                probs = resampling_probabilities([log_weight(p, c) for p in pool], c.softmax_temperature)
                rng = random.Random(node_seed(c.seed, rnd.problems[i], [], f"g{it}reference"))
                references[i] = pool[rng.choices(range(len(pool)), weights=probs)[0]]
        return everything
