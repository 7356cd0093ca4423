"""Prompt token ids as a model should receive them, for every generator and trainer.

A chat template often writes the BOS token itself (Llama-3's starts with
``{{ bos_token }}``), and a tokenizer whose post-processor adds BOS then adds a second one:
the model would read ``<|begin_of_text|><|begin_of_text|>``, which it never saw in training.
Duck-typed on a Hugging Face tokenizer, so this module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Sequence


def encode_prompts(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each prompt with the tokenizer's special tokens, and one BOS where both the
    text and the tokenizer put one at the start."""
    bos = getattr(tokenizer, "bos_token_id", None)
    out = tokenizer(list(texts))["input_ids"] if texts else []
    if bos is None:
        return out
    return [ids[1:] if len(ids) > 1 and ids[0] == bos and ids[1] == bos else ids for ids in out]


def encode_prompt(tokenizer, text: str) -> list[int]:
    """:func:`encode_prompts` of one text."""
    return encode_prompts(tokenizer, [text])[0]
