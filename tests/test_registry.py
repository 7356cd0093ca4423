"""Registries: names, duplicates, unknown names, distributions and lazy targets."""

import sys

import pytest

from openr_core import PluginError, RegistryError, hookimpl
from openr_core.errors import DuplicateComponentError, UnknownComponentError
from openr_core.plugins import Plugins
from openr_core.registry import KINDS, Registry


class PluginA:
    @hookimpl
    def register_generators(self, register):
        register("echo", "openr_a.echo:Echo", doc="A's echo.")
        register("only-a", "openr_a.other:Other", doc="Only in A.")


class PluginOnlyA:
    @hookimpl
    def register_generators(self, register):
        register("only-a", "openr_a.other:Other", doc="Only in A.")


class PluginB:
    @hookimpl
    def register_generators(self, register):
        register("echo", "openr_b.echo:Echo", doc="B's echo.")

    @hookimpl
    def register_tasks(self, register):
        register("b-task", "openr_b.task:Task", doc="B's task.")


def test_duplicate_name_in_strict_mode_names_both_distributions():
    plugins = Plugins(strict=True)
    assert plugins.register(PluginA(), "a", dist="openr-a")
    with pytest.raises(PluginError) as info:
        plugins.register(PluginB(), "b", dist="openr-b")
    message = str(info.value)
    assert "generator 'echo' is registered by both openr-a and openr-b" in message
    assert "\n" not in message


def test_duplicate_name_not_strict_reports_one_line_and_keeps_the_first(capsys):
    plugins = Plugins(strict=False)
    assert plugins.register(PluginA(), "a", dist="openr-a")
    assert not plugins.register(PluginB(), "b", dist="openr-b")
    assert len(plugins.problems) == 1
    assert "openr-a and openr-b" in plugins.problems[0]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("openr: warning: plugin 'b' (openr-b) failed in a hook: DuplicateComponentError")
    # the first registration stays, and nothing of the rejected plugin remains
    assert plugins.entry("generator", "echo").dist == "openr-a"
    assert "b-task" not in plugins.registry("tasks")
    assert "b" not in plugins.info and "a" in plugins.info


def test_registry_add_duplicate_and_bad_targets():
    registry = Registry(KINDS["generators"])
    registry.add("echo", "m:C", "dist-1")
    with pytest.raises(DuplicateComponentError, match="'echo' is registered by both dist-1 and dist-2"):
        registry.add("echo", "m:D", "dist-2")
    with pytest.raises(RegistryError, match=r"target must be a class or 'module:Class', got 42"):
        registry.add("x", 42, "dist-1")
    with pytest.raises(RegistryError, match=r"target must be a class or 'module:Class', got 'no_colon'"):
        registry.add("x", "no_colon", "dist-1")
    with pytest.raises(RegistryError, match="name must be a non-empty string"):
        registry.add("", "m:C", "dist-1")


def test_unknown_name_suggests_close_names_and_lists_available(plugins):
    with pytest.raises(UnknownComponentError) as info:
        plugins.entry("generator", "ehco")
    message = str(info.value)
    assert message == "unknown generator 'ehco'. Did you mean: echo? Available: echo, rich"
    assert isinstance(info.value, KeyError)  # and still a KeyError for dict-like callers


def test_unknown_name_without_close_match_or_without_any():
    plugins = Plugins(strict=True)
    plugins.register(PluginA(), "a", dist="openr-a")
    with pytest.raises(UnknownComponentError) as info:
        plugins.entry("generator", "zzzzzz")
    assert "Did you mean" not in str(info.value)
    assert "Available: echo, only-a" in str(info.value)
    with pytest.raises(UnknownComponentError, match=r"Available: none \(is the plugin installed\?\)"):
        plugins.entry("reward_model", "prm")


