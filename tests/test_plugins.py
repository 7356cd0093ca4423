"""Plugin loading: entry points, broken plugins isolated, strict mode, allow/block lists, commands."""

import json
import types

import attrs
import pytest

from openr_core import PluginError, hookimpl
from openr_core.cli import cli
from openr_core.plugins import Plugins

GOOD = """
from openr_core import hookimpl

@hookimpl
def register_generators(register):
    register("good-gen", "openr_nowhere.gen:Gen", doc="The good one.")
"""

GOOD_TASK = """
from openr_core import hookimpl

@hookimpl
def register_tasks(register):
    register("other-task", "openr_nowhere.task:Task", doc="Another good one.")
"""

IMPORT_ERROR = """
import openr_module_that_does_not_exist_at_all
"""

HOOK_RAISES = """
from openr_core import hookimpl

@hookimpl
def register_generators(register):
    register("half-registered", "openr_nowhere.gen:Gen", doc="Registered before the failure.")
    raise ValueError("hook exploded")
"""

MISSPELLED = """
from openr_core import hookimpl

@hookimpl
def register_generatorz(register):
    register("never", "openr_nowhere.gen:Gen")
"""

BAD_ARGS = """
from openr_core import hookimpl

@hookimpl
def register_generators(registry):
    registry("never", "openr_nowhere.gen:Gen")
"""


def _one_warning(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("openr: warning: ")
    return lines[0]


# -- entry points, in process --------------------------------------------------------------------


def test_entry_points_load_with_distribution_and_version(fake_dists):
    fake_dists.add("openr-good", "good", GOOD, version="1.2.3")
    plugins = Plugins(strict=True).load_entry_points()
    assert plugins.problems == []
    info = plugins.info["good"]
    assert (info.name, info.dist, info.version) == ("good", "openr-good", "1.2.3")
    assert info.components == {"generators": ["good-gen"]}
    assert plugins.entry("generator", "good-gen").dist == "openr-good"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (IMPORT_ERROR, "plugin 'broken' (openr-broken) failed to import: ModuleNotFoundError: No module named 'openr_module_that_does_not_exist_at_all'"),
        (HOOK_RAISES, "plugin 'broken' (openr-broken) failed in a hook: ValueError: hook exploded"),
        (MISSPELLED, "plugin 'broken' (openr-broken) is invalid: unknown hook 'register_generatorz' in plugin"),
        (BAD_ARGS, "plugin 'broken' (openr-broken) is invalid: Plugin 'broken' for hook 'register_generators'; hookimpl definition: register_generators(registry)"),
    ],
    ids=["import-error", "hook-raises", "misspelled-hook", "wrong-hook-arguments"],
)
def test_broken_plugin_is_isolated_with_one_line_warning(fake_dists, capsys, source, expected):
    fake_dists.add("openr-good", "good", GOOD)
    fake_dists.add("openr-broken", "broken", source)
    fake_dists.add("openr-zzz", "zzz", GOOD_TASK)  # loads after the broken one (sorted by name)
    plugins = Plugins(strict=False).load_entry_points()
    warning = _one_warning(capsys)
    assert warning.startswith("openr: warning: " + expected), warning
    assert plugins.problems == [warning.removeprefix("openr: warning: ")]
    # the others still work; nothing of the broken one remains
    assert sorted(plugins.info) == ["good", "zzz"]
    assert "good-gen" in plugins.registry("generators")
    assert "other-task" in plugins.registry("tasks")
    assert "half-registered" not in plugins.registry("generators")
    assert "never" not in plugins.registry("generators")
    assert not plugins.pm.has_plugin("broken")


@pytest.mark.parametrize("source", [IMPORT_ERROR, HOOK_RAISES, MISSPELLED, BAD_ARGS])
def test_strict_mode_raises_plugin_error(fake_dists, source):
    fake_dists.add("openr-broken", "broken", source)
    with pytest.raises(PluginError, match=r"^plugin 'broken' \(openr-broken\) ") as info:
        Plugins(strict=True).load_entry_points()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["1", "true", "yes", "TRUE"])
def test_strict_mode_from_environment(fake_dists, monkeypatch, value):
    fake_dists.add("openr-broken", "broken", HOOK_RAISES)
    monkeypatch.setenv("OPENR_STRICT_PLUGINS", value)
    assert Plugins().strict
    with pytest.raises(PluginError, match="hook exploded"):
        Plugins().load_entry_points()
    monkeypatch.setenv("OPENR_STRICT_PLUGINS", "0")
    assert not Plugins().strict
    assert Plugins(strict=False).strict is False


