"""Rollouts: sample a group per prompt through the Generator interface, find each token's step,
grade the outcome, score the steps with a RewardModel, and pack everything into tensors."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch

from openr_core.evaluation import stable_seed
from openr_core.tokenizing import encode_prompts
from openr_core.types import GenerationRequest, Problem, SamplingParams, ScoreRequest


@attrs.define
class Rollout:
    """One sampled solution. ``token_steps[t]``: the step that completion token t belongs to
    (text between steps, and the end-of-sequence token, go with the step they close)."""

    problem: Problem
    group: int
    text: str
    steps: list[str]
    prompt_ids: list[int]
    completion_ids: list[int]
    token_steps: list[int]
    correct: bool
    step_scores: list[float] | None = None

    @property
    def n_steps(self) -> int:
        return max(1, len(self.steps))


def step_spans(text: str, steps: Sequence[str]) -> list[tuple[int, int]]:
    """Character span of each step in ``text`` (steps as the task's ``split_steps`` returns them)."""
    spans, cursor = [], 0
    for step in steps:
        start = text.find(step, cursor)
        if start < 0:
            raise ValueError(f"step {step!r} not found in the solution text after offset {cursor}")
        spans.append((start, start + len(step)))
        cursor = start + len(step)
    return spans


def token_steps(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]], n_tokens: int) -> list[int]:
    """Step index per token: the last step that starts at or before the token (tokens before the
    first step go with it; separators and the end-of-sequence token with the step they close).
    ``n_tokens`` may exceed ``len(offsets)`` (an appended end-of-sequence token)."""
    out, k = [], 0
    last = max(0, len(spans) - 1)
    for t in range(n_tokens):
        start = offsets[t][0] if t < len(offsets) else None
        while start is not None and k < last and start >= spans[k + 1][0]:
            k += 1
        out.append(k if start is not None else last)
    return out


def sample(policy_generator, task, problems: Sequence[Problem], tokenizer, *, n: int, temperature: float,
           top_p: float, max_tokens: int, seed: int, update: int) -> list[Rollout]:
    """``n`` rollouts per problem, seeded by (seed, update, problem id): one Generator call."""
    requests = [GenerationRequest(task.prompt(p), SamplingParams(
        n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
        seed=stable_seed(seed, f"rl:{update}:{p.id}"))) for p in problems]
    results = policy_generator.generate(requests)
    prompt_ids = encode_prompts(tokenizer, [r.prompt for r in requests])  # what the generator fed the policy
    rollouts = []
    for g, (problem, result) in enumerate(zip(problems, results)):
        for completion in result.completions:
            rollouts.append(_rollout(task, problem, g, completion, prompt_ids[g], tokenizer, max_tokens))
    return rollouts


def _rollout(task, problem, group, completion, prompt_ids, tokenizer, max_tokens) -> Rollout:
    text = completion.text
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(encoded["input_ids"]), list(encoded["offset_mapping"])
    if completion.stop_reason == "stop" and completion.matched_stop is None and len(ids) < max_tokens:
        ids.append(tokenizer.eos_token_id)  # it ended by choosing end-of-sequence: train on that too
    steps = task.split_steps(text)
    spans = step_spans(text, steps)
    return Rollout(problem, group, text, steps, list(prompt_ids), ids, token_steps(offsets, spans, len(ids)),
                   task.grade(problem, text).correct)


def score_steps(reward_model, rollouts: Sequence[Rollout]) -> None:
    """Fill ``step_scores`` with one batched RewardModel call (a rollout without steps scores 0)."""
    scored = [r for r in rollouts if r.steps]
    results = reward_model.score([ScoreRequest(r.problem, tuple(r.steps)) for r in scored]) if scored else []
    for r, s in zip(scored, results):
        if len(s.scores) != len(r.steps):
            raise ValueError(f"reward model returned {len(s.scores)} scores for {len(r.steps)} steps")
        r.step_scores = [float(x) for x in s.scores]
    for r in rollouts:
        if not r.steps:
            r.step_scores = [0.0]


@attrs.frozen
class Batch:
    """Rollouts packed for the model: prompts left-padded to one width ``prompt_width`` so that
    every completion starts at the same column; completions right-padded."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    completion_mask: torch.Tensor  # (B, Lc) float: 1 on real completion tokens
    completion_ids: torch.Tensor  # (B, Lc)
    prompt_width: int


def pack(rollouts: Sequence[Rollout], pad_id: int) -> Batch:
    width = max(len(r.prompt_ids) for r in rollouts)
    length = max(1, max(len(r.completion_ids) for r in rollouts))
    B = len(rollouts)
    input_ids = torch.full((B, width + length), pad_id, dtype=torch.long)
    attention = torch.zeros((B, width + length), dtype=torch.long)
    completion_mask = torch.zeros((B, length))
    for i, r in enumerate(rollouts):
        p, c = r.prompt_ids, r.completion_ids
        input_ids[i, width - len(p):width] = torch.tensor(p)
        attention[i, width - len(p):width] = 1
        if c:
            input_ids[i, width:width + len(c)] = torch.tensor(c)
            attention[i, width:width + len(c)] = 1
            completion_mask[i, :len(c)] = 1
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    return Batch(input_ids, attention, positions, completion_mask, input_ids[:, width:], width)


def subset(batch: Batch, rows) -> Batch:
    return Batch(batch.input_ids[rows], batch.attention_mask[rows], batch.position_ids[rows],
                 batch.completion_mask[rows], batch.completion_ids[rows], batch.prompt_width)


def per_token(rollouts: Sequence[Rollout], values: Sequence[Sequence[float]], length: int) -> torch.Tensor:
    """A (B, length) tensor from per-rollout token lists (zero beyond each completion)."""
    out = torch.zeros((len(rollouts), length))
    for i, v in enumerate(values):
        if v:
            out[i, :len(v)] = torch.tensor(v, dtype=torch.float32)
    return out
