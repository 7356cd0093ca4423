"""Issue 15, core: --fresh deletes only openr's run folders, plugin isolation (sys.exit, name
collisions, commands), one-line errors for unreadable configs and output folders, counts > 0,
and components built in Python checked exactly like YAML sections."""

import json
import os
import tomllib
import types
from pathlib import Path

import attrs
import pytest
import yaml

from openr_core import ConfigError, Generator, Labeler, PluginError, hookimpl
from openr_core.cli import cli
from openr_core.config import Where, component, structure
from openr_core.labelling import LabelJob
from openr_core.plugins import PROJECT_DISTRIBUTIONS, Plugins
from openr_core.runs import MARKER_FILE, Run

REPO = Path(__file__).resolve().parent.parent
EVAL = "job: evaluate\ntask: tiny\ngenerator: echo\n"


def _one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("openr: error: "), result.stderr
    return lines[0].removeprefix("openr: error: ")


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- --fresh never deletes what openr did not make -------------------------------------------------


def test_fresh_refuses_a_folder_that_is_not_a_run_folder(plugins, invoke, write_config, tmp_path):
    config = write_config(EVAL)
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    (mine / "sub" / "data.csv").write_text("1,2\n")
    before = _tree(mine)
    message = _one_line_error(invoke("run", config, "-o", str(mine), "--fresh"))
    assert message == (f"{mine}: not an openr run folder (no {MARKER_FILE} marker), so --fresh deletes nothing; "
                       "choose another --output or delete it yourself")
    assert _tree(mine) == before


def test_a_folder_holding_anything_without_the_marker_is_never_written(plugins, invoke, write_config, tmp_path):
    config = write_config(EVAL)
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "results.jsonl").write_text('{"id": "p0", "mine": true}')  # no newline: a kill would look like this
    (folder / "notes.txt").write_text("keep me")
    before = _tree(folder)
    for extra in ([], ["--fresh"]):
        message = _one_line_error(invoke("run", config, "-o", str(folder), *extra))
        assert message.startswith(f"{folder}: not an openr run folder (no {MARKER_FILE} marker)")
        assert _tree(folder) == before and not (folder / MARKER_FILE).exists()


def test_an_empty_folder_becomes_a_run_folder_and_fresh_does_not_follow_links(plugins, invoke, write_config, tmp_path):
    config = write_config(EVAL)
    folder = tmp_path / "empty"
    folder.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    assert invoke("run", config, "-o", str(folder)).exit_code == 0
    assert {p.name for p in folder.iterdir()} == {MARKER_FILE, "config.yaml", "results.jsonl", "summary.json"}
    (folder / "link").symlink_to(outside, target_is_directory=True)
    result = invoke("run", config, "-o", str(folder), "--set", "n=2", "--fresh")
    assert result.exit_code == 0, result.output
    assert not (folder / "link").exists() and (outside / "precious").read_text() == "keep me"
    assert yaml.safe_load((folder / "config.yaml").read_text())["n"] == 2


def test_fresh_in_a_folder_openr_created_starts_over(plugins, invoke, write_config, tmp_path):
    config = write_config(EVAL)
    out = tmp_path / "runs" / "a"
    assert invoke("run", config, "-o", str(out)).exit_code == 0
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "step-1").write_text("x")
    assert invoke("run", config, "-o", str(out), "--set", "n=2", "--fresh").exit_code == 0
    assert not (out / "checkpoints").exists()
    assert sorted(p.name for p in out.iterdir()) == [MARKER_FILE, "config.yaml", "results.jsonl", "summary.json"]


