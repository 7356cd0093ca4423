"""Launchers: where a problem-parallel job computes its batches (one process, or Ray workers).

The problem-parallel jobs (``search``, ``label``, ``label-compare``, ``evaluate``, ``eval-prm``)
share one loop, :func:`for_each_batch`: *for each batch of problems, compute its records, write
them*. ``compute(run, batch)`` is a picklable function of a run (its config and lazily built
components) and a batch; ``write(result)`` runs in the driver, in batch order, so the resumable
JSONL files come out in the same order whoever computed them. The launcher decides where
``compute`` runs: ``local`` (the default, no ``launcher:`` key) in this process, ``ray`` on Ray
actors that build their components once (docs/scaling.md). A plugin adds more with the
``register_launchers`` hook.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from openr_core.interfaces import Component

if TYPE_CHECKING:
    from openr_core.runs import Run

Compute = Callable[["Run", list], Any]


class Launcher(Component):
    """Runs ``compute(run, batch)`` for each batch and yields the results in batch order.

    A launcher is built once per run (``launcher:`` in a job config) and closed with it, so an
    implementation may keep workers alive across the run's several loops (e.g. one per searcher).
    ``compute`` and the batches are picklable; ``compute`` must not depend on which worker runs it.
    """

    def map(self, run: Run, compute: Compute, batches: Sequence[list]) -> Iterator[Any]:
        raise NotImplementedError


class LocalLauncher(Launcher):
    """Computes every batch in this process, one after the other (the default)."""

    def map(self, run: Run, compute: Compute, batches: Sequence[list]) -> Iterator[Any]:
        for batch in batches:
            yield compute(run, batch)


BUILTIN = (("local", "openr_core.launchers:LocalLauncher"), ("ray", "openr_core.ray_launcher:RayLauncher"))


def chunks(items: Sequence, size: int) -> list[list]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def launcher_of(run: Run) -> Launcher:
    """The run's launcher (its config's ``launcher:``, default local), built once per run."""
    spec = getattr(run.config, "launcher", None)
    return run.build(spec) if spec is not None else LocalLauncher()


def for_each_batch(run: Run, batches: Sequence[list], compute: Compute, write: Callable[[Any], Any], *,
                   label: str, total: int | None = None) -> None:
    """``write(compute(run, batch))`` for each batch, in order, on the run's launcher.

    One progress bar of ``total`` items (default: the batches' items); items not in ``batches``
    count as done already (resumed)."""
    todo = sum(len(b) for b in batches)
    total = todo if total is None else total
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        bar.update(total - todo)
        if not batches:
            return
        for batch, result in zip(batches, launcher_of(run).map(run, compute, batches)):
            write(result)
            bar.update(len(batch))


def component_specs(config: Any) -> Iterable:
    """Every component spec in a job config except its launcher (what a worker builds)."""
    import attrs

    from openr_core.config import COMPONENT

    for field in attrs.fields(type(config)):
        kind = field.metadata.get(COMPONENT)
        value = getattr(config, field.name)
        if not kind or kind == "launcher" or value is None:
            continue
        yield from value if field.metadata.get("many") else [value]
