"""What every searcher shares: step generation, scoring, budgets and answer selection.

Each helper makes ONE call for a whole round: all open nodes of all problems go to the
Generator together, and all new paths to the RewardModel together.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Literal

import attrs

from openr_core import Budget, GenerationRequest, Problem, SamplingParams, ScoreRequest, Solution, Task
from openr_core.config import count, number
from openr_core.evaluation import reduce_scores, vote
from openr_search import record


@attrs.frozen
class SearchConfig:
    """``n``: the budget in full-solution equivalents (samples for sampling methods, paths per
    round for tree methods, tokens of n solutions for MCTS), the same for every method."""

    n: int = 16
    temperature: float = number(1.0, minimum=0)
    top_p: float = number(1.0, above=0, maximum=1)
    max_tokens: int = count(256)
    step_max_tokens: int = count(64)
    max_steps: int = count(16)
    reducer: Literal["min", "last", "mean", "product"] = "min"
    selection: Literal["max", "majority", "weighted"] = "max"
    seed: int = 0

    def __attrs_post_init__(self):
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")


def node_seed(seed: int, problem: Problem, steps: Sequence[str], salt: str = "") -> int:
    """A seed for expanding a node: depends on the node, never on batch or schedule."""
    key = f"{problem.id}\x00{salt}\x00" + "\x00".join(steps)
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % 2**31


@attrs.define
class Path:
    """A partial or complete solution under construction."""

    problem: int  # index into the batch
    steps: list[str]
    tokens: int = 0
    done: bool = False
    scores: list[float] = attrs.field(factory=list)
    logprob: float = 0.0  # mean token log-prob of the last step (when requested)

    def value(self, reducer: str) -> float:
        return reduce_scores(self.scores, reducer)


class Round:
    """Batched generation and scoring with per-problem budget accounting."""

    def __init__(self, problems: Sequence[Problem], task: Task, generator, reward_model, config: SearchConfig):
        self.problems, self.task, self.generator, self.reward_model, self.config = problems, task, generator, reward_model, config
        self.budgets = [Budget() for _ in problems]
        self.recorder = record.active()  # None unless a caller records trees (`openr report`)

    def note(self, i: int, steps: Sequence[str], **fields) -> None:
        """Record fields of problem ``i``'s node ``steps`` (e.g. MCTS visits) when trees are recorded."""
        if self.recorder is not None:
            self.recorder.node(self.problems[i], steps, **fields)

    def _charge(self, i: int, tokens: int = 0, calls: int = 0, prm: int = 0) -> None:
        self.budgets[i] = self.budgets[i] + Budget(tokens, calls, prm)

    def sample(self, indices: Sequence[int], n: int, temperature: float, salt: str = "") -> list[list[tuple[str, int, bool]]]:
        """``n`` full solutions for each problem in ``indices``: (text, tokens, finished)."""
        c = self.config
        requests = [GenerationRequest(self.task.prompt(self.problems[i]), SamplingParams(
            n=n, temperature=temperature, top_p=c.top_p if temperature > 0 else 1.0, max_tokens=c.max_tokens,
            seed=node_seed(c.seed, self.problems[i], [], salt))) for i in indices]
        results = self.generator.generate(requests) if requests else []
        out = []
        for i, result in zip(indices, results):
            self._charge(i, sum(x.n_tokens for x in result.completions), 1)
            out.append([(x.text, x.n_tokens, x.stop_reason == "stop") for x in result.completions])
            for x in result.completions:
                self.note(i, self.task.split_steps(x.text), done=True, tokens=x.n_tokens)
        return out

    def complete(self, paths: Sequence[Path], n: int, temperature: float, generator=None,
                 salts: Sequence[str] | None = None) -> list[list[Path]]:
        """``n`` rollouts of every path to the end of a solution (by ``generator``, default the
        search's), in one call; finished paths are returned as they are."""
        c, generator = self.config, generator or self.generator
        salts = salts or [""] * len(paths)
        todo = [(p, salt) for p, salt in zip(paths, salts) if not p.done]
        requests = [GenerationRequest(
            self.task.prompt(self.problems[p.problem]) + self.task.join_steps(p.steps),
            SamplingParams(n=n, temperature=temperature, top_p=c.top_p if temperature > 0 else 1.0,
                           max_tokens=max(1, c.max_tokens - p.tokens),
                           seed=node_seed(c.seed, self.problems[p.problem], p.steps, "rollout" + salt)))
            for p, salt in todo]
        results = iter(generator.generate(requests) if requests else [])
        calls, out = set(), []
        for p in paths:
            if p.done:
                out.append([p])
                continue
            result = next(results)
            self._charge(p.problem, tokens=sum(x.n_tokens for x in result.completions), calls=int(p.problem not in calls))
            calls.add(p.problem)
            out.append([Path(p.problem, p.steps + self.task.split_steps(x.text), p.tokens + x.n_tokens, True)
                        for x in result.completions])
        return out

    def expand(self, paths: Sequence[Path], k: int | Sequence[int], salts: Sequence[str] | None = None,
               logprobs: bool = False) -> list[list[Path]]:
        """``k`` (or ``k[i]``) one-step children of every path, all in one generator call.

        ``salts`` (one per path) make otherwise identical nodes expand differently (DVTS subtrees).
        """
        c = self.config
        sep = self.task.step_separator
        salts = salts or [""] * len(paths)
        ks = [k] * len(paths) if isinstance(k, int) else list(k)
        requests = [GenerationRequest(
            self.task.prompt(self.problems[p.problem]) + self.task.join_steps(p.steps),
            SamplingParams(n=n, temperature=c.temperature, top_p=c.top_p, max_tokens=c.step_max_tokens, stop=(sep,),
                           seed=node_seed(c.seed, self.problems[p.problem], p.steps, salt), logprobs=logprobs))
            for p, salt, n in zip(paths, salts, ks)]
        results = self.generator.generate(requests) if requests else []
        calls = set()
        children = []
        for p, result in zip(paths, results):
            self._charge(p.problem, tokens=sum(x.n_tokens for x in result.completions), calls=int(p.problem not in calls))
            calls.add(p.problem)
            kids = []
            for x in result.completions:
                step = x.text.strip()
                steps = p.steps + [step] if step else list(p.steps)
                done = x.matched_stop is None or len(steps) >= c.max_steps or not step
                mean_logprob = sum(x.token_logprobs) / len(x.token_logprobs) if x.token_logprobs else 0.0
                kids.append(Path(p.problem, steps, p.tokens + x.n_tokens, done, list(p.scores), mean_logprob))
                self.note(p.problem, steps, done=done, tokens=p.tokens + x.n_tokens)
            children.append(kids)
        return children

    def score(self, paths: Sequence[Path]) -> None:
        """Fill ``path.scores`` (all steps) for every path, in one reward-model call."""
        todo = [p for p in paths if p.steps]
        if not todo or self.reward_model is None:
            return
        scored = self.reward_model.score([ScoreRequest(self.problems[p.problem], p.steps) for p in todo])
        for p, s in zip(todo, scored):
            p.scores = list(s.scores)
            self._charge(p.problem, prm=s.n_tokens)
            if self.recorder is not None:
                self.recorder.scores(self.problems[p.problem], p.steps, p.scores)

    def score_steps(self, paths: Sequence[Path], reward_model) -> list[list[float]]:
        """Step scores of ``paths`` by another reward model (a value model), in one call; the
        paths' own scores are left alone."""
        todo = [p for p in paths if p.steps]
        scored = iter(reward_model.score([ScoreRequest(self.problems[p.problem], p.steps) for p in todo]) if todo else [])
        out = []
        for p in paths:
            if not p.steps:
                out.append([])
                continue
            s = next(scored)
            self._charge(p.problem, prm=s.n_tokens)
            out.append(list(s.scores))
        return out

    def score_texts(self, items: Sequence[tuple[int, str]]) -> list[list[float]]:
        """Step scores of complete solution texts (problem index, text), in one call."""
        if self.reward_model is None:
            return [[] for _ in items]
        requests = [ScoreRequest(self.problems[i], self.task.split_steps(t)) for i, t in items]
        scored = self.reward_model.score(requests)
        for (i, _), r, s in zip(items, requests, scored):
            self._charge(i, prm=s.n_tokens)
            if self.recorder is not None:
                self.recorder.scores(r.problem, r.steps, s.scores)
        return [list(s.scores) for s in scored]