def test_a_run_folder_written_before_markers_resumes(plugins, invoke, write_config, tmp_path):
    config = write_config(EVAL)
    out = tmp_path / "old-run"
    assert invoke("run", config, "-o", str(out)).exit_code == 0
    (out / MARKER_FILE).unlink()  # as an earlier openr release left it
    results = (out / "results.jsonl").read_bytes()
    assert invoke("run", config, "-o", str(out)).exit_code == 0
    assert (out / "results.jsonl").read_bytes() == results and (out / MARKER_FILE).is_file()
    (out / MARKER_FILE).unlink()
    (out / "extra.txt").write_text("x")
    assert invoke("run", config, "-o", str(out), "--set", "n=2", "--fresh").exit_code == 0
    assert not (out / "extra.txt").exists()
    # a config.yaml that is not a job's does not make a folder openr's
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("lr: 0.1\n")
    assert _one_line_error(invoke("run", config, "-o", str(mine), "--fresh")).startswith(f"{mine}: not an openr run folder")
    assert (mine / "config.yaml").read_text() == "lr: 0.1\n"


@pytest.mark.parametrize("where", [".", "..", "~", "/"])
def test_fresh_never_deletes_cwd_a_parent_of_it_or_home(plugins, invoke, write_config, tmp_path, monkeypatch, where):
    config = write_config(EVAL)
    work = tmp_path / "home" / "project"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    target = Path(where).expanduser()
    for folder in (work, tmp_path / "home"):  # marked, as if openr had made them
        (folder / MARKER_FILE).write_text('{"written_by": "openr"}\n')
    (work / "code.py").write_text("print()")
    before = _tree(tmp_path)
    message = _one_line_error(invoke("run", config, "-o", str(target), "--fresh"))
    assert message.startswith(f"{target}: --fresh never deletes the current folder, a parent of it or the home folder")
    assert _tree(tmp_path) == before


def test_unmarked_folder_with_a_config_yaml_is_not_overwritten(plugins, invoke, write_config, tmp_path):
    config = write_config(EVAL)
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.yaml").write_text("my: own config\n")
    for extra in ([], ["--fresh"]):
        message = _one_line_error(invoke("run", config, "-o", str(folder), *extra))
        assert message.startswith(f"{folder}: ")
        assert (folder / "config.yaml").read_text() == "my: own config\n"
        assert sorted(p.name for p in folder.iterdir()) == ["config.yaml"]


# -- unreadable inputs and output folders: one line naming the file -------------------------------


def test_non_utf8_config_is_one_line(plugins, invoke, tmp_path):
    path = tmp_path / "latin1.yaml"
    data = "job: evaluate\ntask: tiny\ngenerator: echo\nsplit: caf\xe9\n".encode("latin-1")
    path.write_bytes(data)
    for command in ("validate", "run"):
        message = _one_line_error(invoke(command, str(path)))
        assert message == f"{path}: not UTF-8 text (byte 0xe9 at offset {data.index(0xE9)})"


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"job: [evaluate\n", b"- a list\n", b"task: {x: 2024-02-30}\n"])
def test_corrupt_config_yaml_in_a_run_folder_is_one_line(plugins, invoke, write_config, tmp_path, content):
    config = write_config(EVAL)
    out = tmp_path / "out"
    assert invoke("run", config, "-o", str(out)).exit_code == 0
    (out / "config.yaml").write_bytes(content)
    message = _one_line_error(invoke("run", config, "-o", str(out)))
    assert message.startswith(f"{out / 'config.yaml'}: ") and message.endswith("use --fresh to start over or another --output")
    assert invoke("run", config, "-o", str(out), "--fresh").exit_code == 0  # its own run folder: --fresh works


def test_output_folder_that_cannot_be_created_is_one_line(plugins, invoke, write_config, tmp_path):
    config = write_config(EVAL)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    message = _one_line_error(invoke("run", config, "-o", str(a_file / "out")))
    assert message.startswith(f"{a_file / 'out'}: cannot create the output folder: ")
    message = _one_line_error(invoke("run", config, "-o", str(a_file)))
    assert message == f"{a_file}: the output folder is a file (or a broken link), not a folder"
    assert a_file.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_output_folder_without_permission_is_one_line(plugins, invoke, write_config, tmp_path):
    config = write_config(EVAL)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    message = _one_line_error(invoke("run", config, "-o", str(locked / "out")))
    assert message == f"{locked / 'out'}: cannot create the output folder: Permission denied"


