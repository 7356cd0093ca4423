"""A run's output folder: the resolved config, incremental JSONL results, resume.

Every job writes ``config.yaml`` (the fully resolved config, defaults included) before it
starts. Re-running the same config into the same folder resumes: records already in
``*.jsonl`` files are kept and skipped. A different config in an existing folder is an error
unless ``--fresh`` is given, so results of two configs never mix.

A run folder is one openr created, or found empty: it gets a ``.openr-run`` marker (a folder an
earlier release wrote, its ``config.yaml`` a job's resolved config, is adopted and marked). openr
writes into no other folder (one holding anything without the marker is refused), so
everything in a run folder is openr's. ``--fresh`` empties a marked folder, and refuses any
other; it never touches the current folder, a parent of it, or the home folder.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openr_core.config import ComponentSpec, dump_yaml, read_yaml, unstructure
from openr_core.errors import ConfigError, DataError, OutputError
from openr_core.jsonl import dumps, iter_lines, read_bytes

CONFIG_FILE = "config.yaml"
MARKER_FILE = ".openr-run"
# Top-level keys a resumed run may change: where the batches run (results are the same on any
# launcher), and how many problems it takes (results are per problem and the summary is over the
# problems of this run, so a larger limit extends a run and a smaller one summarises its head).
NOT_COMPARED = ("launcher", "limit")


def seed_everything(seed: int) -> None:
    """Seed Python's and NumPy's RNGs, and torch's when torch is already imported."""
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where config ``b`` differs from ``a``, the one a run folder holds. A key ``a`` lacks is a field
    a later release added (written with its default), not a difference: such folders resume."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            diff = _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if diff:
                return diff
        return None
    return None if a == b else (path or "(top level)")


def _check_same_config(output_dir: Path, config_path: Path, resolved: dict) -> None:
    """A folder holding another config's results is refused (results of two configs never mix)."""
    if config_path.exists():
        try:
            previous = read_yaml(config_path)
        except ConfigError as e:
            raise ConfigError(f"{e}; use --fresh to start over or another --output") from None
        diff = _first_difference(*({k: v for k, v in c.items() if k not in NOT_COMPARED} for c in (previous, resolved)))
        if diff:
            raise ConfigError(
                f"{output_dir}: holds results of a different config (first difference: {diff}); "
                "use another --output or --fresh to start over"
            )


class Run:
    """One job execution: its config, output folder and lazily built components."""

    def __init__(self, config: Any, output_dir: Path):
        self.config = config
        self.output_dir = Path(output_dir)
        self.seed = getattr(config, "seed", 0)
        self._built: dict[int, Any] = {}
        self._lock: FolderLock | None = None

    @classmethod
    def start(cls, config: Any, output_dir: str | Path, *, fresh: bool = False) -> Run:
        output_dir = Path(output_dir)
        resolved = unstructure(config)
        resolved.pop("output_dir", None)
        config_path = output_dir / CONFIG_FILE
        if is_secondary_rank():  # rank 0 of this multi-process job checks, claims and writes the folder
            seed_everything(getattr(config, "seed", 0))
            return cls(config, output_dir)
        lock = FolderLock.take(output_dir)  # before --fresh deletes anything another run is writing
        try:
            if fresh:
                clear_run_folder(output_dir)
            claim_run_folder(output_dir)
            lock = lock or FolderLock.take(output_dir)
            _check_same_config(output_dir, config_path, resolved)
            write_atomically(config_path, dump_yaml(resolved))
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        seed_everything(getattr(config, "seed", 0))
        run = cls(config, output_dir)
        run._lock = lock
        return run

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
        write_atomically(path, dumps(data, indent=2) + "\n")
        return path

    def close(self) -> None:
        for component in self._built.values():
            component.close()
        self._built.clear()
        if self._lock is not None:
            self._lock.release()


class FolderLock:
    """An exclusive ``flock`` on a run folder for as long as a run writes into it: a second
    ``openr run`` into the same folder is refused in one line instead of appending every record
    a second time (or ``--fresh`` deleting what the first is writing). Released on
    :meth:`Run.close`, at exit, or when the Run is garbage-collected. No-op where there is no
    ``fcntl`` (Windows)."""

    def __init__(self, fd: int):
        self._finalizer = weakref.finalize(self, os.close, fd)

    @classmethod
    def take(cls, folder: Path) -> FolderLock | None:
        """The lock on ``folder``; None when it is not a folder (yet) or locks are unsupported, and
        in the processes of a multi-process job (torchrun, ``accelerate launch``) other than rank 0,
        which writes for them all and holds the lock."""
        if is_secondary_rank():
            return None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return None
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return None  # missing, or not a folder: claim_run_folder says which, in one line
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f"{folder}: another openr process is writing into this folder; "
                              "wait for it to finish or choose another --output") from None
        except OSError:  # a file system without locks (some network mounts): run unlocked
            os.close(fd)
            return None
        return cls(fd)

    def release(self) -> None:
        self._finalizer()


