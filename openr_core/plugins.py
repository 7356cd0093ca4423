"""Finding and loading plugins.

Plugins are the modules named by entry points in group ``openr``. They load when the CLI or an
API object first asks for them (:func:`get_plugins`), never when ``openr_core`` is imported.
One broken plugin (an import that raises anything, ``sys.exit`` included; a failing hook) is
reported in one line and skipped, leaving nothing registered: no component, no command. The
others keep working. Only Ctrl-C (KeyboardInterrupt) goes through.

Names: a component or command name belongs to whoever registered it first, except that the
project's own distributions (:data:`PROJECT_DISTRIBUTIONS`) keep theirs whatever the load order;
a newcomer that takes a taken name is rejected as a whole, and the warning names it. Plugin
commands never replace core commands or another plugin's.

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
PLUGIN_ATTRIBUTE = "openr_plugin"  # set on each command a plugin added: the plugin's name

# The openr project's own distributions (core and plugins/<name>/ in its repository). This is the
# one place core knows them: on a name collision they keep their names, whatever the load order.
PROJECT_DISTRIBUTIONS = frozenset({
    "openr-core", "openr-arith", "openr-label", "openr-math", "openr-openai", "openr-prm", "openr-report", "openr-rl",
    "openr-search", "openr-serve", "openr-transformers", "openr-vllm",
})


def is_project_distribution(dist: str) -> bool:
    return dist in PROJECT_DISTRIBUTIONS


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
    commands: list[str] = attrs.field(factory=list)


class Plugins:
    """A plugin manager plus one :class:`Registry` per component kind."""

    def __init__(self, strict: bool | None = None):
        self.strict = strict_from_env() if strict is None else strict
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registries = {name: Registry(kind) for name, kind in KINDS.items()}
        self.info: dict[str, PluginInfo] = {}
        self.problems: list[str] = []
        self._cli = None  # the click group plugin commands were added to

    # -- loading -------------------------------------------------------------------------------

    def load_entry_points(self) -> Plugins:
        allow = _env_list("OPENR_PLUGINS")
        block = _env_list("OPENR_DISABLE_PLUGINS") or set()
        found = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "(unknown distribution)"
            found.append((not is_project_distribution(dist), ep.name, dist, ep))
        for _, _, dist, ep in sorted(found, key=lambda f: f[:3]):  # the project's own first
            version = ep.dist.version if ep.dist else "?"
            names = {ep.name, dist}
            if names & block or (allow is not None and not names & allow):
                continue
            if self.pm.has_plugin(ep.name):
                holder = self.info.get(ep.name)
                if holder is not None and holder.dist != dist:  # not just a second load_entry_points()
                    self._problem(f"plugin '{ep.name}' ({dist}) is not loaded: its entry-point name is taken by "
                                  f"{holder.dist}", None)
                continue
            try:
                module = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # anything at import time, sys.exit included, isolates the plugin
                self._problem(f"plugin '{ep.name}' ({dist}) failed to import: {_describe(e)}", e)
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
        info = self.info[name] = PluginInfo(name, dist, version)
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
        evicted: list[str] = []  # third-party plugins that held a name of this project distribution
        try:
            for kind_name, kind in KINDS.items():
                for impl in getattr(self.pm.hook, kind.hook).get_hookimpls():
                    if impl.plugin is plugin:
                        impl.function(**self._hook_args(impl, self._register_into(kind_name, info, evicted)))
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            self._drop(name)
            for message in evicted:
                self._problem(message, None)
            self._problem(f"plugin '{name}' ({dist}) failed in a hook: {_describe(e)}", e)
            return False
        for message in evicted:
            self._problem(message, None)
        return True

    def _drop(self, name: str) -> None:
        """Remove plugin ``name`` and all it registered: components, commands."""
        info = self.info.pop(name, None)
        if info is not None:
            for kind_name, names in info.components.items():
                for entry_name in names:
                    self.registries[kind_name].remove(entry_name)
            for command in info.commands if self._cli is not None else ():
                self._cli.commands.pop(command, None)
        self._unregister(name)

    def _reject(self, name: str, message: str, error: BaseException | None) -> None:
        """A loaded plugin failed later: remove it, then report it (strict: raise)."""
        self._drop(name)
        self._problem(message, error)

    def _owner(self, kind_name: str, entry_name: str) -> str | None:
        return next((n for n, i in self.info.items() if entry_name in i.components.get(kind_name, [])), None)

    def _register_into(self, kind_name: str, info: PluginInfo, evicted: list[str]) -> Callable:
        registry = self.registries[kind_name]

        def register(name: str, target: Any, doc: str | None = None) -> None:
            if isinstance(name, str) and name in registry and is_project_distribution(info.dist):
                taken = registry.get(name)
                owner = self._owner(kind_name, name)
                if owner is not None and not is_project_distribution(taken.dist):
                    self._drop(owner)
                    evicted.append(f"plugin '{owner}' ({taken.dist}) is not loaded: its {registry.kind.key} "
                                   f"'{name}' is a name of {info.dist}, and the project's own plugins keep theirs")
            registry.add(name, target, info.dist, doc)
            info.components.setdefault(kind_name, []).append(name)

        return register

    @staticmethod
    def _hook_args(impl, register: Callable) -> dict:
        return {arg: register for arg in impl.argnames}

    def _unregister(self, name: str) -> None:
        if self.pm.has_plugin(name) or self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)

    def _problem(self, message: str, error: BaseException | None) -> None:
        message = "; ".join(line.strip() for line in message.splitlines() if line.strip())  # one line
        if self.strict:
            raise PluginError(message) from error
        if message not in self.problems:  # loading twice reports once
            self.problems.append(message)
            print(f"openr: warning: {message}", file=sys.stderr)

    def add_commands(self, cli) -> None:
        """Run every plugin's register_commands, the project's own first, isolating failures.

        Each plugin adds its commands to a group of its own; they join ``cli`` only when the hook
        succeeded and no name is taken (by core or an earlier plugin), else the plugin is removed.
        """
        import click

        self._cli = cli
        impls = [(self.pm.get_name(impl.plugin) or "?", impl) for impl in self.pm.hook.register_commands.get_hookimpls()]
        impls.sort(key=lambda p: (not is_project_distribution(self._dist(p[0])), p[0]))
        for name, impl in impls:
            dist = self._dist(name)
            staged = click.Group(name="staged")
            try:
                impl.function(cli=staged)
            except KeyboardInterrupt:
                raise
            except BaseException as e:
                self._reject(name, f"plugin '{name}' ({dist}) failed in register_commands: {_describe(e)}", e)
                continue
            owners = {n: getattr(cli.commands[n], PLUGIN_ATTRIBUTE, None) for n in staged.commands if n in cli.commands}
            taken = sorted(n for n, owner in owners.items() if owner != name)  # its own, added before: replaced
            if taken:
                owner = owners[taken[0]]
                whose = f"plugin '{owner}' ({self._dist(owner)})" if owner else "core"
                self._reject(name, f"plugin '{name}' ({dist}) is not loaded: its command '{taken[0]}' is taken by {whose}", None)
                continue
            for command_name, command in staged.commands.items():
                setattr(command, PLUGIN_ATTRIBUTE, name)
                cli.add_command(command, command_name)
            if name in self.info:
                self.info[name].commands = sorted(staged.commands)
                self.info[name].hooks = sorted(set(self.info[name].hooks) | {"register_commands"})

    def _dist(self, name: str) -> str:
        return self.info[name].dist if name in self.info else name

    # -- lookup --------------------------------------------------------------------------------

    def registry(self, kind_name: str) -> Registry:
        return self.registries[kind_name]

    def entry(self, kind_key: str, name: str) -> Entry:
        """The entry for config key ``kind_key`` (e.g. ``"generator"``) and component ``name``."""
        kind = next(k for k in KINDS.values() if k.key == kind_key)
        return self.registries[kind.name].get(name)


def _describe(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"SystemExit: it called sys.exit({error.code!r})"
    try:
        return f"{type(error).__name__}: {error}"
    except Exception:  # an exception whose message itself fails
        return type(error).__name__


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