def test_allow_list_by_entry_point_or_distribution_name(fake_dists, monkeypatch):
    fake_dists.add("openr-good", "good", GOOD)
    fake_dists.add("openr-zzz", "zzz", GOOD_TASK)
    fake_dists.add("openr-broken", "broken", IMPORT_ERROR)
    monkeypatch.setenv("OPENR_PLUGINS", "good")
    assert sorted(Plugins(strict=True).load_entry_points().info) == ["good"]
    monkeypatch.setenv("OPENR_PLUGINS", " openr-zzz , good ")
    assert sorted(Plugins(strict=True).load_entry_points().info) == ["good", "zzz"]
    monkeypatch.setenv("OPENR_PLUGINS", "")  # set but empty: load none
    assert Plugins(strict=True).load_entry_points().info == {}


def test_block_list_by_entry_point_or_distribution_name(fake_dists, monkeypatch):
    fake_dists.add("openr-good", "good", GOOD)
    fake_dists.add("openr-zzz", "zzz", GOOD_TASK)
    fake_dists.add("openr-broken", "broken", IMPORT_ERROR)
    monkeypatch.setenv("OPENR_DISABLE_PLUGINS", "broken")
    plugins = Plugins(strict=True).load_entry_points()  # strict, yet fine: the broken one never loads
    assert sorted(plugins.info) == ["good", "zzz"]
    monkeypatch.setenv("OPENR_DISABLE_PLUGINS", "openr-broken,zzz")
    assert sorted(Plugins(strict=True).load_entry_points().info) == ["good"]
    # the block list wins over the allow list
    monkeypatch.setenv("OPENR_PLUGINS", "good,zzz")
    monkeypatch.setenv("OPENR_DISABLE_PLUGINS", "good")
    assert sorted(Plugins(strict=True).load_entry_points().info) == ["zzz"]


def test_loading_twice_does_not_register_twice(fake_dists):
    fake_dists.add("openr-good", "good", GOOD)
    plugins = Plugins(strict=True).load_entry_points().load_entry_points()
    assert list(plugins.info) == ["good"]


def test_same_name_or_module_twice_in_process_keeps_the_first(capsys):
    module = types.ModuleType("openr_twice")
    exec(GOOD, module.__dict__)
    plugins = Plugins(strict=False)
    assert plugins.register(module, "first", dist="openr-first")
    assert not plugins.register(module, "second", dist="openr-second")
    assert "plugin 'second' (openr-second) is not loaded: Plugin already registered under a different name" in _one_warning(capsys)
    other = types.ModuleType("openr_other")
    exec(GOOD_TASK, other.__dict__)
    assert not plugins.register(other, "first", dist="openr-other")
    assert "plugin 'first' (openr-other) is not loaded: Plugin name already registered" in _one_warning(capsys)
    assert plugins.entry("generator", "good-gen").dist == "openr-first"
    assert "other-task" not in plugins.registry("tasks")


# -- the CLI with broken plugins (a fresh interpreter, plugins found on PYTHONPATH) ---------------


def test_cli_with_broken_plugin_warns_and_keeps_working(tmp_path, fake_dists, openr_subprocess):
    fake_dists.add("openr-good", "good", GOOD, version="0.7")
    fake_dists.add("openr-broken", "broken", HOOK_RAISES)
    env = {"OPENR_PLUGINS": "good,broken"}  # ignore whatever else is installed in this venv
    proc = openr_subprocess(["ls", "generators"], env=env, pythonpath=[fake_dists.root], check_rc=0)
    assert "good-gen" in proc.stdout and "[openr-good]" in proc.stdout
    assert proc.stderr.strip() == "openr: warning: plugin 'broken' (openr-broken) failed in a hook: ValueError: hook exploded"

    proc = openr_subprocess(["plugins"], env=env, pythonpath=[fake_dists.root], check_rc=0)
    assert "openr-good 0.7  (entry point 'good')" in proc.stdout
    assert "  generators: good-gen" in proc.stdout
    assert "broken: plugin 'broken' (openr-broken) failed in a hook: ValueError: hook exploded" in proc.stdout

    proc = openr_subprocess(["plugins", "--json"], env=env, pythonpath=[fake_dists.root], check_rc=0)
    data = json.loads(proc.stdout)
    assert [p["distribution"] for p in data["plugins"]] == ["openr-good"]
    assert data["problems"] == ["plugin 'broken' (openr-broken) failed in a hook: ValueError: hook exploded"]


