"""A decode step for Llama models in plain tensor ops, attending over a shared prompt KV.

The rows sampled from one prompt share that prompt's KV, kept once (the prefill's cache), and
hold only their own tokens' KV: the n children of a search node never copy their parent's
cache, and the attention reads the prompt once per prompt instead of once per row. Each step
embeds the rows' last tokens, runs the layers with fused q/k/v and gate/up projections (for
models small enough that the fused copies cost little memory) and
rotary angles from a table, and scores the prompt and own parts in one softmax. No mask,
cache or output objects are built, so a step at 16 rows costs little more than its matmuls.

Only plain Llama is decoded this way (multi-head attention, SiLU, default RoPE, no biases);
:func:`supports` says so, and other models decode through their own ``forward``.
"""

from __future__ import annotations

import weakref

import attrs
import torch
import torch.nn.functional as F


def supports(model) -> bool:
    """Whether :class:`SharedPrefixDecoder` computes exactly this model's forward."""
    c = model.config
    rope = getattr(c, "rope_parameters", None) or {}
    inner = getattr(model, "model", None)
    return (getattr(c, "model_type", None) == "llama" and getattr(c, "hidden_act", None) == "silu"
            and not getattr(c, "attention_bias", True) and not getattr(c, "mlp_bias", True)
            and c.num_key_value_heads == c.num_attention_heads and rope.get("rope_type") == "default"
            and getattr(c, "pretraining_tp", 1) == 1 and inner is not None
            and getattr(model, "lm_head", None) is not None and getattr(model.lm_head, "bias", None) is None)


@attrs.frozen
class _Layer:
    norm1: torch.Tensor
    eps1: float
    qkv: list[torch.Tensor]  # q, k and v projections: stacked into one [3 * hidden, hidden], or the three
    o: torch.Tensor
    norm2: torch.Tensor
    eps2: float
    gate_up: list[torch.Tensor]  # gate and up: [2 * intermediate, hidden], or the two
    down: torch.Tensor


@attrs.frozen
class _Weights:
    fingerprint: tuple
    layers: list[_Layer]
    cos: torch.Tensor  # [max positions, head dim], as the model's rotary embedding computes them
    sin: torch.Tensor


_weights: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fingerprint(model) -> tuple:
    return tuple((p.data_ptr(), p._version) for p in model.parameters())


def _rotary_table(model, n: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    rotary = model.model.rotary_emb
    positions = torch.arange(n, device=rotary.inv_freq.device)
    freqs = positions[:, None].float() * rotary.inv_freq.float()
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * rotary.attention_scaling).to(dtype), (emb.sin() * rotary.attention_scaling).to(dtype)


FUSE_MAX_BYTES = 64 * 2**20  # larger models use their projections as they are, without fused copies


def load(model) -> _Weights:
    """The model's weights in the fused layout (rebuilt when the weights change): load once per
    call, as checking for changes reads every parameter."""
    fingerprint = _fingerprint(model)
    cached = _weights.get(model)
    if cached is not None and cached.fingerprint == fingerprint:
        return cached
    blocks = model.model.layers
    fuse = sum(p.numel() * p.element_size() for p in blocks.parameters()) <= FUSE_MAX_BYTES

    def joined(*weights):
        return [torch.cat(weights)] if fuse else list(weights)

    layers = []
    for block in blocks:
        a, m = block.self_attn, block.mlp
        layers.append(_Layer(
            block.input_layernorm.weight, block.input_layernorm.variance_epsilon,
            joined(a.q_proj.weight, a.k_proj.weight, a.v_proj.weight), a.o_proj.weight,
            block.post_attention_layernorm.weight, block.post_attention_layernorm.variance_epsilon,
            joined(m.gate_proj.weight, m.up_proj.weight), m.down_proj.weight))
    dtype = model.model.embed_tokens.weight.dtype
    cos, sin = _rotary_table(model, model.config.max_position_embeddings, dtype)
    weights = _Weights(fingerprint, layers, cos, sin)
    _weights[model] = weights
    return weights


