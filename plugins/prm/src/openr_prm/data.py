"""Stepwise datasets in the formats PRM data comes in, read into LabelledExample.

Formats (``format:`` in configs):

- ``openr``: our labellers' ``labels.jsonl`` (prompt, completions, labels, soft_labels, ...).
- ``trl``: TRL's stepwise format (prompt, completions: list of steps, labels: list of bools).
- ``math-shepherd``: ``input`` with `` ки`` after each step, ``label`` with ``+``/``-`` there.
- ``prm800k``: raw PRM800K records (question, label.steps[].completions[].rating, chosen_completion).
- ``processbench``: ProcessBench JSON (problem, steps, label = first-error index or -1).
"""

from __future__ import annotations

import re
from pathlib import Path

from openr_core.errors import DataError
from openr_core.types import LabelledExample
from openr_transformers.datafiles import read_records

FORMATS = ("openr", "trl", "math-shepherd", "prm800k", "processbench")
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


def read_json_records(path: str | Path) -> list[dict]:
    """Records of a local .json (a list) or .jsonl file, or of a ``hub:`` data set."""
    if str(path).startswith(HUB):
        return read_hub_records(str(path))
    if not Path(path).is_file():
        raise DataError(f"{path}: file not found")
    data = read_records(str(path))
    return data if isinstance(data, list) else [data]


def _need(record: dict, fields: tuple[str, ...], where: str) -> None:
    missing = [f for f in fields if f not in record]
    if missing:
        raise DataError(f"{where}: missing field '{missing[0]}'")


def from_openr(r: dict, where: str) -> LabelledExample:
    _need(r, ("prompt", "completions", "labels"), where)
    try:
        return LabelledExample(r["prompt"], r["completions"], [bool(x) for x in r["labels"]], r.get("soft_labels"),
                               r.get("problem_id"), r.get("meta") or {})
    except ValueError as e:
        raise DataError(f"{where}: {e}") from None


def from_trl(r: dict, where: str) -> LabelledExample:
    _need(r, ("prompt", "completions", "labels"), where)
    labels = r["labels"]
    soft = [float(x) for x in labels] if any(isinstance(x, float) and x not in (0.0, 1.0) for x in labels) else None
    try:
        return LabelledExample(r["prompt"], r["completions"], [bool(round(float(x))) for x in labels], soft)
    except ValueError as e:
        raise DataError(f"{where}: {e}") from None


def from_math_shepherd(r: dict, where: str, tag: str = "ки") -> LabelledExample:
    _need(r, ("input", "label"), where)
    pieces = r["input"].split(tag)
    if len(pieces) < 2:
        raise DataError(f"{where}: no step tag '{tag}' in input")
    # the label text is the input with each tag replaced by + or -: read the sign after each step
    labels, cursor = [], 0
    for piece in pieces[:-1]:
        cursor += len(piece)
        sign = r["label"][cursor : cursor + 1]
        if sign not in ("+", "-"):
            raise DataError(f"{where}: expected '+' or '-' in label at character {cursor}, found {sign!r}")
        labels.append(sign == "+")
        cursor += 1
    first = pieces[0]
    m = re.search(r"Step 1:", first)
    prompt, step1 = (first[: m.start()], first[m.start():]) if m else ("", first)
    steps = [s.strip() for s in [step1, *pieces[1:-1]]]
    return LabelledExample(prompt.strip(), steps, labels, None, None, {"task": r.get("task")})


def from_prm800k(r: dict, where: str, neutral_is_good: bool = True) -> LabelledExample:
    _need(r, ("question", "label"), where)
    steps, labels = [], []
    for k, step in enumerate(r["label"].get("steps", [])):
        chosen = step.get("chosen_completion")
        completions = step.get("completions") or []
        if chosen is not None and 0 <= chosen < len(completions):
            picked = completions[chosen]
        elif step.get("human_completion"):
            picked = {"text": step["human_completion"]["text"] if isinstance(step["human_completion"], dict)
                      else step["human_completion"], "rating": 1}
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
    question = r["question"]["problem"] if isinstance(r["question"], dict) else r["question"]
    return LabelledExample(question, steps, labels, None, None, {"finish_reason": r["label"].get("finish_reason")})


def from_processbench(r: dict, where: str) -> LabelledExample:
    _need(r, ("problem", "steps", "label"), where)
    first = int(r["label"])
    labels = [first == -1 or i < first for i in range(len(r["steps"]))]
    return LabelledExample(r["problem"], r["steps"], labels, None, r.get("id"),
                           {"first_error": first, "final_answer_correct": r.get("final_answer_correct")})


READERS = {"openr": from_openr, "trl": from_trl, "math-shepherd": from_math_shepherd,
           "prm800k": from_prm800k, "processbench": from_processbench}


def load_stepwise(path: str | Path, format: str = "openr", limit: int | None = None) -> list[LabelledExample]:
    if format not in READERS:
        raise DataError(f"{path}: unknown format '{format}'; formats: {', '.join(FORMATS)}")
    records = read_json_records(path)[:limit]
    return [READERS[format](r, f"{path}: record {i}") for i, r in enumerate(records)]
