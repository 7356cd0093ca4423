"""Stepwise datasets in the formats PRM data comes in, read into LabelledExample.

Formats (``format:`` in configs):

- ``openr``: our labellers' ``labels.jsonl`` (prompt, completions, labels, soft_labels, ...), read by
  :func:`openr_core.stepwise.read_example`, whose field checks every format here shares.
- ``trl``: TRL's stepwise format (prompt, completions: list of steps, labels: list of bools).
- ``math-shepherd``: ``input`` with `` ки`` after each step, ``label`` with ``+``/``-`` there.
- ``prm800k``: raw PRM800K records (question, label.steps[].completions[].rating, chosen_completion).
- ``processbench``: ProcessBench JSON (problem, steps, label = first-error index or -1).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args

from openr_core.errors import DataError
from openr_core.jsonl import iter_records
from openr_core.stepwise import (build_example, check_id, check_labels, check_steps, check_text, describe, need,
                                  read_example)
from openr_core.types import LabelledExample

Format = Literal["openr", "trl", "math-shepherd", "prm800k", "processbench"]  # `format:` in configs
FORMATS = get_args(Format)
HUB = "hub:"  # ``hub:<dataset>/<split>``, e.g. ``hub:Qwen/ProcessBench/gsm8k``


def read_hub_records(spec: str) -> list[dict]:
    """Records of split ``<split>`` of hub data set ``<dataset>`` (``datasets.load_dataset``)."""
    name, _, split = spec[len(HUB):].rpartition("/")
    if not name or not split:
        raise DataError(f"{spec}: expected hub:<dataset>/<split>, e.g. hub:Qwen/ProcessBench/gsm8k")
    try:
        import datasets
    except ImportError as e:
        raise DataError(f"{spec}: loading from the hub needs the `datasets` package ({e})") from None
    try:
        return [dict(row) for row in datasets.load_dataset(name, split=split)]
    except Exception as e:  # network, unknown name or split: one line, with the local-path way out
        raise DataError(f"{spec}: cannot load from the hub: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                        " (no network? point `data:` at local copies of the files)") from None


def iter_data(path: str | Path):
    """``(where, record)`` for a local data file (:func:`openr_core.jsonl.iter_records`) or a ``hub:`` data set."""
    if str(path).startswith(HUB):
        return ((f"{path}: row {i}", record) for i, record in enumerate(read_hub_records(str(path))))
    return iter_records(path)


def from_trl(r: dict, where: str) -> LabelledExample:
    need(r, ("prompt", "completions", "labels"), where)
    values = check_labels(r["labels"], where, "labels", soft=True)
    soft = values if any(v not in (0.0, 1.0) for v in values) else None
    return build_example(where, check_text(r["prompt"], where, "prompt"), check_steps(r["completions"], where, "completions"),
                    [bool(round(v)) for v in values], soft)


def from_math_shepherd(r: dict, where: str, tag: str = "ки") -> LabelledExample:
    need(r, ("input", "label"), where)
    text, label = check_text(r["input"], where, "input"), check_text(r["label"], where, "label")
    pieces = text.split(tag)
    if len(pieces) < 2:
        raise DataError(f"{where}: no step tag '{tag}' in input")
    # the label text is the input with each tag replaced by + or -: read the sign after each step
    labels, cursor = [], 0
    for piece in pieces[:-1]:
        cursor += len(piece)
        sign = label[cursor : cursor + 1]
        if sign not in ("+", "-"):
            raise DataError(f"{where}: expected '+' or '-' in label at character {cursor}, found {sign!r}")
        labels.append(sign == "+")
        cursor += 1
    first = pieces[0]
    m = re.search(r"Step 1:", first)
    prompt, step1 = (first[: m.start()], first[m.start():]) if m else ("", first)
    steps = [s.strip() for s in [step1, *pieces[1:-1]]]
    return build_example(where, prompt.strip(), steps, labels, None, None, {"task": r.get("task")})


def from_prm800k(r: dict, where: str, neutral_is_good: bool = True) -> LabelledExample:
    need(r, ("question", "label"), where)
    label = r["label"]
    if not isinstance(label, dict) or not isinstance(label.get("steps", []), list):
        raise DataError(f"{where}: field 'label' must be an object with a 'steps' list, got {describe(label)}")
    steps, labels = [], []
    for k, step in enumerate(label.get("steps", [])):
        field = f"label.steps[{k}]"
        if not isinstance(step, dict):
            raise DataError(f"{where}: field '{field}' must be an object, got {describe(step)}")
        chosen = step.get("chosen_completion")
        completions = step.get("completions") or []
        if not isinstance(completions, list) or not all(isinstance(c, dict) for c in completions):
            raise DataError(f"{where}: field '{field}.completions' must be a list of objects")
        if chosen is not None and not (isinstance(chosen, int) and not isinstance(chosen, bool)):
            raise DataError(f"{where}: field '{field}.chosen_completion' must be an integer or null, got {describe(chosen)}")
        for i, c in enumerate(completions):
            check_text(c.get("text"), where, f"{field}.completions[{i}].text")
            rating = c.get("rating")
            if rating is not None and (isinstance(rating, bool) or not isinstance(rating, (int, float))):
                raise DataError(f"{where}: field '{field}.completions[{i}].rating' must be -1, 0, 1 or null, "
                                f"got {describe(rating)}")
        human = step.get("human_completion")
        if chosen is not None and 0 <= chosen < len(completions):
            picked = completions[chosen]
        elif human:
            text = human.get("text") if isinstance(human, dict) else human
            picked = {"text": check_text(text, where, f"{field}.human_completion"), "rating": 1}
        elif completions:
            picked = min(completions, key=lambda c: c.get("rating") if c.get("rating") is not None else 1)
        else:
            break
        rating = picked.get("rating")
        steps.append(picked["text"])
        labels.append(rating is None or rating > 0 or (rating == 0 and neutral_is_good))
        if rating is not None and rating < 0:
            break  # the solution is abandoned at its first bad step
    if not steps:
        raise DataError(f"{where}: no rated steps")
    question = r["question"]
    if isinstance(question, dict):
        question = question.get("problem")
        field = "question.problem"
    else:
        field = "question"
    return build_example(where, check_text(question, where, field), steps, labels, None, None,
                    {"finish_reason": label.get("finish_reason")})


def from_processbench(r: dict, where: str) -> LabelledExample:
    need(r, ("problem", "steps", "label"), where)
    steps = check_steps(r["steps"], where, "steps")
    first = r["label"]
    if isinstance(first, bool) or not isinstance(first, int) or not -1 <= first < len(steps):
        raise DataError(f"{where}: field 'label' must be -1 (no error) or a step index below {len(steps)}, "
                        f"got {describe(first)}")
    labels = [first == -1 or i < first for i in range(len(steps))]
    return build_example(where, check_text(r["problem"], where, "problem"), steps, labels, None,
                    check_id(r.get("id"), where, "id"),
                    {"first_error": first, "final_answer_correct": r.get("final_answer_correct")})


READERS = {"openr": read_example, "trl": from_trl, "math-shepherd": from_math_shepherd,
           "prm800k": from_prm800k, "processbench": from_processbench}


def load_stepwise(path: str | Path, format: str = "openr", limit: int | None = None) -> list[LabelledExample]:
    if format not in READERS:
        raise DataError(f"{path}: unknown format '{format}'; formats: {', '.join(FORMATS)}")
    records = list(iter_data(path))[:limit]
    if not records:  # an evaluation or training set of nothing would "succeed" having done nothing
        raise DataError(f"{path}: no records (an empty data file)")
    return [READERS[format](record, where) for where, record in records]
