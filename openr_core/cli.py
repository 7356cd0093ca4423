"""The ``openr`` command line. Plugins load when it starts; errors print as one line."""

from __future__ import annotations

import json
import os
import sys

import click

from openr_core.config import dump_yaml, unstructure
from openr_core.errors import ConfigError, OpenrError
from openr_core.evaluation import EvaluateJob, run_evaluate
from openr_core.labelling import LabelJob, run_label
from openr_core.jobs import TrainJob, execute, job_command, load_job_config, run_options, run_train
from openr_core.plugins import PLUGIN_ATTRIBUTE, get_plugins
from openr_core.registry import KINDS


def one_line(message: str) -> str:
    """``message`` with every line break or control character escaped (a value may hold them)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


class OpenrGroup(click.Group):
    """A click group that adds plugin commands on first use and turns OpenrError into one line."""

    _plugin_commands_added = False
    _commands_from = None  # the Plugins object whose commands are added

    def _add_plugin_commands(self) -> None:
        plugins = get_plugins()
        if self._plugin_commands_added and self._commands_from is plugins:
            return
        for name in [n for n, c in self.commands.items() if getattr(c, PLUGIN_ATTRIBUTE, None)]:
            self.commands.pop(name)  # another plugins object's commands
        self._plugin_commands_added = True
        self._commands_from = plugins
        plugins.add_commands(self)

    def list_commands(self, ctx):
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        self._add_plugin_commands()
        return super().get_command(ctx, name)

    def main(self, args=None, *rest, **kwargs):
        argv = list(args) if args is not None else sys.argv[1:]
        try:
            return super().main(argv, *rest, **kwargs)
        except OpenrError as e:
            if "--debug" in argv or os.environ.get("OPENR_DEBUG"):
                raise
            click.echo(f"openr: error: {one_line(str(e))}", err=True)
            sys.exit(2 if isinstance(e, ConfigError) else 1)


@click.group(cls=OpenrGroup)
@click.version_option(package_name="openr-core")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug):
    """openr: process reward models, PRM-guided search, process labels and RL with process rewards."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json):
    """List installed plugin distributions, versions and the components they register."""
    loaded = get_plugins()
    rows = [
        {"name": i.name, "distribution": i.dist, "version": i.version, "components": i.components, "hooks": i.hooks}
        for i in sorted(loaded.info.values(), key=lambda i: i.name)
    ]
    if as_json:
        click.echo(json.dumps({"plugins": rows, "problems": loaded.problems}, indent=2))
        return
    if not rows:
        click.echo("no plugins installed")
    for row in rows:
        click.echo(f"{row['distribution']} {row['version']}  (entry point '{row['name']}')")
        for kind, names in sorted(row["components"].items()):
            click.echo(f"  {kind}: {', '.join(sorted(names))}")
        if "register_commands" in row["hooks"]:
            click.echo("  commands: yes")
    for problem in loaded.problems:
        click.echo(f"broken: {problem}")


@cli.command("ls")
@click.argument("kind", required=False, type=click.Choice(list(KINDS)))
def ls(kind):
    """List registered components (all kinds, or one) with their one-line docs."""
    loaded = get_plugins()
    for kind_name in [kind] if kind else list(KINDS):
        registry = loaded.registry(kind_name)
        click.echo(f"{kind_name}:")
        if not len(registry):
            click.echo("  (none)")
        width = max((len(e.name) for e in registry), default=0)
        for entry in registry:
            click.echo(f"  {entry.name:<{width}}  {entry.summary}  [{entry.dist}]")


@cli.command()
@click.argument("config", type=click.Path())
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a config value.")
@click.option("--show", is_flag=True, help="Print the fully resolved config.")
@click.pass_context
def validate(ctx, config, overrides, show):
    """Resolve every component of CONFIG and check every parameter (loads no model)."""
    job, cfg = load_job_config(config, overrides, None, ctx)
    if show:
        click.echo(dump_yaml(unstructure(cfg)), nl=False)
    else:
        click.echo(f"{config}: ok ({job.name})")


@cli.command("run")
@run_options
@click.pass_context
def run_command(ctx, config, overrides, output, fresh):
    """Run CONFIG with the job its `job:` key names (evaluate, train, search, ...)."""
    job, cfg = load_job_config(config, overrides, None, ctx)
    execute(job, cfg, config, output, fresh)


cli.add_command(job_command("evaluate", EvaluateJob, run_evaluate))
cli.add_command(job_command("train", TrainJob, run_train))
cli.add_command(job_command("label", LabelJob, run_label))


def main() -> None:
    cli()
