"""Reading record files: local .jsonl/.json/.parquet, or a dataset by hub name through `datasets`."""

from __future__ import annotations

from pathlib import Path

from openr_core import jsonl
from openr_core.errors import DataError
from openr_core.paths import resolve_location


def read_records(location: str, split: str = "train") -> list[dict]:
    path = Path(resolve_location(location))
    if path.suffix in (".jsonl", ".json", ".parquet"):
        return jsonl.read_records(path)
    import datasets

    if path.exists():
        raise DataError(f"{path}: unsupported file type (use .jsonl, .json or .parquet)")
    return list(datasets.load_dataset(location, split=split))  # a hub dataset name
