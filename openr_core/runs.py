"""A run's output folder: the resolved config, incremental JSONL results, resume.

Every job writes ``config.yaml`` (the fully resolved config, defaults included) before it
starts. Re-running the same config into the same folder resumes: records already in
``*.jsonl`` files are kept and skipped. A different config in an existing folder is an error
unless ``--fresh`` is given, so results of two configs never mix.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openr_core.config import ComponentSpec, dump_yaml, unstructure
from openr_core.errors import ConfigError, DataError

CONFIG_FILE = "config.yaml"
NOT_COMPARED = ("launcher",)  # where the batches run does not change the results: resume on any launcher


def seed_everything(seed: int) -> None:
    """Seed Python's and NumPy's RNGs, and torch's when torch is already imported."""
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            diff = _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if diff:
                return diff
        return None
    return None if a == b else (path or "(top level)")


class Run:
    """One job execution: its config, output folder and lazily built components."""

    def __init__(self, config: Any, output_dir: Path):
        self.config = config
        self.output_dir = Path(output_dir)
        self.seed = getattr(config, "seed", 0)
        self._built: dict[int, Any] = {}

    @classmethod
    def start(cls, config: Any, output_dir: str | Path, *, fresh: bool = False) -> Run:
        output_dir = Path(output_dir)
        resolved = unstructure(config)
        resolved.pop("output_dir", None)
        config_path = output_dir / CONFIG_FILE
        if fresh and output_dir.exists():
            shutil.rmtree(output_dir)
        if config_path.exists():
            import yaml

            previous = yaml.safe_load(config_path.read_text()) or {}
            diff = _first_difference(*({k: v for k, v in c.items() if k not in NOT_COMPARED} for c in (previous, resolved)))
            if diff:
                raise ConfigError(
                    f"{output_dir}: holds results of a different config (first difference: {diff}); "
                    "use another --output or --fresh to start over"
                )
        output_dir.mkdir(parents=True, exist_ok=True)
        tmp = config_path.with_suffix(".tmp")
        tmp.write_text(dump_yaml(resolved))
        os.replace(tmp, config_path)
        seed_everything(getattr(config, "seed", 0))
        return cls(config, output_dir)

    def build(self, spec: ComponentSpec | None):
        """The component for ``spec``, built once per run."""
        if spec is None:
            return None
        if id(spec) not in self._built:
            self._built[id(spec)] = spec.build()
        return self._built[id(spec)]

    def provide(self, spec: ComponentSpec, component: Any) -> None:
        """Use ``component`` for ``spec`` instead of building it (e.g. a proxy to a shared model)."""
        self._built[id(spec)] = component

    def component(self, key: str):
        """Build the component in config field ``key`` (e.g. ``"generator"``); None when unset."""
        return self.build(getattr(self.config, key, None))

    @property
    def task(self):
        return self.component("task")

    @property
    def generator(self):
        return self.component("generator")

    @property
    def reward_model(self):
        return self.component("reward_model")

    @property
    def labeler(self):
        return self.component("labeler")

    def results(self, name: str = "results.jsonl", key: str = "id") -> JsonlResults:
        return JsonlResults(self.output_dir / name, key)

    def write_json(self, name: str, data: Any) -> Path:
        path = self.output_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
        os.replace(tmp, path)
        return path

    def close(self) -> None:
        for component in self._built.values():
            component.close()
        self._built.clear()


class JsonlResults:
    """An append-only JSONL file keyed by ``key``; a record is written (and flushed) once.

    A line cut short by a kill is dropped on open, so the file always holds whole records.
    """

    def __init__(self, path: str | Path, key: str = "id"):
        self.path = Path(path)
        self.key = key
        self._records: dict[Any, dict] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        *lines, tail = raw.split(b"\n")
        for line_no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{self.path}: line {line_no} is not valid JSON: {e.msg}") from None
            if not isinstance(record, dict) or self.key not in record:
                raise DataError(f"{self.path}: line {line_no} has no '{self.key}' field")
            self._records[record[self.key]] = record
        if tail:  # a last line without its newline was cut short by a kill
            with open(self.path, "r+b") as f:
                f.truncate(len(raw) - len(tail))

    def __contains__(self, key: Any) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[dict]:
        return iter(self._records.values())

    def get(self, key: Any) -> dict | None:
        return self._records.get(key)

    def append(self, records: dict | list[dict]) -> None:
        records = [records] if isinstance(records, dict) else records
        new: dict[Any, dict] = {}
        for r in records:  # the first record of a key wins, within the batch too
            if r[self.key] not in self._records:
                new.setdefault(r[self.key], r)
        fresh = list(new.values())
        if not fresh:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write("".join(json.dumps(r, default=str) + "\n" for r in fresh))
            f.flush()
            os.fsync(f.fileno())
        for r in fresh:
            self._records[r[self.key]] = r
