"""Model and data locations in configs: local paths, hub names, and ``pkg:`` package data.

``pkg:openr_arith/models/policy`` names a folder shipped inside an installed Python package,
so configs can point at models that plugins ship. Anything else is returned unchanged (a local
path, or a hub name that the loading library resolves).
"""

from __future__ import annotations

import importlib.resources
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
