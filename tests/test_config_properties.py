"""Property-based tests (hypothesis) for reading, overriding and structuring configs.

Whatever the input (any bytes, YAML-ish text, any nested structure, any ``--set``), the result
is a value or ONE line of ConfigError naming the file (or the ``--set`` item): never another
exception, never a traceback.
"""

import datetime
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openr_core.config import Where, apply_overrides, read_yaml, structure
from openr_core.errors import ConfigError
from openr_core.evaluation import EvaluateJob

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CLI_SETTINGS = settings(SETTINGS, max_examples=40)  # a whole `openr validate` per example

FIELDS = ["job", "seed", "output_dir", "task", "generator", "split", "limit", "n", "temperature", "top_p",
          "max_tokens", "batch_size", "type", "repeat", "size", "model", "mode", "stop", "nested", "depth"]

# pieces of YAML that exercise the parser and the constructors (tags, anchors, dates, merges, ...)
TOKENS = ["\n", "  ", "- ", ": ", ":", "{", "}", "[", "]", ", ", "? ", "&a ", "*a", "<<: *a", "!!python/object:os.system ",
          "!!binary ", "!!int ", "!!float ", "!!timestamp ", "!!set ", "!!omap ", "2024-02-30", "2001-12-14t21:59:43.10-05:00",
          "0x1F", "0o17", "1_000", "1e400", ".inf", ".nan", "190:20:30", "~", "null", "yes", "no", "true", "---", "...",
          "%YAML 1.1\n", "|\n  ", ">\n  ", '"\\x41"', '"\\u12"', "'", '"', "#", "\t", "\x00", "\ufeff", "é", "\U0001f600",
          "evaluate", "tiny", "echo", "rich", "-2", "0", "1.5", *FIELDS]

yamlish = st.lists(st.sampled_from(TOKENS) | st.text(string.printable, max_size=4), max_size=40).map("".join)

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8)
           | st.sampled_from(FIELDS) | st.dates() | st.datetimes() | st.binary(max_size=4))
structures = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(FIELDS) | scalars.filter(lambda v: v.__hash__ is not None), children, max_size=5),
    max_leaves=25,
)


def _is_one_line_naming(error: ConfigError, name: str) -> None:
    message = str(error)
    assert "\n" not in message, message
    assert message.startswith(f"{name}:") or message.startswith(f"{name} "), message


def _read(data: bytes):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_bytes(data)
        try:
            value = read_yaml(path)
        except ConfigError as e:
            _is_one_line_naming(e, str(path))
            return None
        assert isinstance(value, dict)
        return value


@SETTINGS
@given(st.binary(max_size=200))
def test_read_yaml_any_bytes(data):
    _read(data)


