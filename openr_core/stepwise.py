"""Field checks for stepwise records, and the ``openr`` record format of :class:`LabelledExample`.

A record of the wrong shape is one :class:`DataError` line naming where it is (``FILE:LINE``,
``FILE: record I``), the field and what it holds: never ``bool("false")`` read as true, a string
read as one step per character, or a traceback. The label job's ``labels.jsonl`` is read back
through :func:`read_example`, and every PRM data format (``openr_prm.data``) through these checks.
"""

from __future__ import annotations

from typing import Any

from openr_core.errors import DataError
from openr_core.types import LabelledExample


def need(record: dict, fields: tuple[str, ...], where: str) -> None:
    missing = [f for f in fields if f not in record]
    if missing:
        raise DataError(f"{where}: missing field '{missing[0]}'")


def describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def check_text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{where}: field '{name}' must be a string, got {describe(value)}")
    return value


def check_steps(value: Any, where: str, name: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: field '{name}' must be a non-empty list of step strings, got {describe(value)}")
    for i, step in enumerate(value):
        if not check_text(step, where, f"{name}[{i}]").strip():
            raise DataError(f"{where}: field '{name}[{i}]' is an empty step (a step must hold text to be scored)")
    return value


def check_label(value: Any, where: str, name: str, soft: bool = False) -> float:
    """A step label: true/false, or 0/1 (with ``soft``, any number in [0, 1])."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and (value in (0, 1) or (soft and 0 <= value <= 1)):
        return float(value)
    allowed = "true/false or a number in [0, 1]" if soft else "true/false (or 0/1)"
    raise DataError(f"{where}: field '{name}' must be {allowed}, got {describe(value)}")


def check_labels(value: Any, where: str, name: str, soft: bool = False) -> list[float]:
    if not isinstance(value, list):
        raise DataError(f"{where}: field '{name}' must be a list of step labels, got {describe(value)}")
    return [check_label(x, where, f"{name}[{i}]", soft) for i, x in enumerate(value)]


def check_id(value: Any, where: str, name: str) -> str | None:
    """An optional id: a non-empty string or an integer (read as its string)."""
    if value is None or (isinstance(value, str) and value):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"{where}: field '{name}' must be a string id, got {describe(value)}")


def build_example(where: str, prompt, steps, labels, soft=None, problem_id=None, meta=None) -> LabelledExample:
    try:
        return LabelledExample(prompt, steps, labels, soft, problem_id, meta or {})
    except ValueError as e:
        raise DataError(f"{where}: {e}") from None


def read_example(r: dict, where: str) -> LabelledExample:
    """A record of the ``openr`` format (what the label job writes): prompt, completions, labels,
    and optionally soft_labels, problem_id, meta."""
    need(r, ("prompt", "completions", "labels"), where)
    soft = r.get("soft_labels")
    if soft is not None:
        soft = check_labels(soft, where, "soft_labels", soft=True)
    meta = r.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise DataError(f"{where}: field 'meta' must be an object, got {describe(meta)}")
    labels = [x == 1.0 for x in check_labels(r["labels"], where, "labels")]
    return build_example(where, check_text(r["prompt"], where, "prompt"),
                         check_steps(r["completions"], where, "completions"), labels, soft,
                         check_id(r.get("problem_id"), where, "problem_id"), meta)
