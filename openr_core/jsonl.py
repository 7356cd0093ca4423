"""Reading record files (JSON Lines, a JSON array, or Parquet): the one reader that jobs and plugins use.

Any bytes give either a list of dicts or one :class:`DataError` line that names the file, the line
(or record) and what is wrong: not UTF-8, not JSON, not an object, a key given twice, nested too deeply. Lines are
split on ``\\n`` only (``str.splitlines`` would also split inside strings at U+2028 and friends),
and a UTF-8 byte-order mark at the start is skipped. Standard library only, except that a
``.parquet`` file is read with pyarrow, imported when one is read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openr_core.errors import DataError

_BOM = b"\xef\xbb\xbf"
_LIST_KEYS = ("data", "rows", "examples", "problems")  # {"data": [...]}-style JSON files


def dumps(value: Any, **options) -> str:
    """``value`` as strict JSON: NaN and infinities, which ``json`` would write as the invalid
    tokens ``NaN``/``Infinity`` that other tools refuse, are written as ``null``."""
    options.setdefault("default", str)
    try:
        return json.dumps(value, allow_nan=False, **options)
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes; a missing or unreadable file is one DataError line."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


def parse_value(data: bytes, where: str) -> Any:
    """One JSON value from UTF-8 ``data``; ``where`` (``FILE:LINE``) starts the error line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{where}: not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r})") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        raise DataError(f"{where}: invalid JSON: key {e.args[0]!r} is given twice in one object") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: invalid JSON: {e.msg} (column {e.colno})") from None
    except RecursionError:
        raise DataError(f"{where}: invalid JSON: nested too deeply") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise DataError(f"{where}: invalid JSON: {e}") from None


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """An object's dict; a key given twice is an error (``json`` would keep the last silently)."""
    record = dict(pairs)
    if len(record) < len(pairs):
        seen = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return record


def parse_record(data: bytes, where: str) -> dict:
    record = parse_value(data, where)
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {_kind(record)}")
    return record


def iter_lines(raw: bytes, path: str | Path) -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` for each non-blank line of JSON Lines ``raw`` (from ``path``)."""
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    for line_no, line in enumerate(raw.split(b"\n"), 1):
        if line.strip():
            yield line_no, parse_record(line, f"{path}:{line_no}")


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSON Lines file."""
    return [record for _, record in iter_lines(read_bytes(path), path)]


def read_records(path: str | Path) -> list[dict]:
    """The records of a ``.json`` file (an array of objects, or ``{"data": [...]}``; JSON Lines with a
    ``.json`` name also works), a ``.parquet`` file, or a JSON Lines file (any other name)."""
    return [record for _, record in iter_records(path)]


def iter_records(path: str | Path) -> Iterator[tuple[str, dict]]:
    """``(where, record)`` for each record of :func:`read_records`; ``where`` is ``FILE:LINE`` (JSON
    Lines) or ``FILE: record I`` (a JSON array), for error lines about the record's fields."""
    if Path(path).suffix.lower() == ".parquet":
        yield from ((f"{path}: row {i}", record) for i, record in enumerate(read_parquet(path)))
        return
    raw = read_bytes(path)
    if Path(path).suffix.lower() != ".json":
        yield from ((f"{path}:{n}", record) for n, record in iter_lines(raw, path))
        return
    try:
        data = parse_value(raw[len(_BOM):] if raw.startswith(_BOM) else raw, str(path))
    except DataError as not_one_value:
        try:  # JSON Lines saved as .json
            lines = list(iter_lines(raw, path))
        except DataError:
            raise not_one_value from None
        yield from ((f"{path}:{n}", record) for n, record in lines)
        return
    if isinstance(data, dict):
        data = next((data[k] for k in _LIST_KEYS if isinstance(data.get(k), list)), data)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of records, got {_kind(data)}")
    for i, record in enumerate(data):
        if not isinstance(record, dict):
            raise DataError(f"{path}: record {i}: expected a JSON object, got {_kind(record)}")
    yield from ((f"{path}: record {i}", record) for i, record in enumerate(data))


def read_parquet(path: str | Path) -> list[dict]:
    """The rows of a Parquet file as dicts (pyarrow); a missing, corrupt or empty file is one line."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    read_bytes(path)  # the same line as for any file that is missing or unreadable
    try:
        table = pq.read_table(path)
    except (ValueError, OSError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: not a readable Parquet file: {str(e).splitlines()[0] if str(e) else e}") from None
    return table.to_pylist()


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