@SETTINGS
@given(yamlish)
def test_read_yaml_yamlish_text(text):
    _read(text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(yamlish)
def test_read_then_structure_yamlish_text(plugins, text):
    value = _read(text.encode("utf-8", "surrogatepass"))
    if value is not None:
        _structure({"job": "evaluate", "task": "tiny", "generator": "echo", **value}, plugins)


def _structure(data, plugins):
    try:
        config = structure(EvaluateJob, data, Where("f.yaml"), plugins)
    except ConfigError as e:
        _is_one_line_naming(e, "f.yaml")
        return None
    assert isinstance(config, EvaluateJob)
    return config


@SETTINGS
@given(structures)
def test_structure_any_structure(plugins, data):
    _structure(data, plugins)


@SETTINGS
@given(st.dictionaries(st.sampled_from(FIELDS), structures, max_size=6))
def test_structure_evaluate_job_with_any_values(plugins, data):
    _structure({"job": "evaluate", "task": "tiny", "generator": {"type": "rich", "model": "m"}, **data}, plugins)


@SETTINGS
@given(st.dictionaries(st.sampled_from(FIELDS), structures, max_size=6))
def test_structure_any_generator_section(plugins, section):
    _structure({"job": "evaluate", "task": "tiny", "generator": {"type": "rich", **section}}, plugins)


override_paths = st.lists(st.sampled_from(FIELDS) | st.sampled_from(["0", "1", "9", "²", "-1", ""]) | st.text(max_size=3),
                          min_size=1, max_size=4).map(".".join)
override_values = yamlish | st.text(max_size=10)


@SETTINGS
@given(structures.filter(lambda d: isinstance(d, dict)), st.lists(st.tuples(override_paths, override_values), max_size=4),
       st.lists(st.text(max_size=8), max_size=2))
def test_apply_overrides_any_overrides(plugins, data, overrides, raw_items):
    items = [f"{path}={value}" for path, value in overrides] + raw_items
    try:
        result = apply_overrides(data, items)
    except ConfigError as e:
        assert "\n" not in str(e) and str(e).startswith("--set "), str(e)
        return
    assert isinstance(result, dict)
    _structure(result, plugins)


@CLI_SETTINGS
@given(yamlish, st.lists(st.tuples(override_paths, override_values).map("=".join), max_size=3))
def test_validate_command_any_file(plugins, invoke, text, overrides):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_bytes(("job: evaluate\ntask: tiny\ngenerator: echo\n" + text).encode("utf-8", "surrogatepass"))
        args = ["validate", str(path)] + [a for o in overrides for a in ("--set", o)]
        result = invoke(*args)
        assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
        if result.exit_code == 2:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("openr: error: "), result.stderr
            assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "text",
    ["limit: 2024-02-30\n", "seed: 190:20:30\n", "a: &a [*a]\n", "x: !!python/object:os.system ls\n",
     "[" * 5000 + "\n", "n: !!binary xyz\n", "<<: 3\n", "generator: {type: rich, model: m, stop: &a [*a]}\n",
     "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(f"{k}: &{k} [{', '.join([f'*{p}'] * 9)}]\n" for p, k in zip("abcdefgh", "bcdefghi"))],
    ids=["bad-date", "sexagesimal", "self-alias", "python-tag", "deep", "binary", "bad-merge", "self-alias-in-list",
         "billion-laughs"],
)
def test_known_constructor_failures_are_one_line(plugins, text):
    """Cases found once, kept as examples: bad dates, recursive aliases, deep nesting, alias bombs."""
    value = _read(text.encode())
    if value is not None:
        _structure({"job": "evaluate", "task": "tiny", "generator": "echo", **value}, plugins)


def test_dates_and_bytes_are_not_strings(plugins):
    for value in (datetime.date(2024, 1, 1), b"test"):
        assert _structure({"job": "evaluate", "task": "tiny", "generator": "echo", "split": value}, plugins) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a [*a]\n", "an alias refers to a mapping or list that contains it"),
        ("job: evaluate\nseed: 0\nseed: 1\n", "line 3 invalid YAML: key 'seed' is given twice in one mapping"),
        ("job: evaluate\ngenerator: {type: echo, type: rich}\n", "line 2 invalid YAML: key 'type' is given twice in one mapping"),
        ("a:\n  b: 1\n  c: 2\n  b: 3\n", "line 4 invalid YAML: key 'b' is given twice in one mapping"),
        ("a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(f"{k}: &{k} [{', '.join([f'*{p}'] * 9)}]\n" for p, k in zip("abcdefgh", "bcdefghi")),
         "more than 1,000,000 values once aliases are expanded"),
    ],
)
def test_alias_loops_bombs_and_repeated_keys_are_refused(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    assert str(info.value) == f"{path}: {message}"


def _installed_components():
    """(kind key, name, field names) of every component the installed plugins register."""
    import attrs

    from openr_core.plugins import Plugins
    from openr_core.registry import KINDS

    loaded = Plugins(strict=False).load_entry_points()
    found = []
    for kind in KINDS.values():
        for entry in loaded.registry(kind.name):
            try:
                config = entry.load().Config
            except Exception:  # an extra that is not installed (vllm): nothing to structure
                continue
            names = [f.name for f in attrs.fields(config)] if attrs.has(config) else []
            found.append((kind.key, entry.name, names))
    return loaded, found


INSTALLED, COMPONENTS = _installed_components()


@pytest.mark.skipif(not COMPONENTS, reason="no plugin installed")
@settings(max_examples=400, deadline=None)  # ~12 per component; 6000 found nothing more
@given(st.sampled_from(COMPONENTS or [("task", "none", [])]).flatmap(
    lambda c: st.tuples(st.just(c), st.dictionaries(st.sampled_from(c[2] or ["x"]), scalars | structures, max_size=4))))
def test_every_installed_component_section_is_a_spec_or_one_config_error(case):
    """Every installed Config, whatever its section holds: a spec, or one ConfigError line (never a
    KeyError or IndexError from an ``__attrs_post_init__``)."""
    from openr_core.config import structure_component

    (kind, name, _), section = case
    try:
        structure_component(kind, {"type": name, **section}, Where("f.yaml", (kind,)), INSTALLED)
    except ConfigError as e:
        _is_one_line_naming(e, "f.yaml")
