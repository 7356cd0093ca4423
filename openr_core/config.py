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
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import attrs
import yaml

from openr_core.errors import ConfigError, RegistryError
from openr_core.registry import KIND_BY_KEY, Entry

COMPONENT = "openr_component"


def component(kind: str, *, optional: bool = False, many: bool = False, default: str | None = None,
              minimum: int = 0):
    """Declare an attrs field holding a component spec (or a list of them) of config key ``kind``.

    ``default``: the registered name used when the section is left out (e.g. ``"mc"``). A section
    given as a string or mapping, from YAML or from Python, is checked like a top-level one.
    ``minimum`` (with ``many``): the fewest sections the list may hold (``searchers: []`` would
    run nothing).
    """
    if kind not in KIND_BY_KEY:
        raise ValueError(f"unknown component kind {kind!r}; one of {sorted(KIND_BY_KEY)}")
    metadata = {COMPONENT: kind, "many": many, "default": default, "optional": optional, "minimum": minimum}
    converter = _SpecConverter(kind, many, optional, minimum)
    if many:
        return attrs.field(factory=list, metadata=metadata, converter=converter)
    if default is not None:
        return attrs.field(default=default, metadata=metadata, converter=converter)
    if optional:
        return attrs.field(default=None, metadata=metadata, converter=converter)
    return attrs.field(metadata=metadata, converter=converter)


def count(default: int | None, *, minimum: int = 1):
    """Declare an attrs field for a count or size (``limit``, ``batch_size``, ``n``...): an integer
    ``>= minimum``; None is allowed where the default is None. Checked from YAML and from Python."""
    return attrs.field(default=default, validator=Bounds(minimum=minimum))


def number(default: float | None, *, minimum: float | None = None, above: float | None = None,
           maximum: float | None = None):
    """Declare an attrs field for a bounded number (``temperature = number(1.0, minimum=0)``,
    ``top_p = number(1.0, above=0, maximum=1)``); None is allowed where the default is None.
    Checked from YAML and from Python (NaN fails every bound)."""
    return attrs.field(default=default, validator=Bounds(minimum, above, maximum))


@attrs.frozen
class Bounds:
    """The bounds of :func:`count` and :func:`number`. A value that is not a number at all is left
    to the type check of :func:`structure` (``Config(temperature="hot")`` from Python then gets
    the same message as YAML); None is left to it too (allowed only where the type says so)."""

    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None

    def __call__(self, instance, attribute, value) -> None:
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        for op, bound, ok in ((">=", self.minimum, lambda: value >= self.minimum),
                              (">", self.above, lambda: value > self.above),
                              ("<=", self.maximum, lambda: value <= self.maximum)):
            if bound is not None and not ok():
                raise ValueError(f"'{attribute.name}' must be {op} {bound}: {value}")


@attrs.frozen
class _SpecConverter:
    """Turns a section given in Python (a name or a mapping) into a checked :class:`ComponentSpec`."""

    kind: str
    many: bool
    optional: bool
    minimum: int = 0

    def __call__(self, value: Any) -> Any:
        if self.many:
            if isinstance(value, ComponentSpec) or not isinstance(value, (list, tuple)):
                raise ValueError(f"expected a list of {self.kind} sections, got {_type_name(value)}")
            if len(value) < self.minimum:
                raise ValueError(f"expected at least {self.minimum} {self.kind} section(s), got {len(value)}")
            return [self._one(v, Where(f"<{self.kind}>", (str(i),))) for i, v in enumerate(value)]
        if value is None:
            if self.optional:
                return None
            raise ValueError(f"a {self.kind} section is required, got null")
        return self._one(value, Where(f"<{self.kind}>"))

    def _one(self, value: Any, where: Where) -> ComponentSpec:
        if isinstance(value, ComponentSpec):
            if value.kind != self.kind:
                raise ValueError(f"expected a {self.kind} section, got a {value.kind} one ({value.type!r})")
            return value
        return structure_component(self.kind, value, where, None)


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
    """The mapping in YAML file ``path``; any unreadable, undecodable or non-mapping file is one ConfigError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    data = parse_yaml(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {_type_name(data)}")
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error (PyYAML
    keeps the last silently: ``seed: 0`` ... ``seed: 1`` would run with seed 1 unnoticed)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *alias`: the later keys win, as meant
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: PyYAML reports it below
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice in one mapping", key_node.start_mark)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load(text)``, every failure (bad syntax, a key given twice, a date like
    2024-02-30, nesting too deep, whatever PyYAML's constructors raise) turned into one
    ConfigError naming ``source``."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{source}:{where} invalid YAML: {_one_line(problem)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    except Exception as e:  # PyYAML's constructors: a date like 2024-02-30, an empty !!int, ...
        raise ConfigError(f"{source}: invalid YAML value: {type(e).__name__}: {_one_line(str(e))}") from None
    _check_expanded_size(data, source)
    return data


MAX_VALUES = 1_000_000


def _check_expanded_size(data: Any, source: str) -> None:
    """Refuse what aliases blow up (``b: [*a, *a, ...]`` nested: a billion values) or loop
    (``a: &a [*a]``): every later step walks the expanded tree."""
    stack, seen = [(data, ())], 0
    while stack:
        node, ancestors = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise ConfigError(f"{source}: more than {MAX_VALUES:,} values once aliases are expanded")
        if isinstance(node, (dict, list)):
            if id(node) in ancestors:
                raise ConfigError(f"{source}: an alias refers to a mapping or list that contains it")
            inner = (*ancestors, id(node))
            children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
            stack.extend((child, inner) for child in children)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def apply_overrides(data: dict, overrides: typing.Sequence[str], source: str = "--set") -> dict:
    """Return a copy of ``data`` with each ``a.b.c=value`` applied in order (value parsed as YAML)."""
    data = copy.deepcopy(data)
    for item in overrides:
        path, sep, raw = item.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"{source} {item!r}: expected PATH=VALUE, e.g. generator.model=path")
        try:
            value = parse_yaml(raw, f"{source} {item!r}") if raw.strip() else raw
        except ConfigError:
            value = raw
        keys = path.strip().split(".")
        node: Any = data
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(node, list):
                if not (key.isascii() and key.isdigit()) or int(key) >= len(node):
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
        label = str(key)
        if not label.isprintable() or not label:  # a key from YAML with a newline in it: still one line
            label = repr(key)
        return Where(self.file, (*self.path, label))

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


def check_config(cls: type, value: Any, name: str) -> Any:
    """``value`` (a mapping of fields, or a ``cls`` instance built in Python) checked exactly like a
    YAML section: the instance of ``cls`` it describes, or ConfigError naming ``name``."""
    if not attrs.has(cls):
        return cls(**value) if isinstance(value, dict) else value
    if not isinstance(value, (dict, cls)):  # something else entirely (a test double): left alone
        return value
    return structure(cls, value, Where(name), None)


def _validator_message(error: ValueError, where: Where, fields: typing.Iterable[str]) -> str:
    """attrs validators say "'name' must be >= 1: 0": name the field's path instead."""
    message = str(error)
    for name in fields:
        if message.startswith(f"'{name}' "):
            return f"{where / name}: {message.removeprefix(repr(name) + ' ')}"
    return f"{where}: {message}"


