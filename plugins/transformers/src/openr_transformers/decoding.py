"""Batched sampling with a KV cache, per-row seeds, stop strings and token log-probs.

Requests are expanded into rows (one per sample). With ``prefix_reuse`` each distinct prompt
of a batch is encoded once and its KV cache is copied to all its rows, so n children of one
search node cost one prefill instead of n. Each row samples from its own seeded RNG, so a
row's text depends only on its prompt, parameters and seed, not on what else is in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch

from openr_core.types import Completion, GenerationRequest, GenerationResult


STOP_WINDOW = 8  # tokens decoded to look for a stop string after each new token


@attrs.define
class _Row:
    request: int
    prompt: str
    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...]
    logprobs: bool
    rng: torch.Generator | None
    stop_ids: frozenset[int] | None = None  # when every stop string is exactly one token
    tokens: list[int] = attrs.field(factory=list)
    token_logprobs: list[float] = attrs.field(factory=list)
    text: str | None = None
    stop_reason: str = "length"


def _row_seed(seed: int | None, sample: int) -> int:
    if seed is None:  # still reproducible under a global torch.manual_seed
        return int(torch.randint(0, 2**62, ()).item())
    return (seed * 1_000_003 + sample * 7_919 + 1) % 2**62


def _rows(requests: Sequence[GenerationRequest]) -> list[_Row]:
    rows = []
    for r, request in enumerate(requests):
        p = request.params
        for j in range(p.n):
            rng = None
            if p.temperature > 0:
                rng = torch.Generator().manual_seed(_row_seed(p.seed, j))
            rows.append(_Row(r, request.prompt, p.temperature, p.top_p, p.max_tokens, p.stop, p.logprobs, rng))
    return rows


def _chunks(rows: list[_Row], batch_size: int, prefix_reuse: bool) -> list[list[_Row]]:
    """Batches of at most ``batch_size`` rows; with prefix reuse, rows of one prompt stay together."""
    if not prefix_reuse:
        return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    groups: dict[str, list[_Row]] = {}
    for row in rows:
        groups.setdefault(row.prompt, []).append(row)
    chunks, current = [], []
    for group in groups.values():
        for i in range(0, len(group), batch_size):
            part = group[i : i + batch_size]
            if len(current) + len(part) > batch_size:
                chunks.append(current)
                current = []
            current.extend(part)
    if current:
        chunks.append(current)
    return chunks


def _eos_ids(model, tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    return ids


def _pick(logits: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
    """Next token per row: argmax at temperature 0, else top-p sampling from the row's RNG."""
    chosen = logits.argmax(-1)
    sampled = [i for i, row in enumerate(rows) if row.temperature > 0]
    if not sampled:
        return chosen
    idx = torch.tensor(sampled)
    temps = torch.tensor([rows[i].temperature for i in sampled], dtype=logits.dtype).unsqueeze(1)
    top_p = torch.tensor([rows[i].top_p for i in sampled], dtype=logits.dtype).unsqueeze(1)
    probs = torch.softmax(logits[idx].float() / temps.float(), dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    cumulative = sorted_probs.cumsum(-1)
    # keep the smallest prefix whose mass reaches top_p (always at least one token)
    sorted_probs = sorted_probs.masked_fill(cumulative - sorted_probs >= top_p.float(), 0.0)
    cumulative = sorted_probs.cumsum(-1)
    u = torch.stack([torch.rand((), generator=rows[i].rng) for i in sampled]).unsqueeze(1) * cumulative[:, -1:]
    position = torch.searchsorted(cumulative, u).clamp(max=cumulative.shape[1] - 1)
    chosen[idx] = order.gather(1, position).squeeze(1)
    return chosen


@torch.inference_mode()
def _decode_chunk(model, tokenizer, rows: list[_Row], eos: set[int], max_positions: int | None,
                  prefix_reuse: bool = True) -> None:
    device = next(model.parameters()).device
    # with prefix reuse each distinct prompt is encoded once; without, once per row
    prompts = list(dict.fromkeys(row.prompt for row in rows)) if prefix_reuse else [row.prompt for row in rows]
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    input_ids = enc["input_ids"].to(device)
    attention = enc["attention_mask"].to(device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
    cache = out.past_key_values
    position = {p: i for i, p in enumerate(prompts)}
    index = torch.tensor([position[row.prompt] for row in rows] if prefix_reuse else list(range(len(rows))), device=device)
    if len(prompts) != len(rows) or not torch.equal(index, torch.arange(len(rows), device=device)):
        cache.reorder_cache(index)
    logits = out.logits[:, -1, :][index]
    attention = attention[index]
    next_pos = positions[index, -1] + 1
    prompt_lengths = enc["attention_mask"].sum(-1)[index.cpu()].tolist()
    limits = [row.max_tokens for row in rows]
    if max_positions:
        limits = [max(1, min(m, max_positions - n)) for m, n in zip(limits, prompt_lengths)]
    active = list(range(len(rows)))  # rows (by position in `rows`) still decoding, in batch order
    while active:
        batch_rows = [rows[i] for i in active]
        chosen = _pick(logits, batch_rows)
        if any(row.logprobs for row in batch_rows):
            logp = torch.log_softmax(logits.float(), dim=-1).gather(1, chosen.unsqueeze(1)).squeeze(1).tolist()
        chosen_list = chosen.tolist()
        still = []
        for b, i in enumerate(active):
            row = rows[i]
            token = chosen_list[b]
            row.tokens.append(token)
            if row.logprobs:
                row.token_logprobs.append(logp[b])
            if token in eos:
                row.stop_reason = "stop"
                continue
            if row.stop_ids is not None:  # every stop string is one token: compare ids
                if token in row.stop_ids:
                    row.stop_reason = "stop"
                    continue
            elif row.stop:  # a stop string ends within the last few tokens' text
                text = tokenizer.decode(row.tokens[-STOP_WINDOW:], skip_special_tokens=True)
                if any(s in text for s in row.stop):
                    row.stop_reason = "stop"
                    continue
            if len(row.tokens) >= limits[i]:
                continue
            still.append(b)
        if not still:
            break
        keep = torch.tensor(still, device=device)
        if len(still) < len(active):
            cache.batch_select_indices(keep)
            attention, next_pos, chosen = attention[keep], next_pos[keep], chosen[keep]
        active = [active[b] for b in still]
        attention = torch.cat([attention, attention.new_ones((len(active), 1))], dim=1)
        out = model(input_ids=chosen.unsqueeze(1), attention_mask=attention, position_ids=next_pos.unsqueeze(1),
                    past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        logits = out.logits[:, -1, :]
        next_pos = next_pos + 1


def _finish(row: _Row, tokenizer, eos: set[int]) -> Completion:
    text = tokenizer.decode(row.tokens, skip_special_tokens=True)
    found = sorted((text.find(s), s) for s in row.stop if s in text)
    matched = None
    if found and row.stop_reason == "stop" and row.tokens[-1] not in eos:
        text, matched = text[: found[0][0]], found[0][1]
    return Completion(text, len(row.tokens), row.stop_reason, tuple(row.token_logprobs) if row.logprobs else None, matched)


def _single_token_stops(tokenizer, stops: tuple[str, ...], cache: dict) -> frozenset[int] | None:
    """Ids of the stop strings when each is exactly one token (and that token decodes to it)."""
    if stops not in cache:
        ids = set()
        for stop in stops:
            encoded = tokenizer(stop, add_special_tokens=False)["input_ids"]
            if len(encoded) != 1 or tokenizer.decode(encoded) != stop:
                cache[stops] = None
                break
            ids.add(encoded[0])
        else:
            cache[stops] = frozenset(ids)
    return cache[stops]


def generate(model, tokenizer, requests: Sequence[GenerationRequest], *, batch_size: int = 256,
             prefix_reuse: bool = True) -> list[GenerationResult]:
    rows = _rows(requests)
    cache: dict = {}
    for row in rows:
        if row.stop:
            row.stop_ids = _single_token_stops(tokenizer, row.stop, cache)
    eos = _eos_ids(model, tokenizer)
    max_positions = getattr(model.config, "max_position_embeddings", None)
    for chunk in _chunks(rows, batch_size, prefix_reuse):
        _decode_chunk(model, tokenizer, chunk, eos, max_positions, prefix_reuse)
    prompt_tokens = {}
    by_request: list[list[Completion]] = [[] for _ in requests]
    for row in rows:
        by_request[row.request].append(_finish(row, tokenizer, eos))
    results = []
    for r, request in enumerate(requests):
        if request.prompt not in prompt_tokens:
            prompt_tokens[request.prompt] = len(tokenizer(request.prompt)["input_ids"])
        results.append(GenerationResult(tuple(by_request[r]), prompt_tokens[request.prompt]))
    return results
