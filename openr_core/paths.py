"""Model and data locations in configs: local paths, hub names, and ``pkg:`` package data.

``pkg:openr_arith/models/policy`` names a folder shipped inside an installed Python package,
so configs can point at models that plugins ship. Anything else is returned unchanged (a local
path, or a hub name that the loading library resolves).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from openr_core.errors import ConfigError


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
