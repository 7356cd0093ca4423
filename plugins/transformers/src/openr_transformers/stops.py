"""Stop strings matched on decoded text, at the cost of token-id matching where possible.

A row stops when the text decoded from its generated tokens contains a stop string, as vLLM
does. Matching a one-token stop by its id is not the same thing with a BPE vocabulary: the step
separator ``"\\n\\n"`` is also inside merged tokens (``".\\n\\n"``, ``":\\n\\n"``), and two
``"\\n"`` tokens spell it too, so a search would score two steps as one.

Once per tokenizer, :func:`vocabulary_texts` decodes every token as it reads after another
token. From that table, once per stop tuple, :func:`plan` decides:

- **token ids** (``StopPlan.ids``) when that is provably the same as text matching: every stop
  is one token that decodes to it, no other token's text contains a stop, no token other than
  the stop's own ends with a proper prefix of a stop (a stop cannot straddle two tokens), and
  a stop with non-ASCII characters has no partial-UTF-8 token to straddle with. The arith
  sandbox's ``"\\n"`` is such a stop.
- otherwise **text**: ``StopPlan.candidates`` marks the tokens that can complete a stop (their
  text contains a stop's last character, or they carry partial UTF-8 bytes). Only a row whose
  newest token is one of them decodes its tail (tokens enough to hold every stop plus one token
  before it: ``max_bytes + 1`` of those that produce text, each producing at least one byte)
  and looks for its stops there.
"""

from __future__ import annotations

import weakref

import attrs
import torch

PARTIAL = "\ufffd"  # what a token holding an incomplete UTF-8 sequence decodes to

_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@attrs.frozen(eq=False)
class VocabularyTexts:
    texts: list[str]  # every token id's text after another token ("" for skipped special tokens)
    silent: torch.Tensor  # bool per id: decodes to no text (special tokens)
    plans: dict = attrs.field(factory=dict)  # stop tuple -> StopPlan, computed once


@attrs.frozen(eq=False)
class StopPlan:
    stops: tuple[str, ...]
    ids: frozenset[int] | None  # token-id matching is exact (None: match on text)
    candidates: torch.Tensor | None  # bool per id: can complete a stop (text matching only)
    max_bytes: int  # the longest stop in UTF-8 bytes



def _decode_batch(tokenizer, sequences: list[list[int]]) -> list[str]:
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is not None and hasattr(backend, "decode_batch"):
        return backend.decode_batch(sequences, skip_special_tokens=True)
    return [tokenizer.decode(s, skip_special_tokens=True) for s in sequences]


def vocabulary_texts(tokenizer) -> VocabularyTexts:
    """Each token's text where it follows a plain token (a leading ``▁`` then reads as a space);
    computed once per tokenizer (and again if tokens are added)."""
    size = len(tokenizer)
    cached = _TABLES.get(tokenizer)
    if cached is not None and len(cached.texts) == size:
        return cached
    encoded = tokenizer("a", add_special_tokens=False)["input_ids"]
    anchor = encoded[0] if len(encoded) == 1 and encoded[0] not in tokenizer.all_special_ids else None
    if anchor is None:
        texts = _decode_batch(tokenizer, [[i] for i in range(size)])
    else:
        head = _decode_batch(tokenizer, [[anchor]])[0]
        pairs = _decode_batch(tokenizer, [[anchor, i] for i in range(size)])
        # a pair that does not start with the anchor's text is marked partial: never a fast path
        texts = [t[len(head):] if t.startswith(head) else PARTIAL + t for t in pairs]
    table = VocabularyTexts(texts, torch.tensor([t == "" for t in texts], dtype=torch.bool))
    _TABLES[tokenizer] = table
    return table


def plan(tokenizer, stops: tuple[str, ...], table: VocabularyTexts | None = None) -> StopPlan:
    """How to detect ``stops`` with ``tokenizer`` (see the module docstring); computed once per
    tokenizer and stop tuple."""
    table = table or vocabulary_texts(tokenizer)
    if stops not in table.plans:
        table.plans[stops] = _plan(tokenizer, tuple(s for s in stops if s), table.texts)
    return table.plans[stops]


def _plan(tokenizer, stops: tuple[str, ...], texts: list[str]) -> StopPlan:
    max_bytes = max((len(s.encode()) for s in stops), default=0)
    ids = _exact_ids(tokenizer, stops, texts)
    if ids is not None:
        return StopPlan(stops, ids, None, max_bytes)
    last = {s[-1] for s in stops}
    candidates = torch.tensor([PARTIAL in t or any(c in t for c in last) for t in texts], dtype=torch.bool)
    return StopPlan(stops, None, candidates, max_bytes)


def _exact_ids(tokenizer, stops: tuple[str, ...], texts: list[str]) -> frozenset[int] | None:
    """The stops' token ids when matching them by id is exactly matching them on text."""
    if not stops:
        return None
    own = {}
    for stop in stops:
        encoded = tokenizer(stop, add_special_tokens=False)["input_ids"]
        if len(encoded) != 1 or texts[encoded[0]] != stop:
            return None
        own[encoded[0]] = stop
    prefixes = {s[:k] for s in stops for k in range(1, len(s))}
    ascii_only = all(s.isascii() for s in stops)
    for token, text in enumerate(texts):
        if token in own or not text:
            continue
        if any(s in text for s in stops) or (not ascii_only and PARTIAL in text):
            return None
        if prefixes and any(text.endswith(p) for p in prefixes):
            return None
    return frozenset(own)
