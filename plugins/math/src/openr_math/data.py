"""Reading benchmark records: local JSON / JSONL / Parquet files or folders, or the HF hub.

Only the standard library is imported here at module level; pyarrow and ``datasets`` are
imported when a Parquet file or a hub dataset is actually read (files: ``openr_core.jsonl``).
"""

from __future__ import annotations

from pathlib import Path

from openr_core.errors import DataError
from openr_core import jsonl

SUFFIXES = (".jsonl", ".json", ".parquet")


def read_records(path: str | Path, split: str) -> tuple[list[dict], str]:
    """Records of ``split`` from a file or folder; returns them and a description of the source.

    A **file** is the data whatever split is asked for. In a **folder**, the split's file is
    ``<split>.jsonl|.json|.parquet``, or ``<split>-*.parquet`` / ``<split>/*`` (the hub's layout,
    also under ``data/``).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    files = [p] if p.is_file() else _split_files(p, split)
    records = [record for file in files for record in jsonl.read_records(file)]
    if not records:  # an evaluation of nothing would "succeed" having done nothing
        raise DataError(f"{', '.join(str(f) for f in files)}: no records (an empty data file)")
    return records, ", ".join(str(f) for f in files)


def _split_files(folder: Path, split: str) -> list[Path]:
    for base in (folder, folder / "data"):
        for suffix in SUFFIXES:
            candidate = base / f"{split}{suffix}"
            if candidate.is_file():
                return [candidate]
        shards = sorted(base.glob(f"{split}-*.parquet")) + sorted(base.glob(f"{split}-*.jsonl"))
        if shards:
            return shards
        sub = base / split
        if sub.is_dir():
            inner = sorted(f for f in sub.iterdir() if f.suffix in SUFFIXES)
            if inner:
                return inner
    present = sorted(f.name for f in folder.iterdir() if f.suffix in SUFFIXES or f.is_dir())
    raise DataError(
        f"{folder}: no data file for split '{split}' (looked for {split}.jsonl/.json/.parquet, "
        f"{split}-*.parquet, {split}/); found: {', '.join(present) or 'nothing'}. "
        f"Point `path` at a file, or map the split with `splits`."
    )


def load_hub(name: str, subset: str | None, split: str) -> tuple[list[dict], str]:
    """Records of ``split`` of the HF hub dataset ``name`` (config ``subset``), via ``datasets``."""
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DataError(f"loading '{name}' from the hub needs the `datasets` package ({e})") from None
    try:
        dataset = datasets.load_dataset(name, subset, split=split)
    except Exception as e:  # noqa: BLE001 - network, auth, unknown split...: one clear line
        where = f"{name}" + (f" ({subset})" if subset else "")
        raise DataError(
            f"cannot load hub dataset {where} split '{split}': {type(e).__name__}: {e}. "
            f"Offline? Set `path` to a local copy instead."
        ) from None
    source = f"hf:{name}" + (f"/{subset}" if subset else "") + f"[{split}]"
    return [dict(row) for row in dataset], source
