"""Scoring with any head: all steps of many solutions per forward pass.

The head's :meth:`~openr_prm.heads.Head.raw` is shared by inference and training, so the
position a score is read from is the position the loss was applied to.
"""

from __future__ import annotations

import torch

from openr_core.types import ScoreRequest, StepScores
from openr_prm.heads import HEADS, Head


def head_for(kind: str, config) -> Head:
    return HEADS[kind](config)


class Scorer:
    def __init__(self, head: Head, models: dict | None = None, tokenizer=None):
        self.head, self.config = head, head.config
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        if models is None:
            models, tokenizer = head.load()
        self.models, self.tokenizer = models, tokenizer
        head.setup(tokenizer)

    @torch.inference_mode()
    def score(self, requests: list[ScoreRequest]) -> list[StepScores]:
        layouts = self.head.layouts(self.tokenizer, requests)
        out: list[StepScores | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda i: len(layouts[i].input_ids))  # less padding
        size = self.config.batch_size
        for start in range(0, len(order), size):
            chunk = [i for i in order[start : start + size] if layouts[i].read_positions]
            if chunk:
                raw = self.head.raw(self.models, [layouts[i] for i in chunk], self.tokenizer.pad_token_id)
                for i, values in zip(chunk, raw):
                    out[i] = StepScores(tuple(self.head.scores(values)), len(layouts[i].input_ids))
        return [s if s is not None else StepScores((), 0) for s in out]

    def score_per_prefix(self, requests: list[ScoreRequest]) -> list[StepScores]:
        """The slow baseline: one sequence per step prefix, reading only its last step."""
        prefixes = [ScoreRequest(r.problem, r.steps[: k + 1]) for r in requests for k in range(len(r.steps))]
        scored = iter(self.score(prefixes))
        out = []
        for r in requests:
            parts = [next(scored) for _ in r.steps]
            out.append(StepScores(tuple(p.scores[-1] for p in parts), sum(p.n_tokens for p in parts)))
        return out
