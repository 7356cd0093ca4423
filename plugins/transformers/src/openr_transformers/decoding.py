"""Batched sampling with a KV cache, per-row seeds, stop strings and token log-probs.

Requests are expanded into rows (one per sample). With ``prefix_reuse`` each distinct prompt
of a batch is encoded once and shared by all its rows, so n children of one search node cost
one prefill instead of n: Llama models then decode with :mod:`openr_transformers.llama_decode`
(the prompt's KV read in place), others through their own ``forward`` with the prompt's KV
copied to each row. Each row samples from its own seeded RNG, so a row's text depends only on
its prompt, parameters and seed, not on what else is in the batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import attrs
import torch
from transformers.cache_utils import Cache, DynamicLayer

from openr_core.tokenizing import encode_prompts
from openr_core.types import Completion, GenerationRequest, GenerationResult
from openr_transformers import llama_decode
from openr_transformers.sampling import RowState
from openr_transformers.stops import StopPlan, plan, vocabulary_texts



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
    stop_plan: StopPlan | None = None  # how its stop strings are detected
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
        for j in range(p.n if p.temperature > 0 else 1):  # greedy samples are identical: decoded once
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


class _SlabLayer(DynamicLayer):
    """One layer's KV cache in a buffer of ``capacity`` positions allocated once and written in
    place (``DynamicLayer`` re-copies the whole cache with ``torch.cat`` at every token)."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length = capacity, 0

    def lazy_initialization(self, key_states, value_states) -> None:
        rows, heads, _, dim = key_states.shape
        self.dtype, self.device = key_states.dtype, key_states.device
        self.keys = key_states.new_empty((rows, heads, self.capacity, dim))
        self.values = value_states.new_empty((rows, heads, self.capacity, value_states.shape[-1]))
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        self.keys[:, :, self.length:end] = key_states
        self.values[:, :, self.length:end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def take(self, index: torch.Tensor, capacity: int) -> _SlabLayer:
        """A new layer holding rows ``index`` of this one, with room for ``capacity`` positions."""
        out = _SlabLayer(capacity)
        out.dtype, out.device, out.length, out.is_initialized = self.dtype, self.device, self.length, True
        rows, heads, _, dim = self.keys.shape
        out.keys = self.keys.new_empty((len(index), heads, capacity, dim))
        out.values = self.values.new_empty((len(index), heads, capacity, self.values.shape[-1]))
        torch.index_select(self.keys[:, :, : self.length], 0, index, out=out.keys[:, :, : self.length])
        torch.index_select(self.values[:, :, : self.length], 0, index, out=out.values[:, :, : self.length])
        return out


def _slab_cache(layers: list[_SlabLayer]) -> Cache:
    return Cache(layers=layers)


@attrs.define(eq=False)
class _Entry:
    ids: tuple[int, ...]
    # consecutive spans of the sequence (the prompt's KV, shared by its samples, then the sample's
    # own tokens), each as per-layer keys and values [heads, span, dim]
    pieces: list[tuple[list[torch.Tensor], list[torch.Tensor]]]
    nbytes: int

    def write(self, layers: list[_SlabLayer], row: int, column: int, n: int) -> None:
        """Copy the KV of the first ``n`` tokens into cache row ``row`` from ``column`` on."""
        for keys, values in self.pieces:
            span = min(n, keys[0].shape[1])
            for layer, k, v in zip(layers, keys, values):
                layer.keys[row, :, column: column + span] = k[:, :span]
                layer.values[row, :, column: column + span] = v[:, :span]
            column, n = column + span, n - span
            if not n:
                return


def _prefix_hashes(ids: Sequence[int], h: int = 0) -> list[int]:
    out = []
    for token in ids:
        h = hash((h, token))
        out.append(h)
    return out


class KVStore:
    """KV caches of sequences decoded by earlier calls, keyed by their token ids, so a prompt that
    continues one (a search node's child: parent prompt + the step just generated) re-encodes only
    its new tokens. Least recently used entries go first once ``max_bytes`` is exceeded; the store
    empties itself when the model's weights change (``data_ptr`` or in-place version of any
    parameter), so an RL trainer updating the policy never reads stale KV."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.nbytes = max_bytes, 0
        self.entries: OrderedDict[int, _Entry] = OrderedDict()
        self.fingerprint = None
        self.hits = self.reused_tokens = self.prompt_tokens = 0

    def check(self, model) -> None:
        fingerprint = tuple((p.data_ptr(), p._version, p.dtype, str(p.device)) for p in model.parameters())
        if fingerprint != self.fingerprint:
            self.clear()
            self.fingerprint = fingerprint

    def clear(self) -> None:
        self.entries.clear()
        self.nbytes = 0

    def lookup(self, ids: Sequence[int], hashes: list[int]) -> _Entry | None:
        """The longest stored proper prefix of ``ids`` (at least one token is left to encode)."""
        for m in range(len(ids) - 1, 0, -1):
            entry = self.entries.get(hashes[m - 1])
            if entry is not None and len(entry.ids) == m and entry.ids == tuple(ids[:m]):
                self.entries.move_to_end(hashes[m - 1])
                return entry
        return None

    def add(self, key: int, entry: _Entry) -> None:
        if key in self.entries or entry.nbytes > self.max_bytes:
            return
        self.entries[key] = entry
        self.nbytes += entry.nbytes
        while self.nbytes > self.max_bytes:
            self.nbytes -= self.entries.popitem(last=False)[1].nbytes


COMPACT_BELOW = 0.75  # drop finished rows from the cache once fewer than this share still decode


@torch.inference_mode()
def _decode_chunk(model, tokenizer, rows: list[_Row], eos: set[int], max_positions: int | None,
                  prefix_reuse: bool = True, store: KVStore | None = None, llama=None) -> dict[str, int]:
    """Decode ``rows`` together; returns the token count of each prompt. ``llama``: the model's
    weights for :class:`~openr_transformers.llama_decode.SharedPrefixDecoder` (None: decode
    through the model's ``forward``)."""
    device = next(model.parameters()).device
    # with prefix reuse each distinct prompt is encoded once; without, once per row
    prompts = list(dict.fromkeys(row.prompt for row in rows)) if prefix_reuse else [row.prompt for row in rows]
    ids_of = encode_prompts(tokenizer, prompts)
    hashes = [_prefix_hashes(x) for x in ids_of]
    # cached KV of earlier calls: every prompt encodes its last `window` tokens, the rest comes from the store
    found = [store.lookup(x, h) if store is not None else None for x, h in zip(ids_of, hashes)]
    window = max(len(x) - (len(e.ids) if e else 0) for x, e in zip(ids_of, found))
    past = [max(0, len(x) - window) for x in ids_of]
    n_past = max(past)
    n_new = [len(x) - p for x, p in zip(ids_of, past)]
    n_layers = model.config.num_hidden_layers
    layers = [_SlabLayer(n_past + window) for _ in range(n_layers)]
    input_ids = torch.full((len(prompts), window), tokenizer.pad_token_id or 0, dtype=torch.long)
    attention = torch.zeros((len(prompts), n_past + window), dtype=torch.long)
    positions = torch.zeros((len(prompts), window), dtype=torch.long)
    for u, (x, p, n) in enumerate(zip(ids_of, past, n_new)):
        input_ids[u, window - n:] = torch.tensor(x[p:])
        attention[u, n_past - p: n_past] = 1
        attention[u, n_past + window - n:] = 1
        positions[u, window - n:] = torch.arange(p, p + n)
    if n_past:
        ref = next(e for e in found if e is not None).pieces[0]
        for layer, k, v in zip(layers, *ref):
            layer.lazy_initialization(k.unsqueeze(0).expand(len(prompts), -1, -1, -1), v.unsqueeze(0).expand(len(prompts), -1, -1, -1))
            layer.length = n_past
            # masked out, but must be finite: 0 x NaN from uninitialised memory would poison the attention
            layer.keys[:, :, :n_past].zero_()
            layer.values[:, :, :n_past].zero_()
        for u, (e, p) in enumerate(zip(found, past)):
            if p:
                e.write(layers, u, n_past - p, p)
        if store is not None:
            store.hits += sum(p > 0 for p in past)
    if store is not None:
        store.reused_tokens += sum(past)
        store.prompt_tokens += sum(len(x) for x in ids_of)
    input_ids, attention, positions = input_ids.to(device), attention.to(device), positions.to(device)
    out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                past_key_values=_slab_cache(layers), use_cache=True)
    position = {p: i for i, p in enumerate(prompts)}
    unit = [position[row.prompt] for row in rows] if prefix_reuse else list(range(len(rows)))
    index = torch.tensor(unit, device=device)
    limits = [row.max_tokens for row in rows]
    if max_positions:
        limits = [max(1, min(m, max_positions - len(ids_of[u]))) for m, u in zip(limits, unit)]
    capacity = max(limits)
    width = n_past + window
    first = [n_past - p if p else width - n for p, n in zip(past, n_new)]  # first cached column of each prompt
    # the prompts' KV (views of the prefill cache), shared by the stored entries of their samples
    prompt_kv = [([layer.keys[u, :, first[u]:] for layer in layers], [layer.values[u, :, first[u]:] for layer in layers])
                 for u in range(len(prompts))] if store is not None else None
    if llama is not None:
        state = llama_decode.SharedPrefixDecoder(model, [(layer.keys, layer.values) for layer in layers], attention,
                                                 unit, capacity, llama)
    else:
        state = _CopiedPrefix(model, layers, attention, index, capacity)
    logits = out.logits[:, -1, :][index]
    next_pos = positions[index, -1] + 1
    silent = vocabulary_texts(tokenizer).silent if any(row.stop_plan for row in rows) else None
    state_rows = RowState(rows, limits, eos, logits.shape[-1], logits.dtype,
                          lambda t: tokenizer.decode(t, skip_special_tokens=True), device, silent)
    cache = torch.arange(len(rows))  # the row in each cache row (finished ones stay until compaction)
    live = torch.arange(len(rows))  # cache rows still decoding
    while True:
        chosen = state_rows.pick(logits, cache, live)
        whole = len(live) == len(cache)
        ids = cache if whole else cache[live]
        done, stopped = state_rows.record(ids, chosen if whole else chosen[live], logits if whole else logits[live])
        if done.any():
            ended = ids[done].tolist()
            state_rows.finish(ended, stopped[done].tolist())
            if store is not None:
                _keep(store, state, rows, ended, live[done], ids_of, hashes, unit, prompt_kv)
            live = live[~done]
        if not len(live):
            break
        if len(live) < len(cache) and (len(live) <= state.compact_below * len(cache) or len(cache) < 8):
            keep = live.to(device)
            state.keep(keep)
            next_pos, chosen, cache = next_pos[keep], chosen[keep], cache[live]
            live = torch.arange(len(cache))
        logits = state.step(chosen, next_pos)
        next_pos = next_pos + 1
    return {prompt: len(x) for prompt, x in zip(prompts, ids_of)}


class _CopiedPrefix:
    """Decoding through the model's own ``forward`` (any architecture): each prompt's KV is copied
    to every row of it, and finished rows leave the cache only once few enough rows remain."""

    compact_below = COMPACT_BELOW

    def __init__(self, model, layers: list[_SlabLayer], attention: torch.Tensor, index: torch.Tensor, capacity: int):
        self.model, self.width = model, attention.shape[1]
        self.layers = [layer.take(index, self.width + capacity) for layer in layers]
        self.mask = torch.zeros((len(index), self.width + capacity), dtype=torch.long, device=attention.device)
        self.mask[:, : self.width] = attention[index]

    @property
    def length(self) -> int:
        """Tokens each row has fed after its prompt."""
        return self.layers[0].length - self.width

    def keep(self, index: torch.Tensor) -> None:
        self.layers = [layer.take(index, layer.capacity) for layer in self.layers]
        self.mask = self.mask[index]

    def own_kv(self, index: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        end = self.layers[0].length
        return ([layer.keys[:, :, self.width:end].index_select(0, index) for layer in self.layers],
                [layer.values[:, :, self.width:end].index_select(0, index) for layer in self.layers])

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        length = self.layers[0].length
        self.mask[:, length] = 1
        out = self.model(input_ids=tokens.unsqueeze(1), attention_mask=self.mask[:, : length + 1],
                         position_ids=positions.unsqueeze(1), past_key_values=_slab_cache(self.layers), use_cache=True)
        return out.logits[:, -1, :]


def _keep(store: KVStore, state, rows, ended: list[int], positions: torch.Tensor, ids, hashes, unit, prompt_kv) -> None:
    """Store finished rows ``ended`` (at cache rows ``positions``) with their KV (prompt + every
    generated token fed back): their prompt's KV, shared, and a copy of their own tokens'."""
    keys, values = state.own_kv(positions.to(prompt_kv[0][0][0].device))
    per_token = sum(k.shape[1] * k.shape[3] * k.element_size() for k in keys) * 2
    for b, i in enumerate(ended):
        row, u = rows[i], unit[i]
        fed = row.tokens[:-1]
        if len(fed) != state.length:  # cannot happen; never store a misaligned entry
            continue
        seq = tuple(ids[u]) + tuple(fed)
        pieces = [prompt_kv[u]] + ([([k[b] for k in keys], [v[b] for v in values])] if fed else [])
        key = _prefix_hashes(fed, hashes[u][-1])[-1] if fed else hashes[u][-1]  # as lookup() hashes seq
        store.add(key, _Entry(seq, pieces, per_token * len(seq)))


def _finish(row: _Row, tokenizer, eos: set[int]) -> Completion:
    text = tokenizer.decode(row.tokens, skip_special_tokens=True)
    found = sorted((text.find(s), s) for s in row.stop if s in text)
    matched = None
    if found and row.stop_reason == "stop" and row.tokens[-1] not in eos:
        text, matched = text[: found[0][0]], found[0][1]
    return Completion(text, len(row.tokens), row.stop_reason, tuple(row.token_logprobs) if row.logprobs else None, matched)


def generate(model, tokenizer, requests: Sequence[GenerationRequest], *, batch_size: int = 256,
             prefix_reuse: bool = True, store: KVStore | None = None) -> list[GenerationResult]:
    """``store``: KV of earlier calls to continue from (and to add this call's sequences to)."""
    rows = _rows(requests)
    if store is not None:
        store.check(model)
    plans: dict = {}
    for row in rows:
        if row.stop:
            if row.stop not in plans:
                plans[row.stop] = plan(tokenizer, row.stop)
            row.stop_plan = plans[row.stop]
    eos = _eos_ids(model, tokenizer)
    max_positions = getattr(model.config, "max_position_embeddings", None)
    llama = llama_decode.load(model) if llama_decode.supports(model) else None
    prompt_tokens = {}
    for chunk in _chunks(rows, batch_size, prefix_reuse):
        prompt_tokens.update(_decode_chunk(model, tokenizer, chunk, eos, max_positions, prefix_reuse, store, llama))
    by_request: list[list[Completion]] = [[] for _ in requests]
    for row in rows:
        by_request[row.request].append(_finish(row, tokenizer, eos))
    results = []
    for r, request in enumerate(requests):
        if request.prompt not in prompt_tokens:
            prompt_tokens[request.prompt] = len(encode_prompts(tokenizer, [request.prompt])[0])
        copies = 1 if request.params.temperature > 0 else request.params.n
        results.append(GenerationResult(tuple(by_request[r]) * copies, prompt_tokens[request.prompt]))
    return results