def is_secondary_rank() -> bool:
    """True in the processes of a multi-process job (torchrun, ``accelerate launch``) other than
    rank 0, which alone checks, claims, locks and writes the run folder for them all."""
    return os.environ.get("RANK", "0").strip() not in ("", "0")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` whole or not at all; a failed write is one OutputError line
    and leaves the old file (and no temporary file) behind. The temporary file is this process's
    own, so two processes replacing the same file never take each other's."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only folder: there is no temporary file either
        raise output_error(e, path) from None


# what a full disk, a quota, a read-only or forbidden folder raise while results are written
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})


def output_error(error: OSError, path: str | Path | None = None) -> OutputError:
    """The one line for an OSError met while writing results (disk full, read-only, permissions)."""
    where = path or error.filename or "the output folder"
    return OutputError(f"{where}: cannot write: {error.strerror or error}; what was written before is kept "
                       "(free space or fix permissions, then run the same command again to resume)")


def claim_run_folder(output_dir: Path) -> None:
    """Create ``output_dir`` (or take an empty folder) and mark it as a run folder.

    A folder that holds anything and has no marker is refused: what is in it is not openr's to
    write over, append to or delete.
    """
    marker = output_dir / MARKER_FILE
    if marker.is_file():
        return
    if _written_before_markers(output_dir):
        write_atomically(marker, json.dumps({"written_by": "openr"}) + "\n")
        return
    if output_dir.exists() or output_dir.is_symlink():
        if not output_dir.is_dir():
            raise ConfigError(f"{output_dir}: the output folder is a file (or a broken link), not a folder")
        try:
            held = sorted(p.name for p in output_dir.iterdir())
        except OSError as e:
            raise ConfigError(f"{output_dir}: cannot read the output folder: {e.strerror or e}") from None
        if held:
            raise ConfigError(
                f"{output_dir}: not an openr run folder (no {MARKER_FILE} marker) and not empty "
                f"(holds {', '.join(held[:3])}{', ...' if len(held) > 3 else ''}); choose a new or empty --output"
            )
    else:
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"{output_dir}: cannot create the output folder: {e.strerror or e}") from None
    write_atomically(marker, json.dumps({"written_by": "openr"}) + "\n")


def _written_before_markers(output_dir: Path) -> bool:
    """A run folder of an openr release before markers: its ``config.yaml`` is a resolved job config."""
    config_path = output_dir / CONFIG_FILE
    if output_dir.is_symlink() or not config_path.is_file():
        return False
    import yaml

    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and isinstance(data.get("job"), str) and bool(data["job"])


def clear_run_folder(output_dir: Path) -> None:
    """``--fresh``: empty run folder ``output_dir`` (all but its marker); refuse anything else in one line."""
    if not (output_dir.exists() or output_dir.is_symlink()):
        return
    here = output_dir.resolve()
    cwd = Path.cwd().resolve()
    if here == cwd or here in cwd.parents or here == Path.home().resolve():
        raise ConfigError(
            f"{output_dir}: --fresh never deletes the current folder, a parent of it or the home folder; "
            "choose another --output"
        )
    if not output_dir.is_dir() or not (
        (output_dir / MARKER_FILE).is_file() or _written_before_markers(output_dir)
    ):
        raise ConfigError(
            f"{output_dir}: not an openr run folder (no {MARKER_FILE} marker), so --fresh deletes nothing; "
            "choose another --output or delete it yourself"
        )
    try:
        for path in output_dir.iterdir():
            if path.name == MARKER_FILE:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    except OSError as e:
        raise ConfigError(f"{output_dir}: --fresh could not delete {e.filename}: {e.strerror or e}") from None


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
        raw = read_bytes(self.path)
        whole = raw[: raw.rfind(b"\n") + 1]
        for line_no, record in iter_lines(whole, self.path):
            if not isinstance(record.get(self.key), (str, int)):
                raise DataError(f"{self.path}:{line_no}: no '{self.key}' field (a string or a number)")
            self._records.setdefault(record[self.key], record)
        if len(whole) < len(raw):  # a last line without its newline was cut short by a kill
            with open(self.path, "r+b") as f:
                f.truncate(len(whole))

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
        text = "".join(dumps(r) + "\n" for r in fresh)
        size = self.path.stat().st_size if self.path.exists() else 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            try:  # no half record left at the end: the file holds what it held before
                os.truncate(self.path, size)
            except OSError:
                pass  # a cut-short last line is dropped when the file is next opened
            raise output_error(e, self.path) from None
        for r in fresh:
            self._records[r[self.key]] = r
