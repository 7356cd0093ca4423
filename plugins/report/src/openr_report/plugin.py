"""Entry point of openr-report: the ``openr report RUN_DIR`` command."""

import click

from openr_core import hookimpl


@click.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def report(run_dir):
    """Write RUN_DIR/report.html: one self-contained page (search trees, PRM metrics, labels, curves)."""
    from openr_report.render import write_report

    click.echo(f"wrote {write_report(run_dir)}")


@hookimpl
def register_commands(cli):
    cli.add_command(report)