def _project(x: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
    """``x`` through projections side by side: one matmul when they are fused."""
    if len(weights) == 1:
        return F.linear(x, weights[0])
    return torch.cat([F.linear(x, w) for w in weights], dim=-1)


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``LlamaRMSNorm``, op for op."""
    dtype = x.dtype
    x = x.to(torch.float32)
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class SharedPrefixDecoder:
    """Decodes rows that continue ``prompt_layers`` (per layer, keys and values [prompts, heads,
    width, dim], e.g. a prefill's cache) with ``prompt_mask`` ([prompts, width], 1 for real
    positions); row r continues prompt ``unit[r]``. Each row keeps its own tokens' KV in a
    buffer of ``capacity`` positions. Finished rows leave at every step: only their own few
    tokens are copied. ``weights``: :func:`load` of ``model``."""

    compact_below = 1.0

    def __init__(self, model, prompt_layers: list[tuple[torch.Tensor, torch.Tensor]], prompt_mask: torch.Tensor,
                 unit: list[int], capacity: int, weights: _Weights | None = None):
        self.model, self.weights = model, weights or load(model)
        c = model.config
        self.heads = c.num_attention_heads
        self.head_dim = getattr(c, "head_dim", None) or c.hidden_size // self.heads
        self.scale = self.head_dim ** -0.5
        self.prompt_layers = [(k.contiguous(), v.contiguous()) for k, v in prompt_layers]
        keys = self.prompt_layers[0][0]
        self.prompts, self.width = keys.shape[0], keys.shape[2]
        self.prompt_bias = torch.zeros(prompt_mask.shape, dtype=keys.dtype, device=keys.device).masked_fill(
            prompt_mask == 0, float("-inf"))
        self.capacity, self.length = capacity, 0
        shape = (capacity, len(unit), self.heads, self.head_dim)  # token-major: a step writes one block
        self.own = [(keys.new_empty(shape), keys.new_empty(shape)) for _ in self.weights.layers]
        self._index(torch.tensor(unit, device=keys.device))

    def _index(self, unit: torch.Tensor) -> None:
        """Where each row's query goes in the [prompts, group, ...] layout of the shared part."""
        self.unit = unit
        rows = len(unit)
        counts = torch.bincount(unit, minlength=self.prompts)
        self.group = int(counts.max()) if rows else 1
        starts = torch.cumsum(counts, 0) - counts
        order = torch.argsort(unit, stable=True)
        slot = torch.empty_like(unit)
        slot[order] = torch.arange(rows, device=unit.device) - starts[unit[order]]
        self.flat = unit * self.group + slot
        # rows already in [prompts, group] order with full groups need no scatter or gather
        self.direct = rows == self.prompts * self.group and bool((self.flat == torch.arange(rows, device=unit.device)).all())
        self.row_bias = self.prompt_bias[unit].unsqueeze(1)  # [rows, 1, width]

    def keep(self, index: torch.Tensor) -> None:
        """Keep only rows ``index`` (in that order)."""
        n = self.length
        own = []
        for k, v in self.own:
            k2, v2 = k.new_empty((k.shape[0], len(index), *k.shape[2:])), v.new_empty((v.shape[0], len(index), *v.shape[2:]))
            torch.index_select(k[:n], 1, index, out=k2[:n])
            torch.index_select(v[:n], 1, index, out=v2[:n])
            own.append((k2, v2))
        self.own = own
        self._index(self.unit[index])

    def own_kv(self, index: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Rows ``index``'s own tokens' keys and values, per layer [rows, heads, length, dim]."""
        n = self.length
        return ([k[:n].index_select(1, index).permute(1, 2, 0, 3) for k, _ in self.own],
                [v[:n].index_select(1, index).permute(1, 2, 0, 3) for _, v in self.own])

    def _to_groups(self, x: torch.Tensor) -> torch.Tensor:
        """[rows, ...] -> [prompts, group, ...] (zeros where a prompt has fewer rows)."""
        if self.direct:
            return x.view(self.prompts, self.group, *x.shape[1:])
        out = x.new_zeros((self.prompts * self.group, *x.shape[1:]))
        return out.index_copy_(0, self.flat, x).view(self.prompts, self.group, *x.shape[1:])

    def _to_rows(self, x: torch.Tensor) -> torch.Tensor:
        """[prompts, group, ...] -> [rows, ...]."""
        x = x.reshape(self.prompts * self.group, *x.shape[2:])
        return x if self.direct else x.index_select(0, self.flat)

    def _attend(self, layer: int, q: torch.Tensor) -> torch.Tensor:
        """q [rows, heads, dim] over its prompt's KV and its own first ``length + 1`` tokens."""
        pk, pv = self.prompt_layers[layer]
        ok, ov = self.own[layer]
        n, w = self.length + 1, self.width
        grouped = self._to_groups(q).transpose(1, 2)  # [prompts, heads, group, dim]
        shared = self._to_rows(torch.matmul(grouped, pk.transpose(2, 3)).transpose(1, 2))  # [rows, heads, width]
        mine = (ok[:n] * q).sum(-1).permute(1, 2, 0)  # [rows, heads, n]
        scores = torch.cat((shared * self.scale + self.row_bias, mine * self.scale), dim=-1).float()
        # as SDPA's CPU kernel: unnormalised weights times values, divided by their sum at the end
        weights = torch.exp(scores - scores.amax(-1, keepdim=True))  # float32 (no-ops for float32 models)
        total = weights.sum(-1, keepdim=True)
        weights = weights.to(q.dtype)
        spread = self._to_groups(weights[..., :w]).transpose(1, 2)  # [prompts, heads, group, width]
        out = self._to_rows(torch.matmul(spread, pv).transpose(1, 2))  # [rows, heads, dim]
        out = out + (weights[..., w:].permute(2, 0, 1).unsqueeze(-1) * ov[:n]).sum(0)
        return (out.float() / total).to(q.dtype)

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (at ``positions``); the next-token logits [rows, vocab]."""
        model, w = self.model, self.weights
        rows, heads, dim = len(tokens), self.heads, self.head_dim
        x = model.model.embed_tokens(tokens)
        cos, sin = w.cos[positions][:, None, None], w.sin[positions][:, None, None]
        t = self.length
        for i, layer in enumerate(w.layers):
            h = _rms(x, layer.norm1, layer.eps1)
            qkv = _project(h, layer.qkv).view(rows, 3, heads, dim)
            q, k = _rotate(qkv[:, :2], cos, sin).unbind(1)  # queries and keys rotated together
            v = qkv[:, 2]
            ok, ov = self.own[i]
            ok[t] = k
            ov[t] = v
            x = x + F.linear(self._attend(i, q).reshape(rows, heads * dim), layer.o)
            h = _rms(x, layer.norm2, layer.eps2)
            gate, up = _project(h, layer.gate_up).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer.down)
        self.length = t + 1
        return model.lm_head(_rms(x, model.model.norm.weight, model.model.norm.variance_epsilon))
