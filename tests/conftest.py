"""Shared fixtures for the core tests.

Every test that touches plugins gets a fresh :class:`openr_core.plugins.Plugins` installed with
``set_plugins`` and removed afterwards, so no test sees another's plugins (or the installed ones).
"""

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import attrs
import pytest
from click.testing import CliRunner

from openr_core import Completion, GenerationResult, Generator, Problem, Task, hookimpl
from openr_core import plugins as plugins_module
from openr_core.cli import cli
from openr_core.plugins import Plugins, set_plugins

OPENR_ENV = ("OPENR_STRICT_PLUGINS", "OPENR_PLUGINS", "OPENR_DISABLE_PLUGINS", "OPENR_DEBUG")


# -- components the in-process test plugin registers ----------------------------------------


@attrs.frozen
class Inner:
    depth: int = 1
    label: str = "x"


class EchoGenerator(Generator):
    """Returns the prompt's last line (test double)."""

    calls: list = []  # every batch of prompts, across instances (reset per test)
    crash_after: int | None = None  # raise on the call after this many, as if killed (reset per test)

    @attrs.frozen
    class Config:
        repeat: int = 1

    def generate(self, requests):
        if EchoGenerator.crash_after is not None and len(EchoGenerator.calls) >= EchoGenerator.crash_after:
            raise RuntimeError("killed")
        EchoGenerator.calls.append([r.prompt for r in requests])
        results = []
        for r in requests:
            text = "\n".join([r.prompt.splitlines()[-1]] * self.config.repeat)
            results.append(GenerationResult([Completion(text, len(text.split()))] * r.params.n, len(r.prompt.split())))
        return results


class RichGenerator(Generator):
    """A generator whose Config has every kind of field the validator knows."""

    @attrs.frozen
    class Config:
        model: str
        repeat: int = 1
        mode: Literal["greedy", "beam"] = "greedy"
        stop: list[str] = attrs.Factory(list)
        temperature: float = 0.0
        seed: int | None = None
        fast: bool = False
        nested: Inner = Inner()

    def generate(self, requests):
        raise NotImplementedError


class TinyTask(Task):
    """Problems 'say N' whose answer is N; the answer is the last line's text."""

    @attrs.frozen
    class Config:
        size: int = 4

    def load(self, split: str, limit: int | None = None) -> list[Problem]:
        count = self.config.size if limit is None else min(limit, self.config.size)
        # the prompt's last line is the answer for even i and 'wrong' for odd i
        return [Problem(f"p{i}", f"say {i}", str(i), {"last": str(i) if i % 2 == 0 else "wrong"}) for i in range(count)]

    def prompt(self, problem: Problem) -> str:
        return f"{problem.question}\n{problem.meta['last']}"

    def extract_answer(self, text: str) -> str | None:
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1].strip() if lines else None


class CorePlugin:
    """The in-process plugin most tests use (distribution name 'core-tests')."""

    @hookimpl
    def register_generators(self, register):
        register("echo", EchoGenerator)
        register("rich", RichGenerator, doc="Every field type.")

    @hookimpl
    def register_tasks(self, register):
        register("tiny", TinyTask)


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No OPENR_* variable from the caller's shell (CI sets OPENR_STRICT_PLUGINS=1) leaks into a test."""
    for name in OPENR_ENV:
        monkeypatch.delenv(name, raising=False)
    EchoGenerator.calls.clear()
    EchoGenerator.crash_after = None


@pytest.fixture
def install_plugins():
    """``install_plugins(plugins)`` makes ``plugins`` the process-wide one; everything is restored after.

    It also resets the CLI's plugin commands, so commands added by one test's plugins vanish.
    """
    saved_plugins = plugins_module._plugins
    saved_commands = dict(cli.commands)
    saved_added = cli.__dict__.get("_plugin_commands_added")

    def install(plugins: Plugins) -> Plugins:
        set_plugins(plugins)
        cli.commands.clear()
        cli.commands.update(saved_commands)
        cli._plugin_commands_added = False
        return plugins

    yield install
    set_plugins(saved_plugins)
    cli.commands.clear()
    cli.commands.update(saved_commands)
    if saved_added is None:
        cli.__dict__.pop("_plugin_commands_added", None)
    else:
        cli._plugin_commands_added = saved_added


@pytest.fixture
def new_plugins():
    """``new_plugins(strict=True, core=True)``: a fresh Plugins (not installed), with CorePlugin when ``core``."""

    def make(strict: bool = True, core: bool = True) -> Plugins:
        loaded = Plugins(strict=strict)
        if core:
            assert loaded.register(CorePlugin(), "core", dist="core-tests", version="1.0")
        return loaded

    return make


@pytest.fixture
def plugins(install_plugins, new_plugins) -> Plugins:
    """Fresh strict plugins holding only the in-process CorePlugin, installed process-wide."""
    return install_plugins(new_plugins())


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner):
    """``invoke(*args)``: run ``openr ARGS`` in-process; returns click's Result (stdout/stderr apart)."""

    def call(*args: str, **kwargs):
        return runner.invoke(cli, list(args), **kwargs)

    return call


@pytest.fixture
def write_config(tmp_path):
    """``write_config(text, name="c.yaml")`` writes a dedented YAML file and returns its path (str)."""

    def write(text: str, name: str = "c.yaml") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return str(path)

    return write


@attrs.define
class FakeDists:
    """Plugin distributions made of a ``*.dist-info`` folder and a module, in one folder."""

    root: Path
    modules: list[str] = attrs.Factory(list)

    def add(self, dist: str, entry_point: str, source: str, version: str = "1.0", module: str | None = None) -> str:
        """Add distribution ``dist`` whose entry point ``entry_point`` names a new module with ``source``.

        Returns the module's (unique) name.
        """
        module = module or f"openr_fake_{entry_point}_{uuid.uuid4().hex[:8]}"
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[openr]\n{entry_point} = {module}\n")
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        self.modules.append(module)
        return module

    def entry_points(self, group: str):
        """What importlib.metadata.entry_points(group=...) would return if only these were installed."""
        from importlib.metadata import distributions

        return [ep for d in distributions(path=[str(self.root)]) for ep in d.entry_points if ep.group == group]


@pytest.fixture
def fake_dists(tmp_path, monkeypatch) -> FakeDists:
    """Fake installed plugin distributions: only these are seen by ``Plugins.load_entry_points``."""
    root = tmp_path / "site"
    root.mkdir()
    dists = FakeDists(root)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(plugins_module, "entry_points", lambda group: dists.entry_points(group))
    yield dists
    for module in dists.modules:
        sys.modules.pop(module, None)


def run_openr(args: Sequence[str], *, env: dict | None = None, pythonpath: Sequence[str] = (), cwd=None, check_rc=None):
    """Run ``openr ARGS`` in a fresh interpreter (the venv's), with extra PYTHONPATH entries."""
    full_env = {k: v for k, v in os.environ.items() if k not in OPENR_ENV and k != "PYTHONPATH"}
    if pythonpath:
        full_env["PYTHONPATH"] = os.pathsep.join(map(str, pythonpath))
    full_env.update(env or {})
    code = "import sys; from openr_core.cli import main; sys.argv[0] = 'openr'; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=60
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture
def openr_subprocess():
    return run_openr

