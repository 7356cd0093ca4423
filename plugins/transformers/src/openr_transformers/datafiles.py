"""Reading record files: local .jsonl/.json/.parquet, or a dataset by hub name through `datasets`."""

from __future__ import annotations

import json
from pathlib import Path

from openr_core.errors import DataError
from openr_core.paths import resolve_location


def read_records(location: str, split: str = "train") -> list[dict]:
    path = Path(resolve_location(location))
    if path.suffix == ".jsonl":
        records = []
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}: line {i}: invalid JSON: {e.msg}") from None
        return records
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: invalid JSON: {e.msg} (line {e.lineno})") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of records")
        return data
    import datasets

    if path.suffix == ".parquet":
        return list(datasets.load_dataset("parquet", data_files=str(path), split="train"))
    if path.exists():
        raise DataError(f"{path}: unsupported file type (use .jsonl, .json or .parquet)")
    return list(datasets.load_dataset(location, split=split))  # a hub dataset name