def structure(cls: type, data: Any, where: Where, plugins) -> Any:
    """Build an instance of attrs class ``cls`` from plain data, or raise ConfigError.

    ``plugins``: where component names are looked up (None: the process-wide plugins, loaded
    only if a component section needs them).
    """
    if data is None:
        data = {}
    if isinstance(data, cls):  # an instance built in Python: checked field by field too
        data = {f.name: getattr(data, f.name) for f in attrs.fields(cls) if f.init}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_type_name(data)}")
    fields = {f.name: f for f in attrs.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            valid = ", ".join(fields) or "none"
            raise ConfigError(f"{where / key}: unknown key{hint}; valid keys: {valid}")
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a hint that does not resolve (a test double's local class): no type check
        hints = {}
    kwargs = {}
    for name, f in fields.items():
        kind = f.metadata.get(COMPONENT)
        if name not in data:
            if kind and f.metadata.get("default"):
                kwargs[name] = structure_component(kind, f.metadata["default"], where / name, plugins)
            elif f.default is attrs.NOTHING:
                raise ConfigError(f"{where / name}: required key is missing")
            continue
        if kind and f.metadata.get("many"):
            items = data[name]
            if not isinstance(items, (list, tuple)):
                raise ConfigError(f"{where / name}: expected a list of {kind} sections, got {_type_name(items)}")
            if len(items) < f.metadata.get("minimum", 0):
                raise ConfigError(f"{where / name}: expected at least {f.metadata['minimum']} {kind} section(s), got {len(items)}")
            kwargs[name] = [structure_component(kind, item, where / name / i, plugins) for i, item in enumerate(items)]
        elif kind:
            value = data[name]
            if value is None and not f.metadata.get("optional"):
                raise ConfigError(f"{where / name}: a {kind} section is required, got null")
            kwargs[name] = None if value is None else structure_component(kind, value, where / name, plugins)
        else:
            kwargs[name] = structure_value(hints.get(name, Any), data[name], where / name, plugins)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(_validator_message(e, where, fields)) from None
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def structure_component(kind: str, data: Any, where: Where, plugins) -> ComponentSpec:
    if isinstance(data, ComponentSpec) and data.kind == kind:  # already checked (built in Python)
        return data
    if isinstance(data, str):
        data = {"type": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a {kind} section like {{type: NAME, ...}}, got {_type_name(data)}")
    if "type" not in data:
        raise ConfigError(f"{where / 'type'}: required key is missing (the registered {kind} name)")
    name = data["type"]
    if not isinstance(name, str):
        raise ConfigError(f"{where / 'type'}: expected a registered {kind} name (a string), got {_type_name(name)}")
    if plugins is None:
        from openr_core.plugins import get_plugins

        plugins = get_plugins()
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
        if len(errors) == 1:  # `float | None` and the like: the one type's own message
            raise errors[0]
        expected = " or ".join(_describe(a) for a in args if a is not type(None))
        raise ConfigError(f"{where}: expected {expected}, got {_type_name(value)} {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):  # a tuple only comes from Python
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
        number = value
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_type_name(value)} {value!r}")
        if not math.isfinite(number):  # .nan, .inf, "nan", 1e999: no setting means that
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(number)
    if tp is str:
        if isinstance(value, os.PathLike):  # a Path from Python
            value = os.fspath(value)
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
