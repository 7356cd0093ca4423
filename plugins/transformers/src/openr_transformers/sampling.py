"""The rows of one decoding batch as tensors: sampling parameters, random draws, stop tests and
generated tokens, so that a step costs a few tensor ops instead of a Python loop over rows.

Every row still samples from its own seeded generator (16 uniforms at a time, the numbers one
``torch.rand((), generator=rng)`` per token gives), so its text depends only on its prompt,
parameters and seed.
"""

from __future__ import annotations

import torch

BLOCK = 16  # uniforms drawn from a row's generator at a time


def pick(logits: torch.Tensor, temps: torch.Tensor, top_p: torch.Tensor, u: torch.Tensor,
         sampled: torch.Tensor | None) -> torch.Tensor:
    """Next token per row of ``logits``: argmax, or (rows in ``sampled``, all when None) top-p
    sampling at ``temps`` with the uniform draw ``u``."""
    chosen = logits.argmax(-1)
    if sampled is not None:
        if not len(sampled):
            return chosen
        logits, temps, top_p, u = logits[sampled], temps[sampled], top_p[sampled], u[sampled]
    probs = torch.softmax(logits.float() / temps.unsqueeze(1), dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    cumulative = sorted_probs.cumsum(-1)
    # keep the smallest prefix whose mass reaches top_p (always at least one token)
    sorted_probs = sorted_probs.masked_fill(cumulative - sorted_probs >= top_p.unsqueeze(1), 0.0)
    cumulative = sorted_probs.cumsum(-1)
    position = torch.searchsorted(cumulative, u.unsqueeze(1) * cumulative[:, -1:]).clamp(max=cumulative.shape[1] - 1)
    tokens = order.gather(1, position).squeeze(1)
    if sampled is None:
        return tokens
    chosen[sampled] = tokens
    return chosen


class RowState:
    """``rows`` (objects with ``temperature``, ``top_p``, ``rng``, ``logprobs``, ``stop`` and
    ``stop_plan``, a :class:`~openr_transformers.stops.StopPlan` or None) decoded together for at
    most ``limits[i]`` tokens each; ``eos``: token ids that end every row; ``decode``: token ids
    -> text; ``silent``: bool per token id, decodes to no text (for stop strings matched on text)."""

    def __init__(self, rows, limits: list[int], eos: set[int], vocab: int, dtype: torch.dtype, decode, device=None,
                 silent: torch.Tensor | None = None):
        self.rows, self.decode, self.step = rows, decode, 0
        n = len(rows)
        # as the rows' own floats rounded to the logits' dtype, then computed in float32
        self.temps = torch.tensor([r.temperature if r.temperature > 0 else 1.0 for r in rows], dtype=dtype).float()
        self.top_p = torch.tensor([r.top_p for r in rows], dtype=dtype).float()
        self.sampled = torch.tensor([r.temperature > 0 for r in rows], dtype=torch.bool)
        self.all_sampled, self.any_sampled = bool(self.sampled.all()), bool(self.sampled.any())
        self.logprobs = any(r.logprobs for r in rows)
        self.limits = torch.tensor(limits)
        # tokens that end a row: the end tokens, and each row's stop tokens where matching ids is
        # exact (-1 pads); kept per row, not as a rows x vocabulary mask (1024 rows of a 150k
        # vocabulary: 150 MB)
        self.eos = torch.tensor(sorted(t for t in eos if 0 <= t < vocab), dtype=torch.long)
        own = [sorted(t for t in (r.stop_plan.ids or ()) if 0 <= t < vocab) if r.stop_plan else [] for r in rows]
        self.stop_ids = torch.full((n, max(1, max(map(len, own), default=0))), -1, dtype=torch.long)
        for i, ids in enumerate(own):
            self.stop_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        # stops matched on text: a row decodes its tail only after a token that can complete one
        text_plans = {id(r.stop_plan): r.stop_plan for r in rows if r.stop_plan and r.stop_plan.ids is None}
        self.text_rows = None
        if text_plans:
            self.text_rows = torch.tensor([bool(r.stop_plan) and r.stop_plan.ids is None for r in rows])
            self.candidates = torch.zeros(vocab, dtype=torch.bool)
            for p in text_plans.values():
                size = min(vocab, len(p.candidates))
                self.candidates[:size] |= p.candidates[:size]
            self.silent = torch.ones(vocab, dtype=torch.bool)  # ids beyond the tokenizer decode to nothing
            size = min(vocab, len(silent))
            self.silent[:size] = silent[:size]
        self.tokens = torch.zeros((n, max(limits)), dtype=torch.long)
        self.token_logprobs = torch.zeros((n, max(limits))) if self.logprobs else None
        self.uniforms = torch.zeros((n, BLOCK))
        if device is not None and device != torch.device("cpu"):
            self.temps, self.top_p, self.uniforms = self.temps.to(device), self.top_p.to(device), self.uniforms.to(device)

    def pick(self, logits: torch.Tensor, cache: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
        """Next token of every row in ``cache`` (row ids, in cache order); ``live``: the cache
        positions of the rows still decoding (the others' tokens are ignored)."""
        if self.any_sampled and self.step % BLOCK == 0:
            ids = cache[live].tolist()
            drawn = [torch.rand(BLOCK, generator=self.rows[i].rng) for i in ids if self.rows[i].rng is not None]
            if drawn:
                target = torch.tensor([i for i in ids if self.rows[i].rng is not None])
                self.uniforms.index_copy_(0, target.to(self.uniforms.device), torch.stack(drawn).to(self.uniforms.device))
        if not self.any_sampled:
            sampled = torch.zeros(0, dtype=torch.long)
        elif self.all_sampled:
            sampled = None
        else:
            sampled = self.sampled[cache].nonzero().squeeze(1)
        index = cache.to(logits.device)
        u = self.uniforms[index, self.step % BLOCK]
        return pick(logits, self.temps[index], self.top_p[index], u, sampled)

    def record(self, ids: torch.Tensor, tokens: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``tokens`` (with ``logits``, the distributions they came from) to rows ``ids``;
        returns which of them are done, and which of those stopped (end token or stop string)."""
        s = self.step
        tokens = tokens.cpu()
        self.tokens[ids, s] = tokens
        if self.logprobs:
            logp = torch.log_softmax(logits.float(), dim=-1).gather(1, tokens.to(logits.device).unsqueeze(1)).squeeze(1)
            self.token_logprobs[ids, s] = logp.cpu()
        stopped = torch.isin(tokens, self.eos) | (self.stop_ids[ids] == tokens.unsqueeze(1)).any(1)
        if self.text_rows is not None:
            check = self.text_rows[ids] & self.candidates[tokens] & ~stopped
            if check.any():
                for b in check.nonzero().squeeze(1).tolist():
                    stopped[b] = self._stop_in_tail(int(ids[b]), s + 1)
        self.step = s + 1
        return stopped | (self.limits[ids] <= s + 1), stopped

    def _stop_in_tail(self, i: int, length: int) -> bool:
        """Whether row ``i``'s last tokens (``length`` generated so far) decode to a text holding
        one of its stops: enough of them that every stop fits after the first (see StopPlan)."""
        plan, row = self.rows[i].stop_plan, self.tokens[i, :length]
        need = plan.max_bytes + 1
        k = need
        while True:
            k = min(k, length)
            loud = int((~self.silent[row[length - k:]]).sum())
            if loud >= need or k == length:
                break
            k += need - loud
        text = self.decode(row[length - k:].tolist())
        return any(stop in text for stop in plan.stops)

    def finish(self, ids: list[int], stopped: list[bool]) -> None:
        """Write the generated tokens (and log-probs, stop reason) of finished rows ``ids`` to the rows."""
        tokens = self.tokens[ids, : self.step].tolist()
        logps = self.token_logprobs[ids, : self.step].tolist() if self.logprobs else None
        for b, (i, stop) in enumerate(zip(ids, stopped)):
            row = self.rows[i]
            row.tokens = tokens[b]
            row.stop_reason = "stop" if stop else "length"
            if row.logprobs:
                row.token_logprobs = logps[b]
