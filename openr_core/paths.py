"""Model and data locations in configs: local paths, hub names, and ``pkg:`` package data.

``pkg:openr_arith/models/policy`` names a folder shipped inside an installed Python package,
so configs can point at models that plugins ship. Anything else is returned unchanged (a local
path, or a hub name that the loading library resolves).
"""

from __future__ import annotations

import importlib.resources
import json
import struct
from pathlib import Path

from openr_core.errors import ConfigError, DataError


def resolve_location(location: str) -> str:
    if not location.startswith("pkg:"):
        return location
    package, _, rest = location[4:].partition("/")
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise ConfigError(f"{location}: package '{package}' is not installed") from None
    path = Path(str(root.joinpath(rest)))
    if not path.exists():
        raise ConfigError(f"{location}: no such file or folder in package '{package}' ({path})")
    return str(path)


def looks_local(location: str) -> bool:
    """A filesystem path rather than a hub name (``org/name``): absolute, ``~``, ``./``/``../``, or
    more than one ``/``. Hub names can be none of these."""
    return location.startswith(("/", "~", ".")) or location.count("/") > 1 or "\\" in location


def check_local_folder(location: str, what: str = "model") -> None:
    """One DataError line when ``location`` (resolved) is a local path with no folder there; without
    this check the hub client answers "Repo id must be in the form ..." for a mistyped path."""
    resolved = resolve_location(location)
    if looks_local(resolved) and not Path(resolved).expanduser().is_dir():
        state = "is not a folder" if Path(resolved).expanduser().exists() else "no such folder"
        raise DataError(f"{what} '{location}': {state} ({Path(resolved).expanduser()})")


def check_model_folder(location: str, what: str = "model") -> None:
    """:func:`check_local_folder`, then every ``*.safetensors`` file of a local folder checked
    without loading it (its header, and that the file is as long as the header says): an empty,
    truncated or garbage weights file is the same one DataError line for every loader (transformers,
    the PRM heads, vLLM, whose own errors about it are tracebacks or worker crashes)."""
    check_local_folder(location, what)
    folder = Path(resolve_location(location)).expanduser()
    if not folder.is_dir():
        return  # a hub name: the hub client downloads and checks it
    for weights in sorted(folder.glob("*.safetensors")):
        problem = safetensors_problem(weights)
        if problem:
            raise DataError(f"{what} '{location}': cannot load: a .safetensors file is corrupt or cut short: "
                            f"{weights.name}: {problem}")


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole safetensors file (None when its header and length are right)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{size} bytes, shorter than the 8-byte header length"
            (length,) = struct.unpack("<Q", head)
            if length > size - 8 or length > 100_000_000:
                return f"header length {length} does not fit in a file of {size} bytes"
            header = json.loads(f.read(length).decode("utf-8"))
    except OSError as e:
        return f"cannot read: {e.strerror or e}"
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "the header is not JSON"
    if not isinstance(header, dict):
        return "the header is not a JSON object"
    ends = []
    for name, tensor in header.items():
        offsets = tensor.get("data_offsets") if isinstance(tensor, dict) else None
        if name != "__metadata__" and not (isinstance(offsets, list) and len(offsets) == 2
                                           and all(type(x) is int for x in offsets)):
            return f"tensor {name!r} has no [begin, end] data_offsets"
        ends += offsets[1:] if name != "__metadata__" else []
    needed = 8 + length + max(ends, default=0)
    if needed > size:
        return f"cut short: {size} bytes, the header needs {needed}"
    return None
