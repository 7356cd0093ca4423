"""YAML configs: loading, ``--set`` overrides, validation against attrs classes, and dumping.

A config names components by their registered name::

    job: evaluate
    task: {type: arith}
    generator: {type: transformers, model: path/to/model}

Every section is checked against the component's ``Config`` class: unknown keys and wrong
types are :class:`ConfigError` messages naming the file, the path in it and the valid keys.

Precedence (one rule): the file is read first, then each ``--set path=value`` is applied in
the order given, later ones winning; defaults fill whatever neither sets.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import attrs
import yaml

from openr_core.errors import ConfigError, RegistryError
from openr_core.registry import KIND_BY_KEY, Entry

COMPONENT = "openr_component"


def component(kind: str, *, optional: bool = False, many: bool = False):
    """Declare an attrs field holding a component spec (or a list of them) of config key ``kind``."""
    if kind not in KIND_BY_KEY:
        raise ValueError(f"unknown component kind {kind!r}; one of {sorted(KIND_BY_KEY)}")
    metadata = {COMPONENT: kind, "many": many}
    if many:
        return attrs.field(factory=list, metadata=metadata)
    return attrs.field(default=None, metadata=metadata) if optional else attrs.field(metadata=metadata)


@attrs.frozen
class ComponentSpec:
    """A resolved component section: registered name plus validated Config instance."""

    kind: str
    type: str
    config: Any
    entry: Entry = attrs.field(eq=False, repr=False)

    def build(self):
        """Instantiate the component (this is where heavy imports may happen)."""
        return self.entry.load()(self.config)


# -- reading ---------------------------------------------------------------------------------


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}:{where} invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {_type_name(data)}")
    return data


def apply_overrides(data: dict, overrides: typing.Sequence[str], source: str = "--set") -> dict:
    """Return a copy of ``data`` with each ``a.b.c=value`` applied in order (value parsed as YAML)."""
    data = copy.deepcopy(data)
    for item in overrides:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"{source} {item!r}: expected PATH=VALUE, e.g. generator.model=path")
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        keys = path.strip().split(".")
        node: Any = data
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise ConfigError(f"{source} {item!r}: '{'.'.join(keys[:i])}' has no item {key}")
                key = int(key)
            elif not isinstance(node, dict):
                raise ConfigError(f"{source} {item!r}: '{'.'.join(keys[:i])}' is not a mapping")
            if last:
                node[key] = value
            else:
                if isinstance(node, dict) and isinstance(node.get(key), str):
                    node[key] = {"type": node[key]}  # component shorthand `generator: NAME`
                elif isinstance(node, dict) and not isinstance(node.get(key), (dict, list)):
                    node[key] = {}
                node = node[key]
    return data


# -- structuring -----------------------------------------------------------------------------


@attrs.frozen
class Where:
    file: str
    path: tuple[str, ...] = ()

    def __truediv__(self, key) -> Where:
        return Where(self.file, (*self.path, str(key)))

    def __str__(self) -> str:
        return f"{self.file}: {'.'.join(self.path) or '(top level)'}"


def _type_name(value) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _describe(tp) -> str:
    if tp in (int, float, str, bool):
        return {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}[tp]
    if attrs.has(tp):
        return "a mapping"
    return str(tp).replace("typing.", "")


def structure(cls: type, data: Any, where: Where, plugins) -> Any:
    """Build an instance of attrs class ``cls`` from plain data, or raise ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_type_name(data)}")
    fields = {f.name: f for f in attrs.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            valid = ", ".join(fields) or "none"
            raise ConfigError(f"{where / key}: unknown key{hint}; valid keys: {valid}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is attrs.NOTHING:
                raise ConfigError(f"{where / name}: required key is missing")
            continue
        kind = f.metadata.get(COMPONENT)
        if kind and f.metadata.get("many"):
            items = data[name]
            if not isinstance(items, list):
                raise ConfigError(f"{where / name}: expected a list of {kind} sections, got {_type_name(items)}")
            kwargs[name] = [structure_component(kind, item, where / name / i, plugins) for i, item in enumerate(items)]
        elif kind:
            value = data[name]
            kwargs[name] = None if value is None else structure_component(kind, value, where / name, plugins)
        else:
            kwargs[name] = structure_value(hints.get(name, Any), data[name], where / name, plugins)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def structure_component(kind: str, data: Any, where: Where, plugins) -> ComponentSpec:
    if isinstance(data, str):
        data = {"type": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a {kind} section like {{type: NAME, ...}}, got {_type_name(data)}")
    if "type" not in data:
        raise ConfigError(f"{where}.type: required key is missing (the registered {kind} name)")
    name = data["type"]
    if not isinstance(name, str):
        raise ConfigError(f"{where / 'type'}: expected a registered {kind} name (a string), got {_type_name(name)}")
    try:
        entry = plugins.entry(kind, name)
        cls = entry.load()
    except RegistryError as e:
        raise ConfigError(f"{where / 'type'}: {e}") from None
    params = {k: v for k, v in data.items() if k != "type"}
    return ComponentSpec(kind, name, structure(cls.Config, params, where, plugins), entry)


def structure_value(tp: Any, value: Any, where: Where, plugins) -> Any:
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: must not be null")
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return structure_value(arg, value, where, plugins)
            except ConfigError as e:
                errors.append(e)
        expected = " or ".join(_describe(a) for a in args if a is not type(None))
        raise ConfigError(f"{where}: expected {expected}, got {_type_name(value)} {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {_type_name(value)}")
        item_type = args[0] if args else Any
        items = [structure_value(item_type, v, where / i, plugins) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_type_name(value)}")
        value_type = args[1] if len(args) == 2 else Any
        return {str(k): structure_value(value_type, v, where / k, plugins) for k, v in value.items()}
    if attrs.has(tp):
        return structure(tp, value, where, plugins)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected a boolean (true/false), got {_type_name(value)} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_type_name(value)} {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_type_name(value)} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_type_name(value)} {value!r}")
        return value
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: cannot read a value of type {_describe(tp)} from {value!r}")


# -- dumping ---------------------------------------------------------------------------------


def unstructure(value: Any) -> Any:
    """Plain YAML-ready data for a structured config: every default filled in."""
    if isinstance(value, ComponentSpec):
        return {"type": value.type, **unstructure(value.config)}
    if attrs.has(type(value)):
        return {f.name: unstructure(getattr(value, f.name)) for f in attrs.fields(type(value)) if f.init}
    if isinstance(value, (list, tuple)):
        return [unstructure(v) for v in value]
    if isinstance(value, dict):
        return {k: unstructure(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
