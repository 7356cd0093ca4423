"""The docs keep up with the code: every hook and command documented; CI runs the README's tests."""

import re
from pathlib import Path

import click
import pluggy
import pytest

from openr_core import hookspecs
from openr_core.cli import cli
from openr_core.plugins import PLUGIN_ATTRIBUTE

REPO = Path(__file__).resolve().parent.parent


def _headings(path: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]


def _hookspecs() -> dict[str, tuple[str, ...]]:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    specs = {}
    for name in dir(pm.hook):
        caller = getattr(pm.hook, name)
        spec = getattr(caller, "spec", None)
        if spec is not None:
            specs[name] = tuple(spec.argnames)
    return specs


def test_there_are_hookspecs():
    specs = _hookspecs()
    assert "register_generators" in specs and "register_commands" in specs
    assert len(specs) == 8


@pytest.mark.parametrize("name", sorted(_hookspecs()))
def test_every_hookspec_has_a_heading_with_its_signature(name):
    signature = f"{name}({', '.join(_hookspecs()[name])})"
    headings = _headings(REPO / "docs" / "plugins.md")
    assert any(signature in h.replace("`", "") for h in headings), f"docs/plugins.md needs a heading '## {signature}'"


# the core's own commands, whatever plugin commands earlier tests (in any order) left in the group
CORE_COMMANDS = sorted(n for n, c in cli.commands.items() if not getattr(c, PLUGIN_ATTRIBUTE, None))


def test_core_commands_include_the_basics():
    assert {"plugins", "ls", "validate", "run", "evaluate", "train"} <= set(CORE_COMMANDS)


@pytest.mark.parametrize("name", CORE_COMMANDS)
def test_every_core_command_and_option_is_in_cli_md(name):
    command = cli.commands[name]
    text = (REPO / "docs" / "cli.md").read_text()
    headings = _headings(REPO / "docs" / "cli.md")
    assert any(h.replace("`", "").startswith(f"openr {name}") for h in headings), f"docs/cli.md needs a heading 'openr {name}'"
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in text, f"docs/cli.md does not mention {opt} of openr {name}"


def test_cli_md_lists_global_options_and_exit_codes():
    text = (REPO / "docs" / "cli.md").read_text()
    for option in ("--debug", "--version", "--help"):
        assert option in text
    assert re.search(r"\b2\b.*config", text) and re.search(r"\b1\b", text)


def _fenced_command_lines(markdown: str) -> list[str]:
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.S | re.M)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_ci_runs_the_readmes_test_command():
    readme_lines = _fenced_command_lines((REPO / "README.md").read_text())
    assert len(readme_lines) >= 2
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip().startswith("bash scripts/setup.sh")]
    assert len(ci_lines) == 1, ci_lines
    assert readme_lines[1] == ci_lines[0]


def test_docs_link_the_example_plugin():
    example = REPO / "docs" / "examples" / "openr-example"
    assert (example / "pyproject.toml").is_file()
    assert "docs/examples/openr-example" in (REPO / "docs" / "plugins.md").read_text()