def test_cli_strict_env_fails_in_one_line(tmp_path, fake_dists, openr_subprocess):
    fake_dists.add("openr-good", "good", GOOD)
    fake_dists.add("openr-broken", "broken", IMPORT_ERROR)
    env = {"OPENR_PLUGINS": "good,broken", "OPENR_STRICT_PLUGINS": "1"}
    proc = openr_subprocess(["ls"], env=env, pythonpath=[fake_dists.root], check_rc=1)
    assert proc.stderr.strip() == (
        "openr: error: plugin 'broken' (openr-broken) failed to import: "
        "ModuleNotFoundError: No module named 'openr_module_that_does_not_exist_at_all'"
    )
    assert "Traceback" not in proc.stderr
    proc = openr_subprocess(["--debug", "ls"], env=env, pythonpath=[fake_dists.root])
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "PluginError" in proc.stderr
    # the block list turns the broken one off, strict or not
    env["OPENR_DISABLE_PLUGINS"] = "openr-broken"
    proc = openr_subprocess(["ls", "generators"], env=env, pythonpath=[fake_dists.root], check_rc=0)
    assert "good-gen" in proc.stdout and proc.stderr == ""


# -- register_commands and job_command -----------------------------------------------------------


@attrs.frozen(kw_only=True)
class CountJobConfig:
    job: str = ""
    seed: int = 0
    output_dir: str | None = None
    upto: int = 3


def run_count(config, run):
    """Count to `upto` (a plugin job)."""
    results = run.results()
    results.append([{"id": i} for i in range(config.upto)])
    run.write_json("summary.json", {"count": len(results)})


def _commands_plugin():
    from openr_core.jobs import job_command

    module = types.ModuleType("openr_commands_plugin")

    @hookimpl
    def register_commands(cli):
        cli.add_command(job_command("count", CountJobConfig, run_count))

    module.register_commands = register_commands
    return module


def test_plugin_job_command_via_run_and_by_name(plugins, invoke, write_config, tmp_path):
    assert plugins.register(_commands_plugin(), "counting", dist="openr-counting")
    result = invoke("--help")
    assert result.exit_code == 0 and "count" in result.stdout.split("Commands:")[1]
    config = write_config("job: count\nupto: 4\n")
    result = invoke("run", config, "--output", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a" / "summary.json").read_text()) == {"count": 4}
    assert "upto: 4" in (tmp_path / "a" / "config.yaml").read_text()
    result = invoke("count", config, "--set", "upto=2", "--output", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "b" / "summary.json").read_text()) == {"count": 2}
    # the job's own command refuses a config of another job; run lists the plugin's job
    result = invoke("evaluate", config)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"openr: error: {config}: job: this config is for 'count', not 'evaluate'"
    result = invoke("run", write_config("job: countt\n", "other.yaml"))
    assert result.exit_code == 2
    jobs = sorted(name for name, command in cli.commands.items() if getattr(command, "openr_job", None))
    assert "count" in jobs and "evaluate" in jobs and "train" in jobs
    assert f"job: unknown job 'countt'; available jobs: {', '.join(jobs)}" in result.stderr
    result = invoke("plugins")
    assert "openr-counting" in result.stdout and "  commands: yes" in result.stdout


def test_failing_register_commands_is_isolated(install_plugins, new_plugins, invoke, capsys):
    plugins = install_plugins(new_plugins(strict=False))
    failing = types.ModuleType("openr_failing_commands")

    @hookimpl
    def register_commands(cli):
        raise RuntimeError("no commands today")

    failing.register_commands = register_commands
    assert plugins.register(failing, "failing", dist="openr-failing")
    assert plugins.register(_commands_plugin(), "counting", dist="openr-counting")
    result = invoke("--help")
    assert result.exit_code == 0
    assert "count" in result.stdout.split("Commands:")[1]
    assert plugins.problems == ["plugin 'failing' (openr-failing) failed in register_commands: RuntimeError: no commands today"]


def test_failing_register_commands_strict_is_an_error(plugins, invoke):
    failing = types.ModuleType("openr_failing_commands")

    @hookimpl
    def register_commands(cli):
        raise RuntimeError("no commands today")

    failing.register_commands = register_commands
    assert plugins.register(failing, "failing", dist="openr-failing")
    result = invoke("ls")
    assert result.exit_code == 1
    assert result.stderr.strip() == "openr: error: plugin 'failing' (openr-failing) failed in register_commands: RuntimeError: no commands today"
