"""Where a reward model reads its scores: one tokenisation of the whole solution, one position per step.

The text is ``prompt + step_1 + tag + join + step_2 + tag + join ... + step_n + tag + suffix``.
Positions come from the fast tokenizer's character offsets, so they match a tokenisation of
the full string exactly (no per-piece tokenising that BPE merges would break). The read
position of step i is the last token of its tag (or of the step itself when the tag is empty):
its logits predict what follows the tag, which is where training puts the label, so training
and inference agree.

Three ways to get the text, each what a published checkpoint's reference code does:

- a ``prompt_template`` (``{question}`` replaced literally, so ``\\boxed{}`` and other braces
  stay as written) and a ``suffix``;
- the tokenizer's chat template (``chat``): system / user / assistant messages rendered by the
  tokenizer, the steps inside the assistant message (Qwen2.5-Math-PRM, Qwen2.5-Math-RM, EurusPRM);
- one chat turn per step (:func:`build_turns_layout`, RLHFlow's PRMs).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import attrs

from openr_core.errors import ConfigError

QUESTION = "{question}"


@attrs.frozen
class Layout:
    input_ids: list[int]
    read_positions: list[int]  # one per step
    step_token_spans: list[tuple[int, int]]  # [start, end) token range of each step and its tag (not the join)
    response_start: int  # first token after the prompt
    step_ends: tuple[int, ...] = ()  # character end of each step + tag in the text (for card-exact re-tokenising)
    text: str = ""


def check_template(template: str, field: str = "prompt_template") -> str:
    """A prompt template must contain ``{question}``; every other brace is literal text."""
    if QUESTION not in template:
        raise ValueError(f"{field}: {template!r} has no {QUESTION} (the question goes there; other braces are kept as written)")
    return template


def fill(template: str, question: str, bos_token: str | None = None) -> str:
    """The template with ``{question}`` replaced literally (``str.format`` would choke on
    ``\\boxed{}``) and ``{bos_token}`` by the tokenizer's BOS text."""
    return template.replace("{bos_token}", bos_token or "").replace(QUESTION, question)


SENTINEL = "\x00openr-steps\x00"


def chat_frame(tokenizer, question: str, system_prompt: str | None) -> tuple[str, str]:
    """(prompt, suffix) around the assistant message as the tokenizer's chat template renders
    ``[system], user: question, assistant: <steps>``."""
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": question}, {"role": "assistant", "content": SENTINEL}]
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("chat: true needs a tokenizer with a chat template")
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    if text.count(SENTINEL) != 1:
        raise ConfigError("chat: the tokenizer's chat template does not keep the assistant message as written")
    prompt, suffix = text.split(SENTINEL)
    return prompt, suffix


def _index(tokenizer, text: str, add_special_tokens: bool):
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=add_special_tokens)
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

    return ids, last_token_before, first_token_from


def build_layout(tokenizer, prompt: str, steps: Sequence[str], tag: str = "", join: str = "\n",
                 max_length: int | None = None, suffix: str = "", add_special_tokens: bool = True) -> Layout:
    text = prompt
    spans = []
    for i, step in enumerate(steps):
        start = len(text)
        text += step + tag
        end = len(text)
        if i < len(steps) - 1:
            text += join
        spans.append((start, end))
    if steps:
        text += suffix
    ids, last_token_before, first_token_from = _index(tokenizer, text, add_special_tokens)
    reads = [last_token_before(end) for _, end in spans]
    token_spans = [(first_token_from(start), last_token_before(end) + 1) for start, end in spans]
    response_start = first_token_from(len(prompt)) if steps else len(ids)
    _check_length(ids, max_length)
    return Layout(ids, reads, token_spans, response_start, tuple(end for _, end in spans), text)


def build_piecewise_layout(tokenizer, prompt: str, steps: Sequence[str], tag: str, max_length: int | None = None) -> Layout:
    """Each piece tokenised on its own (no special tokens): ``prompt``, then per step its text and
    the last token of ``tag``, read there. Skywork's PRM reference code builds its input this way."""
    def encode(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    tag_ids = encode(tag)
    if not tag_ids:
        raise ConfigError("tokenize: per-step needs a non-empty step tag")
    ids = encode(prompt)
    response_start, reads, spans = len(ids), [], []
    for step in steps:
        start = len(ids)
        ids = ids + encode(step) + tag_ids[-1:]
        reads.append(len(ids) - 1)
        spans.append((start, len(ids)))
    _check_length(ids, max_length)
    return Layout(ids, reads, spans, response_start if steps else len(ids))


def build_turns_layout(tokenizer, question: str, steps: Sequence[str], answer: str, system_prompt: str | None = None,
                       max_length: int | None = None) -> Layout:
    """One user turn per step (the first is ``question + " " + step``), each answered by an
    assistant turn ``answer``, rendered by the tokenizer's chat template; the score of step k is
    read at the last token before its assistant answer (the logits there predict the answer).
    RLHFlow's Llama3.1-8B-PRM reference code builds this conversation."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    turn_starts = []  # character where each assistant answer starts
    for k, step in enumerate(steps):
        messages.append({"role": "user", "content": f"{question} {step}" if k == 0 else step})
        head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        turn_starts.append(len(head))
        messages.append({"role": "assistant", "content": answer})
    text = tokenizer.apply_chat_template(messages, tokenize=False) if steps else ""
    for start in turn_starts:
        if not text[start:].startswith(answer):
            raise ConfigError("chat turns: the chat template does not render the assistant answer right after its header")
    ids, last_token_before, first_token_from = _index(tokenizer, text, add_special_tokens=False)
    reads = [last_token_before(start) for start in turn_starts]
    # a step's tokens: from its user content to its read position (the turn markup included)
    starts = [0] + [first_token_from(s + len(answer)) for s in turn_starts[:-1]]
    _check_length(ids, max_length)
    return Layout(ids, reads, [(a, r + 1) for a, r in zip(starts, reads)], reads[0] + 1 if steps else len(ids),
                  tuple(turn_starts), text)


def _check_length(ids, max_length):
    if max_length is not None and len(ids) > max_length:
        raise ValueError(f"solution is {len(ids)} tokens, more than max_length {max_length}")