# -- counts must be positive -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("limit=-2", "limit: must be >= 1: -2"),
        ("limit=0", "limit: must be >= 1: 0"),
        ("batch_size=0", "batch_size: must be >= 1: 0"),
        ("batch_size=-5", "batch_size: must be >= 1: -5"),
        ("max_tokens=0", "max_tokens: must be >= 1: 0"),
        ("n=-1", "n: must be >= 0: -1"),
    ],
)
def test_validate_rejects_non_positive_counts(plugins, invoke, write_config, override, message):
    config = write_config(EVAL)
    assert _one_line_error(invoke("validate", config, "--set", override)) == f"{config}: {message}"


class NullLabeler(Labeler):
    """Labels nothing (a label job needs a labeler)."""

    def label(self, problems, *, task, generator=None):
        return iter(())


class LabelerPlugin:
    @hookimpl
    def register_labelers(self, register):
        register("null", NullLabeler)


@pytest.mark.parametrize(("key", "value"), [("limit", -2), ("limit", 0), ("batch_size", 0)])
def test_label_job_rejects_non_positive_counts(plugins, key, value):
    assert plugins.register(LabelerPlugin(), "null-labeler")
    raw = {"job": "label", "task": "tiny", "labeler": "null", key: value}
    with pytest.raises(ConfigError, match=rf"^label\.yaml: {key}: must be >= 1: {value}$"):
        structure(LabelJob, raw, Where("label.yaml"), plugins)
    assert structure(LabelJob, {**raw, key: 3}, Where("label.yaml"), plugins).limit in (3, None)


# -- components built in Python are checked like YAML sections ---------------------------------------


def test_python_fields_are_checked_like_yaml(plugins):
    RichGenerator = plugins.entry("generator", "rich").load()  # noqa: N806 (conftest's class)
    with pytest.raises(ConfigError, match=r"^RichGenerator: temperature: expected a number, got a string 'hot'$"):
        RichGenerator(model="m", temperature="hot")
    with pytest.raises(ConfigError, match=r"^RichGenerator: mode: 'sample' is not one of 'greedy', 'beam'$"):
        RichGenerator(model="m", mode="sample")
    with pytest.raises(ConfigError, match=r"^RichGenerator: modl: unknown key \(did you mean 'model'\?\)"):
        RichGenerator(modl="m")
    with pytest.raises(ConfigError, match=r"^RichGenerator: model: expected a string, got an integer 1$"):
        RichGenerator(RichGenerator.Config(model=1))
    with pytest.raises(ConfigError, match=r"^RichGenerator: nested\.depth: expected an integer"):
        RichGenerator(model="m", nested={"depth": "deep"})
    generator = RichGenerator(model=Path("some/model"), temperature=1, stop=("a", "b"))
    assert generator.config.model == "some/model" and generator.config.temperature == 1.0
    assert generator.config.stop == ["a", "b"]


class FallbackGenerator(Generator):
    """A generator with a nested generator section."""

    @attrs.frozen
    class Config:
        fallback: object = component("generator", optional=True)
        backups: list = component("generator", many=True)
        primary: object = component("generator", default="echo")

    def generate(self, requests):
        return self.config.primary.build().generate(requests)


class FallbackPlugin:
    @hookimpl
    def register_generators(self, register):
        register("fallback", FallbackGenerator)


