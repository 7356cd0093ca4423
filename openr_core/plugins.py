"""Finding and loading plugins.

Plugins are the modules named by entry points in group ``openr``. They load when the CLI or an
API object first asks for them (:func:`get_plugins`), never when ``openr_core`` is imported.
One broken plugin is reported in one line and skipped; the others keep working.

Environment:

- ``OPENR_STRICT_PLUGINS=1``: a broken plugin raises :class:`PluginError` instead (CI uses this).
- ``OPENR_PLUGINS=a,b``: load only these (entry-point or distribution names; empty = none).
- ``OPENR_DISABLE_PLUGINS=a,b``: never load these.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import attrs
import pluggy

from openr_core import hookspecs
from openr_core.errors import OpenrError, PluginError
from openr_core.registry import KINDS, Entry, Registry

ENTRY_POINT_GROUP = "openr"


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def strict_from_env() -> bool:
    return os.environ.get("OPENR_STRICT_PLUGINS", "").lower() in {"1", "true", "yes"}


@attrs.define
class PluginInfo:
    """A loaded plugin: its entry-point name, distribution, version and what it registered."""

    name: str
    dist: str
    version: str
    components: dict[str, list[str]] = attrs.field(factory=dict)
    hooks: list[str] = attrs.field(factory=list)


class Plugins:
    """A plugin manager plus one :class:`Registry` per component kind."""

    def __init__(self, strict: bool | None = None):
        self.strict = strict_from_env() if strict is None else strict
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registries = {name: Registry(kind) for name, kind in KINDS.items()}
        self.info: dict[str, PluginInfo] = {}
        self.problems: list[str] = []

    # -- loading -------------------------------------------------------------------------------

    def load_entry_points(self) -> Plugins:
        allow = _env_list("OPENR_PLUGINS")
        block = _env_list("OPENR_DISABLE_PLUGINS") or set()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else "(unknown distribution)"
            version = ep.dist.version if ep.dist else "?"
            names = {ep.name, dist}
            if names & block or (allow is not None and not names & allow):
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as e:  # any import-time failure isolates the plugin
                self._problem(f"plugin '{ep.name}' ({dist}) failed to import: {type(e).__name__}: {e}", e)
                continue
            self.register(module, ep.name, dist, version)
        return self

    def register(self, plugin: Any, name: str, dist: str | None = None, version: str = "") -> bool:
        """Register one plugin object (module or instance) and run its register_* hooks.

        Returns False (after reporting) when the plugin was rejected.
        """
        dist = dist or name
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except ValueError as e:  # name or module already registered: the first one stays
            self._problem(f"plugin '{name}' ({dist}) is not loaded: {str(e).splitlines()[0]}", e)
            return False
        except pluggy.PluginValidationError as e:
            self._unregister(name)
            self._problem(f"plugin '{name}' ({dist}) is invalid: {e}", e)
            return False
        info = PluginInfo(name, dist, version)
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
        added: list[Entry] = []
        try:
            for kind_name, kind in KINDS.items():
                for impl in getattr(self.pm.hook, kind.hook).get_hookimpls():
                    if impl.plugin is plugin:
                        impl.function(**self._hook_args(impl, self._register_into(kind_name, dist, added)))
        except Exception as e:
            for entry in added:
                self.registries[entry.kind.name].remove(entry.name)
            self._unregister(name)
            self._problem(f"plugin '{name}' ({dist}) failed in a hook: {type(e).__name__}: {e}", e)
            return False
        for entry in added:
            info.components.setdefault(entry.kind.name, []).append(entry.name)
        self.info[name] = info
        return True

    def _register_into(self, kind_name: str, dist: str, added: list[Entry]) -> Callable:
        registry = self.registries[kind_name]

        def register(name: str, target: Any, doc: str | None = None) -> None:
            added.append(registry.add(name, target, dist, doc))

        return register

    @staticmethod
    def _hook_args(impl, register: Callable) -> dict:
        return {arg: register for arg in impl.argnames}

    def _unregister(self, name: str) -> None:
        if self.pm.has_plugin(name) or self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)

    def _problem(self, message: str, error: Exception) -> None:
        message = "; ".join(line.strip() for line in message.splitlines() if line.strip())  # one line
        if self.strict:
            raise PluginError(message) from error
        self.problems.append(message)
        print(f"openr: warning: {message}", file=sys.stderr)

    def add_commands(self, cli) -> None:
        """Run every plugin's register_commands(cli), isolating failures."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            name = self.pm.get_name(impl.plugin) or "?"
            try:
                impl.function(cli=cli)
            except Exception as e:
                dist = self.info[name].dist if name in self.info else name
                self._problem(f"plugin '{name}' ({dist}) failed in register_commands: {type(e).__name__}: {e}", e)
                continue
            if name in self.info:
                self.info[name].hooks = sorted(set(self.info[name].hooks) | {"register_commands"})

    # -- lookup --------------------------------------------------------------------------------

    def registry(self, kind_name: str) -> Registry:
        return self.registries[kind_name]

    def entry(self, kind_key: str, name: str) -> Entry:
        """The entry for config key ``kind_key`` (e.g. ``"generator"``) and component ``name``."""
        kind = next(k for k in KINDS.values() if k.key == kind_key)
        return self.registries[kind.name].get(name)


_plugins: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugins, loaded on first call."""
    global _plugins
    if _plugins is None:
        _plugins = Plugins().load_entry_points()
    return _plugins


def set_plugins(plugins: Plugins | None) -> None:
    """Replace the process-wide plugins (tests; embedding applications)."""
    global _plugins
    _plugins = plugins


def register_in_process(module: ModuleType | Any, name: str) -> bool:
    """Register a plugin object in the current process (tests, notebooks, scripts)."""
    return get_plugins().register(module, name, dist=name)


__all__ = ["OpenrError", "PluginInfo", "Plugins", "get_plugins", "register_in_process", "set_plugins"]
