"""Typed registries of components, one per kind, filled by plugins.

An :class:`Entry` is lazy: it holds ``"module:Class"`` and imports it on first :meth:`Entry.load`.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

import attrs

from openr_core import interfaces, launchers
from openr_core.errors import DuplicateComponentError, RegistryError, UnknownComponentError


@attrs.frozen
class Kind:
    """A component kind: its CLI name, its config key, its hook and its interface."""

    name: str  # "reward-models", as in `openr ls reward-models`
    key: str  # "reward_model", as in a config file
    hook: str  # "register_reward_models"
    base: type
    builtin: tuple[tuple[str, str], ...] = ()  # (name, "module:Class") the core ships


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("generators", "generator", "register_generators", interfaces.Generator),
        Kind("reward-models", "reward_model", "register_reward_models", interfaces.RewardModel),
        Kind("labelers", "labeler", "register_labelers", interfaces.Labeler),
        Kind("searchers", "searcher", "register_searchers", interfaces.Searcher),
        Kind("trainers", "trainer", "register_trainers", interfaces.Trainer),
        Kind("tasks", "task", "register_tasks", interfaces.Task),
        Kind("launchers", "launcher", "register_launchers", launchers.Launcher, launchers.BUILTIN),
    )
}
KIND_BY_KEY = {k.key: k for k in KINDS.values()}


@attrs.define
class Entry:
    """One registered component. ``target`` is a class or ``"module:Class"``."""

    kind: Kind
    name: str
    target: Any
    dist: str
    doc: str | None = None

    def load(self) -> type:
        if isinstance(self.target, str):
            module_name, _, attr = self.target.partition(":")
            try:
                obj = getattr(importlib.import_module(module_name), attr)
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # ImportError, AttributeError, anything the module raises, sys.exit
                raise RegistryError(
                    f"{self.kind.key} '{self.name}' (from {self.dist}): cannot load "
                    f"'{self.target}': {type(e).__name__}: {e}"
                ) from e
            self.target = obj
        cls = self.target
        if not (isinstance(cls, type) and issubclass(cls, self.kind.base)):
            raise RegistryError(
                f"{self.kind.key} '{self.name}' (from {self.dist}): {cls!r} is not a subclass of "
                f"openr_core.{self.kind.base.__name__}"
            )
        return cls

    @property
    def summary(self) -> str:
        """First line of the doc (imports the class only when no doc was registered)."""
        doc = self.doc
        if doc is None:
            try:
                doc = self.load().__doc__ or ""
            except RegistryError as e:
                return f"(unavailable: {e})"
        return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """Name → :class:`Entry` for one kind."""

    def __init__(self, kind: Kind):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        for name, target in kind.builtin:
            self.add(name, target, "openr-core")

    def add(self, name: str, target: Any, dist: str, doc: str | None = None) -> Entry:
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{dist}: a {self.kind.key} name must be a non-empty string")
        if not (isinstance(target, type) or (isinstance(target, str) and ":" in target)):
            raise RegistryError(
                f"{dist}: {self.kind.key} '{name}' target must be a class or 'module:Class', "
                f"got {target!r}"
            )
        if name in self._entries:
            other = self._entries[name].dist
            raise DuplicateComponentError(
                f"{self.kind.key} '{name}' is registered by both {other} and {dist}"
            )
        entry = self._entries[name] = Entry(self.kind, name, target, dist, doc)
        return entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponentError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        names = sorted(self._entries)
        close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        available = ", ".join(names) if names else "none (is the plugin installed?)"
        return f"unknown {self.kind.key} '{name}'.{hint} Available: {available}"

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)