def choose(task: Task, texts: Sequence[str], values: Sequence[float] | None, selection: str) -> int | None:
    """Index of the chosen candidate: highest value, majority vote, or value-weighted vote."""
    if not texts:
        return None
    answers = [task.extract_answer(t) for t in texts]
    if selection == "max" and values is not None:
        return max(range(len(texts)), key=lambda i: (values[i], -i))
    weights = None
    if selection == "weighted" and values is not None:
        weights = [max(v, 0.0) if math.isfinite(v) else 0.0 for v in values]
    winner = vote(answers, task.same_answer, weights)
    return winner if winner is not None else 0


def solution(task: Task, problem: Problem, text: str, tokens: int) -> Solution:
    return Solution(problem.id, tuple(task.split_steps(text)), task.extract_answer(text), tokens, True)


def check_section(name: str, value, kind: str) -> None:
    """A config field holding a component section (``{type: NAME, ...}``) or None."""
    if value is not None and (not isinstance(value, dict) or not isinstance(value.get("type"), str)):
        raise ValueError(f"{name} must be a {kind} section like {{type: NAME, ...}}, got {value!r}")


class OwnComponents:
    """Components a searcher builds from its own config sections (once; closed with it)."""

    def __init__(self):
        self._built: dict[str, object] = {}

    def get(self, kind: str, spec: dict | None, default=None):
        if spec is None:
            return default
        key = f"{kind}:{sorted(spec.items())!r}"
        if key not in self._built:
            from openr_core import get_component

            rest = dict(spec)
            self._built[key] = get_component(kind, rest.pop("type"), **rest)
        return self._built[key]

    def close(self) -> None:
        for component in self._built.values():
            component.close()
        self._built.clear()


class BuildsOwn:
    """Mixin for a searcher with component sections of its own: ``self.own`` builds them, ``close`` closes them."""

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        self.own = OwnComponents()

    def close(self) -> None:
        self.own.close()