def test_nested_component_fields_are_validated_from_yaml_and_python(plugins, invoke, write_config):
    assert plugins.register(FallbackPlugin(), "fallback")
    base = "job: evaluate\ntask: tiny\ngenerator:\n  type: fallback\n"
    config = write_config(base + "  fallback: {type: rich, modl: x}\n")
    assert _one_line_error(invoke("validate", config)).startswith(
        f"{config}: generator.fallback.modl: unknown key (did you mean 'model'?)")
    config = write_config(base + "  backups: [echo, {type: echo, repeat: zero}]\n")
    assert _one_line_error(invoke("validate", config)) == (
        f"{config}: generator.backups.1.repeat: expected an integer, got a string 'zero'")
    config = write_config(base + "  primary: {type: echo, repeat: 2}\n")
    shown = yaml.safe_load(invoke("validate", config, "--show").stdout)["generator"]
    assert shown == {"type": "fallback", "fallback": None, "backups": [], "primary": {"type": "echo", "repeat": 2}}
    with pytest.raises(ConfigError, match=r"^FallbackGenerator: fallback\.type: unknown generator 'nope'"):
        FallbackGenerator(fallback={"type": "nope"})
    with pytest.raises(ConfigError, match=r"^FallbackGenerator: primary\.repeat: expected an integer"):
        FallbackGenerator(primary={"type": "echo", "repeat": "x"})
    built = FallbackGenerator(fallback="echo")
    assert built.config.fallback.type == "echo" and built.config.primary.config.repeat == 1


# -- plugins: isolation and names -----------------------------------------------------------------------

EXITS = """
import sys
sys.exit(3)
"""

RAISES_BASE = """
class Boom(BaseException):
    pass

raise Boom("not an Exception")
"""

UNPRINTABLE = """
class Odd(Exception):
    def __str__(self):
        raise RuntimeError("no message either")

raise Odd()
"""

GOOD = """
from openr_core import hookimpl

@hookimpl
def register_generators(register):
    register("good-gen", "openr_nowhere.gen:Gen", doc="The good one.")
"""

HOOK_EXITS = """
import sys
from openr_core import hookimpl

@hookimpl
def register_generators(register):
    register("half", "openr_nowhere.gen:Gen")
    sys.exit("bye")
"""

SQUATTER = """
from openr_core import hookimpl

@hookimpl
def register_searchers(register):
    register("greedy", "openr_nowhere.s:Squat", doc="Not the real greedy.")

@hookimpl
def register_tasks(register):
    register("squat-task", "openr_nowhere.s:Task")
"""

FIRST_PARTY = """
from openr_core import hookimpl

@hookimpl
def register_searchers(register):
    register("greedy", "openr_nowhere.s:Greedy", doc="The real greedy.")
    register("beam", "openr_nowhere.s:Beam")
"""


@pytest.mark.parametrize(("source", "reason"), [(EXITS, "SystemExit: it called sys.exit(3)"), (RAISES_BASE, "Boom: not an Exception"),
                                               (UNPRINTABLE, "Odd")])
def test_import_that_exits_or_raises_base_exception_is_isolated(fake_dists, openr_subprocess, source, reason):
    fake_dists.add("openr-good", "good", GOOD)
    fake_dists.add("bad-dist", "bad", source)
    env = {"OPENR_PLUGINS": "good,bad"}
    expected = f"plugin 'bad' (bad-dist) failed to import: {reason}"
    for args in (["--help"], ["ls", "generators"]):
        proc = openr_subprocess(args, env=env, pythonpath=[fake_dists.root], check_rc=0)
        assert proc.stderr.strip() == f"openr: warning: {expected}"
    assert "good-gen" in proc.stdout
    proc = openr_subprocess(["--help"], env={**env, "OPENR_STRICT_PLUGINS": "1"}, pythonpath=[fake_dists.root], check_rc=1)
    assert proc.stderr.strip() == f"openr: error: {expected}"


