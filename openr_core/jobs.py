"""Jobs: config-driven commands (``openr run CONFIG`` dispatches on the config's ``job`` key).

A job is a click command made by :func:`job_command` from an attrs config class and a runner
``runner(config, run) -> None``. Core ships ``evaluate`` and ``train``; plugins add more
(``search``, ``label``, ...) from their ``register_commands(cli)`` hook.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import click

from openr_core.config import Where, apply_overrides, component, read_yaml, structure
from openr_core.errors import ConfigError
from openr_core.plugins import get_plugins
from openr_core.runs import WRITE_ERRNOS, Run, output_error


@attrs.frozen(kw_only=True)
class JobConfig:
    """Keys every job config has."""

    job: str = ""
    seed: int = 0
    output_dir: str | None = None


@attrs.frozen(kw_only=True)
class BatchJobConfig(JobConfig):
    """Keys of the problem-parallel jobs (search, label, evaluate, ...): where their batches run."""

    launcher: Any = component("launcher", optional=True)


@attrs.frozen
class Job:
    name: str
    config_class: type
    runner: Callable[[Any, Run], Any]
    help: str = ""


def find_job(cli: click.Group, ctx: click.Context, name: str) -> Job:
    command = cli.get_command(ctx, name) if name else None
    job = getattr(command, "openr_job", None)
    if job is None:
        jobs = sorted(n for n in cli.list_commands(ctx) if getattr(cli.get_command(ctx, n), "openr_job", None))
        raise ConfigError(f"job: unknown job {name!r}; available jobs: {', '.join(jobs)}")
    return job


def load_job_config(path: str, overrides: tuple[str, ...], job: Job | None, ctx: click.Context) -> tuple[Job, Any]:
    """Read, override and validate ``path``; ``job`` None means: take it from the file's ``job`` key."""
    raw = apply_overrides(read_yaml(path), overrides)
    named = raw.get("job")
    if named is not None and not isinstance(named, str):
        raise ConfigError(f"{path}: job: expected a job name (a string), got {named!r}")
    if job is None:
        if not named:
            raise ConfigError(f"{path}: job: required key is missing (which job runs this config)")
        try:
            job = find_job(ctx.find_root().command, ctx, named)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    elif named and named != job.name:
        raise ConfigError(f"{path}: job: this config is for '{named}', not '{job.name}'")
    raw["job"] = job.name
    return job, structure(job.config_class, raw, Where(str(path)), get_plugins())


def execute(job: Job, config: Any, config_path: str, output: str | None, fresh: bool) -> Run:
    output_dir = output or config.output_dir or str(Path("runs") / Path(config_path).stem)
    run = Run.start(config, output_dir, fresh=fresh)
    click.echo(f"openr: {job.name} → {run.output_dir}", err=True)
    try:
        job.runner(config, run)
    except OSError as e:  # a checkpoint, plot or log the job writes itself: the same one line
        if e.errno not in WRITE_ERRNOS:
            raise
        raise output_error(e, e.filename or run.output_dir) from None
    finally:
        run.close()
    return run


def run_options(f):
    f = click.option("--fresh", is_flag=True, help="Delete the output folder first instead of resuming.")(f)
    f = click.option("--output", "-o", type=click.Path(), help="Output folder (default: config's output_dir, else runs/<config name>).")(f)
    f = click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a config value; applied after the file, in order.")(f)
    return click.argument("config", type=click.Path())(f)


def job_command(name: str, config_class: type, runner: Callable[[Any, Run], Any], help: str = "") -> click.Command:
    """A click command ``openr NAME CONFIG [--set ...] [--output DIR] [--fresh]`` running a job."""
    job = Job(name, config_class, runner, help)

    @click.command(name=name, help=help or (runner.__doc__ or "").strip())
    @run_options
    @click.pass_context
    def command(ctx, config, overrides, output, fresh):
        _, cfg = load_job_config(config, overrides, job, ctx)
        execute(job, cfg, config, output, fresh)

    command.openr_job = job
    return command


# -- train -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TrainJob(JobConfig):
    """Train a model with a registered trainer; collaborators are available to it through the run."""

    trainer: Any = component("trainer")
    task: Any = component("task", optional=True)
    generator: Any = component("generator", optional=True)
    reward_model: Any = component("reward_model", optional=True)
    labeler: Any = component("labeler", optional=True)


def run_train(config: TrainJob, run: Run) -> None:
    """Train a model (trainer, and optionally task/generator/reward_model, from the config)."""
    trainer = run.build(config.trainer)
    path = trainer.train(run)
    click.echo(f"final checkpoint: {path}")