def test_entry_knows_its_distribution_and_plugin_info(new_plugins):
    plugins = new_plugins()
    assert plugins.register(PluginOnlyA(), "a", dist="openr-a", version="2.3")
    entry = plugins.entry("generator", "only-a")
    assert entry.dist == "openr-a"
    assert (entry.name, entry.kind.key, entry.target) == ("only-a", "generator", "openr_a.other:Other")
    assert plugins.entry("task", "tiny").dist == "core-tests"
    info = plugins.info["a"]
    assert (info.name, info.dist, info.version) == ("a", "openr-a", "2.3")
    assert info.components == {"generators": ["only-a"]}
    assert info.hooks == ["register_generators"]


def test_ls_shows_distribution(plugins, invoke):
    result = invoke("ls", "generators")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "generators:"
    assert any(line.split()[0] == "echo" and line.endswith("[core-tests]") for line in lines[1:])
    assert any("Every field type." in line for line in lines)


def test_lazy_target_is_not_imported_until_load(tmp_path, monkeypatch):
    module = "openr_lazy_probe_mod"
    (tmp_path / f"{module}.py").write_text(
        "from openr_core import Generator\n"
        "class Lazy(Generator):\n"
        "    'Imported on demand.'\n"
        "    def generate(self, requests):\n"
        "        return []\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    class LazyPlugin:
        @hookimpl
        def register_generators(self, register):
            register("lazy", f"{module}:Lazy", doc="Lazy one.")
            register("broken", "openr_no_such_module_anywhere:Thing", doc="Cannot import.")

    plugins = Plugins(strict=True)
    try:
        assert plugins.register(LazyPlugin(), "lazy", dist="openr-lazy")
        entry = plugins.entry("generator", "lazy")
        assert module not in sys.modules
        assert entry.summary == "Lazy one."  # a registered doc needs no import
        assert module not in sys.modules
        # a target that cannot be imported registers fine; only loading it fails
        broken = plugins.entry("generator", "broken")
        with pytest.raises(RegistryError) as info:
            broken.load()
        assert str(info.value) == (
            "generator 'broken' (from openr-lazy): cannot load 'openr_no_such_module_anywhere:Thing': "
            "ModuleNotFoundError: No module named 'openr_no_such_module_anywhere'"
        )
        cls = entry.load()
        assert module in sys.modules
        assert cls.__name__ == "Lazy" and entry.target is cls
    finally:
        sys.modules.pop(module, None)


def test_summary_without_doc_uses_class_docstring_and_reports_unloadable(plugins):
    assert plugins.entry("generator", "echo").summary == "Returns the prompt's last line (test double)."

    class Unloadable:
        @hookimpl
        def register_tasks(self, register):
            register("gone", "openr_no_such_module_anywhere:Task")

    assert plugins.register(Unloadable(), "gone", dist="openr-gone")
    summary = plugins.entry("task", "gone").summary
    assert summary.startswith("(unavailable: task 'gone' (from openr-gone): cannot load")


def test_load_rejects_wrong_base_class_and_module_errors(tmp_path, monkeypatch):
    module = "openr_raising_probe_mod"
    (tmp_path / f"{module}.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    class NotAGenerator:
        pass

    class Odd:
        @hookimpl
        def register_generators(self, register):
            register("odd", NotAGenerator)
            register("raises", f"{module}:X")

    plugins = Plugins(strict=True)
    try:
        plugins.register(Odd(), "odd", dist="openr-odd")
        with pytest.raises(RegistryError, match=r"generator 'odd' \(from openr-odd\): .* is not a subclass of openr_core.Generator"):
            plugins.entry("generator", "odd").load()
        with pytest.raises(RegistryError, match=r"cannot load 'openr_raising_probe_mod:X': RuntimeError: boom at import"):
            plugins.entry("generator", "raises").load()
    finally:
        sys.modules.pop(module, None)


def test_every_kind_has_its_hook_and_config_key():
    assert {k.key for k in KINDS.values()} == {"generator", "reward_model", "labeler", "searcher", "trainer", "task", "launcher"}
    for kind in KINDS.values():
        assert kind.hook == "register_" + kind.name.replace("-", "_")