def test_keyboard_interrupt_on_import_still_propagates(fake_dists):
    fake_dists.add("bad-dist", "bad", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        Plugins(strict=False).load_entry_points()


def test_hook_that_exits_is_isolated_and_leaves_nothing(fake_dists, capsys):
    fake_dists.add("bad-dist", "bad", HOOK_EXITS)
    fake_dists.add("openr-good", "good", GOOD)
    plugins = Plugins(strict=False).load_entry_points()
    assert plugins.problems == ["plugin 'bad' (bad-dist) failed in a hook: SystemExit: it called sys.exit('bye')"]
    assert "half" not in plugins.registry("generators") and "good-gen" in plugins.registry("generators")
    assert list(plugins.info) == ["good"]


def test_third_party_sorting_first_cannot_knock_out_a_first_party_plugin(fake_dists, capsys):
    fake_dists.add("aaa-squatter", "aaa", SQUATTER)  # sorts before "search"
    fake_dists.add("openr-search", "search", FIRST_PARTY)
    plugins = Plugins(strict=False).load_entry_points()
    assert plugins.registry("searchers").get("greedy").dist == "openr-search"
    assert "beam" in plugins.registry("searchers")
    assert list(plugins.info) == ["search"]
    [problem] = plugins.problems
    assert problem.startswith("plugin 'aaa' (aaa-squatter) failed in a hook: DuplicateComponentError: "
                              "searcher 'greedy' is registered by both openr-search and aaa-squatter")
    assert "squat-task" not in plugins.registry("tasks")  # nothing of the rejected plugin remains


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(source, module.__dict__)
    return module


def test_first_party_wins_whatever_the_registration_order(capsys):
    plugins = Plugins(strict=False)
    assert plugins.register(_module("squat", SQUATTER), "aaa", dist="aaa-squatter")
    assert plugins.register(_module("first", FIRST_PARTY), "search", dist="openr-search")
    assert plugins.registry("searchers").get("greedy").dist == "openr-search"
    assert "squat-task" not in plugins.registry("tasks") and list(plugins.info) == ["search"]
    assert plugins.problems == ["plugin 'aaa' (aaa-squatter) is not loaded: its searcher 'greedy' is a name of "
                                "openr-search, and the project's own plugins keep theirs"]
    assert capsys.readouterr().err.strip() == f"openr: warning: {plugins.problems[0]}"
    with pytest.raises(PluginError, match=r"^plugin 'aaa' \(aaa-squatter\) is not loaded"):
        strict = Plugins(strict=True)
        strict.register(_module("squat2", SQUATTER), "aaa", dist="aaa-squatter")
        strict.register(_module("first2", FIRST_PARTY), "search", dist="openr-search")


def test_project_distributions_are_the_repositorys_own():
    names = {tomllib.loads(p.read_text())["project"]["name"] for p in REPO.glob("plugins/*/pyproject.toml")}
    names.add(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"])
    assert PROJECT_DISTRIBUTIONS == names


def _commands_plugin(*names: str, fail: bool = False, components: bool = True) -> types.ModuleType:
    module = types.ModuleType(f"openr_cmds_{'_'.join(names)}")

    @hookimpl
    def register_commands(cli):
        for name in names:
            cli.command(name)(lambda: print(f"plugin {name}"))
        if fail:
            raise SystemExit(1)

    @hookimpl
    def register_tasks(register):
        register(f"task-of-{'-'.join(names)}", "openr_nowhere.t:Task")

    module.register_commands = register_commands
    if components:
        module.register_tasks = register_tasks
    return module


@pytest.mark.parametrize("core_command", ["ls", "run", "validate", "plugins", "evaluate"])
def test_plugin_commands_cannot_replace_core_commands(install_plugins, new_plugins, invoke, core_command):
    plugins = install_plugins(new_plugins(strict=False))
    original = cli.commands[core_command]
    assert plugins.register(_commands_plugin("extra", core_command), "hijack", dist="hijack-dist")
    result = invoke("--help")
    assert result.exit_code == 0
    assert cli.commands[core_command] is original and "extra" not in cli.commands
    assert plugins.problems == [f"plugin 'hijack' (hijack-dist) is not loaded: its command '{core_command}' is taken by core"]
    assert "task-of-extra" not in plugins.registry("tasks") and "hijack" not in plugins.info


def test_plugin_commands_cannot_replace_another_plugins(install_plugins, new_plugins, invoke):
    plugins = install_plugins(new_plugins(strict=False))
    assert plugins.register(_commands_plugin("count"), "first", dist="first-dist")
    assert plugins.register(_commands_plugin("count", "other"), "second", dist="second-dist")
    result = invoke("count")
    assert result.exit_code == 0 and result.stdout == "plugin count\n"
    assert "other" not in cli.commands
    assert plugins.problems == ["plugin 'second' (second-dist) is not loaded: its command 'count' is taken by plugin 'first' (first-dist)"]


def test_first_party_commands_are_added_first(install_plugins, new_plugins, invoke):
    plugins = install_plugins(new_plugins(strict=False))
    assert plugins.register(_commands_plugin("scan", components=False), "aaa", dist="aaa-dist")
    assert plugins.register(_commands_plugin("scan"), "search", dist="openr-search")
    assert invoke("--help").exit_code == 0
    assert plugins.info["search"].commands == ["scan"] and "aaa" not in plugins.info
    assert plugins.problems == ["plugin 'aaa' (aaa-dist) is not loaded: its command 'scan' is taken by plugin 'search' (openr-search)"]


def test_failed_register_commands_leaves_no_command_and_no_component(install_plugins, new_plugins, invoke):
    plugins = install_plugins(new_plugins(strict=False))
    assert plugins.register(_commands_plugin("half", fail=True), "failing", dist="failing-dist")
    assert "task-of-half" in plugins.registry("tasks")  # registered before the commands ran
    result = invoke("--help")
    assert result.exit_code == 0 and "half" not in cli.commands
    assert plugins.problems == ["plugin 'failing' (failing-dist) failed in register_commands: SystemExit: it called sys.exit(1)"]
    assert "task-of-half" not in plugins.registry("tasks") and "failing" not in plugins.info


def test_run_start_marks_the_folder_it_creates(plugins, tmp_path):
    from openr_core.evaluation import EvaluateJob

    config = structure(EvaluateJob, {"job": "evaluate", "task": "tiny", "generator": "echo"}, Where("t.yaml"), plugins)
    Run.start(config, tmp_path / "new")
    assert json.loads((tmp_path / "new" / MARKER_FILE).read_text()) == {"written_by": "openr"}


def test_an_entry_point_name_taken_by_another_distribution_is_reported(fake_dists, capsys):
    fake_dists.add("openr-search", "search", FIRST_PARTY)
    fake_dists.add("aaa-other", "search", SQUATTER)  # the same entry-point name, another distribution
    plugins = Plugins(strict=False).load_entry_points()
    assert plugins.info["search"].dist == "openr-search"
    assert plugins.problems == ["plugin 'search' (aaa-other) is not loaded: its entry-point name is taken by openr-search"]
    plugins.load_entry_points()  # loading again reports nothing new
    assert len(plugins.problems) == 1


def test_a_folder_given_as_config_is_one_line(plugins, invoke, tmp_path):
    for command in ("validate", "run", "evaluate"):
        assert _one_line_error(invoke(command, str(tmp_path))) == f"{tmp_path}: is a folder, not a config file"


def test_adding_commands_again_replaces_a_plugins_own(install_plugins, new_plugins, invoke):
    plugins = install_plugins(new_plugins(strict=True))
    assert plugins.register(_commands_plugin("count"), "counting", dist="counting-dist")
    plugins.add_commands(cli)
    plugins.add_commands(cli)  # e.g. the CLI re-adds plugin commands: not a collision with itself
    assert plugins.problems == [] and plugins.info["counting"].commands == ["count"]
    assert invoke("count").stdout == "plugin count\n"


def test_null_for_a_required_or_defaulted_component_section_is_one_line(plugins, invoke, write_config):
    assert plugins.register(FallbackPlugin(), "fallback")
    config = write_config("job: evaluate\ntask: null\ngenerator: echo\n")
    assert _one_line_error(invoke("validate", config)) == f"{config}: task: a task section is required, got null"
    config = write_config("job: evaluate\ntask: tiny\ngenerator: {type: fallback, primary: null, fallback: null}\n")
    assert _one_line_error(invoke("validate", config)) == (
        f"{config}: generator.primary: a generator section is required, got null")
