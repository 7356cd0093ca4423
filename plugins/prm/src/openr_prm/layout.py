"""Where a reward model reads its scores: one tokenisation of the whole solution, one position per step.

The text is ``prompt + step_1 + tag + join + step_2 + tag + join ...``. Positions come from the
fast tokenizer's character offsets, so they match a tokenisation of the full string exactly
(no per-piece tokenising that BPE merges would break). The read position of step i is the
last token of its tag (or of the step itself when the tag is empty): its logits predict what
follows the tag, which is where training puts the label, so training and inference agree.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import attrs


@attrs.frozen
class Layout:
    input_ids: list[int]
    read_positions: list[int]  # one per step
    step_token_spans: list[tuple[int, int]]  # [start, end) token range of each step and its tag (not the join)
    response_start: int  # first token after the prompt


def build_layout(tokenizer, prompt: str, steps: Sequence[str], tag: str = "", join: str = "\n",
                 max_length: int | None = None) -> Layout:
    text = prompt
    spans = []
    for i, step in enumerate(steps):
        start = len(text)
        text += step + tag
        end = len(text)
        if i < len(steps) - 1:
            text += join
        spans.append((start, end, len(text)))
    enc = tokenizer(text, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    # text tokens (added specials such as BOS have empty spans) with their spans, in order
    text_tokens = [t for t, (a, b) in enumerate(offsets) if not (ids[t] in special and a == b)]
    starts = [offsets[t][0] for t in text_tokens]
    ends = [offsets[t][1] for t in text_tokens]

    def last_token_before(char_end: int) -> int:
        k = bisect.bisect_left(starts, char_end) - 1
        return text_tokens[k] if k >= 0 else 0

    def first_token_from(char_start: int) -> int:
        k = bisect.bisect_right(ends, char_start)
        return text_tokens[k] if k < len(text_tokens) else len(ids)

    reads = [last_token_before(end) for _, end, _ in spans]
    token_spans = []
    for start, end, _ in spans:
        token_spans.append((first_token_from(start), last_token_before(end) + 1))
    response_start = first_token_from(len(prompt)) if steps else len(ids)
    if max_length is not None and len(ids) > max_length:
        raise ValueError(f"solution is {len(ids)} tokens, more than max_length {max_length}")
    return Layout(ids, reads, token_spans, response_start)
