"""Config files: validation messages, --set precedence, validate --show, exit codes, --debug."""

from pathlib import Path

import pytest
import yaml

from openr_core.cli import cli
from openr_core.config import Where, apply_overrides, structure
from openr_core.errors import ConfigError
from openr_core.evaluation import EvaluateJob
from openr_core.plugins import PLUGIN_ATTRIBUTE

# core's own jobs, whatever plugin commands earlier tests (in any order) left in the group
CORE_JOBS = ", ".join(sorted(name for name, command in cli.commands.items()
                             if getattr(command, "openr_job", None) and not getattr(command, PLUGIN_ATTRIBUTE, None)))

GOOD = """
job: evaluate
task: tiny
generator: {type: rich, model: some/model}
"""


def _error(invoke, *args) -> str:
    """Run openr ARGS, expect a config error: exit 2, one line on stderr, no traceback; return the line."""
    result = invoke(*args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("openr: error: ")
    assert "Traceback" not in result.output
    return lines[0].removeprefix("openr: error: ")


# Each case: config text, then the exact message after "<file>: " (the file is always named first).
BAD_CONFIGS = {
    "unknown-top-level-key": (
        GOOD + "limt: 3\n",
        "limt: unknown key (did you mean 'limit'?); valid keys: job, seed, output_dir, launcher, task, generator, "
        "split, limit, n, temperature, top_p, max_tokens, batch_size",
    ),
    "unknown-component-type": (
        "job: evaluate\ntask: tiny\ngenerator: {type: rihc, model: m}\n",
        "generator.type: unknown generator 'rihc'. Did you mean: rich? Available: echo, rich",
    ),
    "unknown-key-in-component": (
        "job: evaluate\ntask: tiny\ngenerator: {type: echo, repeatt: 2}\n",
        "generator.repeatt: unknown key (did you mean 'repeat'?); valid keys: repeat",
    ),
    "unknown-key-in-nested-mapping": (
        GOOD.replace("model: some/model", "model: m, nested: {dept: 2}"),
        "generator.nested.dept: unknown key (did you mean 'depth'?); valid keys: depth, label",
    ),
    "string-instead-of-int": (
        GOOD.replace("model: some/model", "model: m, repeat: two"),
        "generator.repeat: expected an integer, got a string 'two'",
    ),
    "int-instead-of-string": (
        GOOD + "split: 3\n",
        "split: expected a string, got an integer 3",
    ),
    "bool-instead-of-int": (
        GOOD + "n: true\n",
        "n: expected an integer, got a boolean True",
    ),
    "string-instead-of-bool": (
        GOOD.replace("model: some/model", "model: m, fast: 'no'"),
        "generator.fast: expected a boolean (true/false), got a string 'no'",
    ),
    "missing-required-component-key": (
        "job: evaluate\ntask: tiny\ngenerator: rich\n",
        "generator.model: required key is missing",
    ),
    "missing-required-component": (
        "job: evaluate\ngenerator: echo\n",
        "task: required key is missing",
    ),
    "component-section-without-type": (
        "job: evaluate\ntask: tiny\ngenerator: {model: m}\n",
        "generator.type: required key is missing (the registered generator name)",
    ),
    "component-section-not-a-mapping": (
        "job: evaluate\ntask: tiny\ngenerator: [echo]\n",
        "generator: expected a generator section like {type: NAME, ...}, got a list",
    ),
    "component-type-not-a-string": (
        "job: evaluate\ntask: {type: [tiny]}\ngenerator: echo\n",
        "task.type: expected a registered task name (a string), got a list",
    ),
    "literal-violation": (
        GOOD.replace("model: some/model", "model: m, mode: sample"),
        "generator.mode: 'sample' is not one of 'greedy', 'beam'",
    ),
    "null-not-allowed": (
        GOOD + "split: null\n",
        "split: expected a string, got null None",
    ),
    "list-expected": (
        GOOD.replace("model: some/model", "model: m, stop: '###'"),
        "generator.stop: expected a list, got a string",
    ),
    "list-item-wrong-type": (
        GOOD.replace("model: some/model", "model: m, stop: [a, 3]"),
        "generator.stop.1: expected a string, got an integer 3",
    ),
    "optional-int-wrong-type": (
        GOOD.replace("model: some/model", "model: m, seed: abc"),
        "generator.seed: expected an integer, got a string 'abc'",
    ),
    "component-validator": (
        "job: evaluate\ntask: {type: tiny, size: many}\ngenerator: echo\n",
        "task.size: expected an integer, got a string 'many'",
    ),
    "top-level-not-a-mapping": (
        "- job: evaluate\n- task: tiny\n",
        "the top level must be a mapping, got a list",
    ),
    "no-job-key": (
        "task: tiny\ngenerator: echo\n",
        "job: required key is missing (which job runs this config)",
    ),
    "unknown-job": (
        "job: evaluat\ntask: tiny\ngenerator: echo\n",
        f"job: unknown job 'evaluat'; available jobs: {CORE_JOBS}",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_is_one_line_naming_file_and_path(plugins, invoke, write_config, case):
    text, expected = BAD_CONFIGS[case]
    path = write_config(text)
    assert _error(invoke, "validate", path) == f"{path}: {expected}"
    assert _error(invoke, "run", path) == f"{path}: {expected}"


def test_invalid_yaml_names_file_and_line(plugins, invoke, write_config):
    path = write_config("job: evaluate\ntask: tiny\ngenerator: echo\n  repeat: [1\n")
    assert _error(invoke, "validate", path) == f"{path}: line 4 invalid YAML: mapping values are not allowed here"
    path = write_config("job: evaluate\ntask: [tiny\n", "unclosed.yaml")
    message = _error(invoke, "validate", path)
    assert message.startswith(f"{path}: line ") and "invalid YAML" in message


def test_missing_file(plugins, invoke, tmp_path):
    path = tmp_path / "nope.yaml"
    assert _error(invoke, "validate", str(path)) == f"{path}: config file not found"
    assert _error(invoke, "run", str(path)) == f"{path}: config file not found"


def test_config_for_a_different_job(plugins, invoke, write_config):
    path = write_config("job: train\ntrainer: x\n")
    assert _error(invoke, "evaluate", path) == f"{path}: job: this config is for 'train', not 'evaluate'"
    # a job's own command needs no job key
    path = write_config("task: tiny\ngenerator: echo\n", "nojob.yaml")
    result = invoke("evaluate", path, "--output", str(Path(path).parent / "out"))
    assert result.exit_code == 0, result.output


def test_unknown_trainer_when_none_installed(plugins, invoke, write_config):
    path = write_config("job: train\ntrainer: sft\n")
    assert _error(invoke, "validate", path) == f"{path}: trainer.type: unknown trainer 'sft'. Available: none (is the plugin installed?)"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("limit", "--set 'limit': expected PATH=VALUE, e.g. generator.model=path"),
        ("=3", "--set '=3': expected PATH=VALUE, e.g. generator.model=path"),
        ("generator.stop.5=x", "--set 'generator.stop.5=x': 'generator.stop' has no item 5"),
        ("split.x=1", "{path}: split: expected a string, got a mapping {{'x': 1}}"),
        ("generator.nope=1", "{path}: generator.nope: unknown key; valid keys: model, repeat, mode, stop, temperature, seed, fast, nested"),
        ("n=lots", "{path}: n: expected an integer, got a string 'lots'"),
    ],
)
def test_bad_set(plugins, invoke, write_config, override, expected):
    path = write_config(GOOD.replace("model: some/model", "model: m, stop: [a]"))
    assert _error(invoke, "validate", path, "--set", override) == expected.format(path=path)


def test_set_precedence_later_wins_over_earlier_and_file(plugins, invoke, write_config):
    path = write_config(GOOD + "seed: 1\nn: 2\n")
    result = invoke(
        "validate", path, "--show",
        "--set", "seed=2", "--set", "seed=3",           # later wins
        "--set", "generator.nested.depth=7",            # creates a nested key the file lacks
        "--set", "generator.stop=[a, b]",               # values are YAML
        "--set", "temperature=1e-3",                    # a float YAML 1.1 reads as a string
        "--set", "split=",                              # empty value: empty string
    )
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["seed"] == 3
    assert shown["n"] == 2  # from the file
    assert shown["generator"]["nested"] == {"depth": 7, "label": "x"}
    assert shown["generator"]["stop"] == ["a", "b"]
    assert shown["generator"]["model"] == "some/model"
    assert shown["temperature"] == 0.001
    assert shown["split"] == ""


def test_set_on_a_string_shorthand_component_keeps_its_type(plugins, invoke, write_config):
    path = write_config("job: evaluate\ntask: tiny\ngenerator: echo\n")
    result = invoke("validate", path, "--show", "--set", "generator.repeat=5", "--set", "task.size=2")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["generator"] == {"type": "echo", "repeat": 5}
    assert shown["task"] == {"type": "tiny", "size": 2}
    # and --set can switch a component's type
    result = invoke("validate", path, "--show", "--set", "generator=rich", "--set", "generator.model=m")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["generator"]["type"] == "rich"


def test_validate_ok_and_show_prints_every_default(plugins, invoke, write_config, tmp_path):
    path = write_config(GOOD)
    result = invoke("validate", path)
    assert result.exit_code == 0
    assert result.stdout == f"{path}: ok (evaluate)\n"
    result = invoke("validate", path, "--show")
    assert result.exit_code == 0
    shown = yaml.safe_load(result.stdout)
    assert shown == {
        "job": "evaluate", "seed": 0, "output_dir": None, "launcher": None,
        "task": {"type": "tiny", "size": 4},
        "generator": {
            "type": "rich", "model": "some/model", "repeat": 1, "mode": "greedy", "stop": [],
            "temperature": 0.0, "seed": None, "fast": False, "nested": {"depth": 1, "label": "x"},
        },
        "split": "test", "limit": None, "n": 0, "temperature": 1.0, "top_p": 1.0,
        "max_tokens": 256, "batch_size": 100,
    }
    # what --show prints is itself a valid config that resolves to the same thing
    again = tmp_path / "shown.yaml"
    again.write_text(result.stdout)
    assert invoke("validate", str(again), "--show").stdout == result.stdout


def test_debug_shows_traceback(plugins, invoke, write_config):
    path = write_config(GOOD + "limt: 3\n")
    result = invoke("--debug", "validate", path)
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "limt: unknown key" in str(result.exception)


def test_debug_traceback_in_a_real_process(write_config, openr_subprocess):
    path = write_config("job: evaluate\ntask: tiny\ngenerator: echo\nbogus: 1\n")
    quiet = openr_subprocess(["validate", path], env={"OPENR_PLUGINS": ""}, check_rc=2)
    assert quiet.stderr.startswith(f"openr: error: {path}: bogus: unknown key; valid keys: job, seed,")
    assert "Traceback" not in quiet.stderr
    loud = openr_subprocess(["--debug", "validate", path], env={"OPENR_PLUGINS": ""})
    assert loud.returncode != 0
    assert "Traceback (most recent call last)" in loud.stderr
    assert "openr_core.errors.ConfigError" in loud.stderr


def test_structure_directly(plugins):
    raw = {"job": "evaluate", "task": "tiny", "generator": {"type": "echo", "repeat": 2}, "limit": 3}
    config = structure(EvaluateJob, raw, Where("inline"), plugins)
    assert config.limit == 3 and config.n == 0
    assert config.generator.type == "echo" and config.generator.config.repeat == 2
    assert config.task.build().load("test")[0].id == "p0"
    with pytest.raises(ConfigError, match=r"^inline: limit: expected an integer, got a number 1.5$"):
        structure(EvaluateJob, {**raw, "limit": 1.5}, Where("inline"), plugins)


def test_apply_overrides_does_not_mutate_and_indexes_lists():
    data = {"a": {"b": [1, {"c": 2}]}}
    out = apply_overrides(data, ["a.b.1.c=5", "a.b.0=x", "d.e=true"])
    assert data == {"a": {"b": [1, {"c": 2}]}}
    assert out == {"a": {"b": ["x", {"c": 5}]}, "d": {"e": True}}
    with pytest.raises(ConfigError, match=r"'a.b.0' is not a mapping"):
        apply_overrides({"a": {"b": [1]}}, ["a.b.0.c=1"])
