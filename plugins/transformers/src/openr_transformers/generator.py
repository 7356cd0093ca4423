"""The `transformers` generator: any HF causal LM, by local path, ``pkg:`` path or hub name.

This module stays light (no torch at import) so that ``openr validate`` can read ``Config``;
the decoding loop lives in :mod:`openr_transformers.decoding`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from openr_core import GenerationRequest, GenerationResult, Generator
from openr_core.config import count


@attrs.frozen
class TransformersGeneratorConfig:
    """``model``: local folder, ``pkg:package/folder`` or hub name. ``batch_size``: sequences decoded
    together. ``prefix_reuse``: encode each distinct prompt once and share its KV cache between
    all its samples (turn off only to measure the difference). ``kv_cache_mb``: keep the KV cache
    of decoded sequences across calls (least recently used first out beyond this many MB; 0: off),
    so a prompt continuing an earlier call's output (a search node's children) encodes only its new
    tokens; with ``prefix_reuse: false`` nothing is kept."""

    model: str
    tokenizer: str | None = None
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    batch_size: int = 256
    prefix_reuse: bool = True
    kv_cache_mb: float = 1024
    trust_remote_code: bool = False
    threads: int | None = count(None)

    def __attrs_post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.kv_cache_mb < 0:
            raise ValueError(f"kv_cache_mb must be >= 0, got {self.kv_cache_mb}")


class TransformersGenerator(Generator):
    """Any HF causal LM: batched sampling, stop strings, logprobs, shared-prefix KV reuse."""

    Config = TransformersGeneratorConfig

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        from openr_transformers.loading import load_causal_lm

        self.model, self.tokenizer = load_causal_lm(
            self.config.model, tokenizer=self.config.tokenizer, revision=self.config.revision,
            dtype=self.config.dtype, device=self.config.device,
            trust_remote_code=self.config.trust_remote_code, threads=self.config.threads,
        )
        self.kv_store = self._store()

    def _store(self):
        """The cross-call KV store (None when off)."""
        if not self.config.prefix_reuse or self.config.kv_cache_mb <= 0:
            return None
        from openr_transformers.decoding import KVStore

        return KVStore(int(self.config.kv_cache_mb * 2**20))

    @classmethod
    def around(cls, model, tokenizer, **fields) -> TransformersGenerator:
        """A generator sampling from an already-loaded model, sharing its weights: RL trainers
        sample from the policy they are updating. ``fields`` are Config fields (``model`` is
        only a label here)."""
        self = cls.__new__(cls)
        Generator.__init__(self, model=fields.pop("model", "<in-memory>"), **fields)
        self.model, self.tokenizer = model, tokenizer
        self.kv_store = self._store()  # emptied whenever the trainer changes the weights
        return self

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        from openr_transformers.decoding import generate

        training = self.model.training
        self.model.eval()
        try:
            return generate(self.model, self.tokenizer, list(requests), batch_size=self.config.batch_size,
                            prefix_reuse=self.config.prefix_reuse, store=self.kv_store)
        finally:
            self.model.train(training)

    def close(self) -> None:
        self.model = self.kv_store = None
