"""The ``label`` job: run a Labeler over a task split and write a stepwise dataset.

``labels.jsonl`` holds one :class:`LabelledExample` per line (``prompt``, ``completions``,
``labels``, ``soft_labels``, ``problem_id``, ``meta``) plus an ``id``; it loads with
``datasets.load_dataset("json", ...)`` and with the PRM trainer. Problems are labelled in
batches; after each batch its examples and then its problem ids (``labelled_problems.jsonl``)
are appended, so a killed run resumes at the next batch without duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import click

from openr_core.config import component, count
from openr_core.jobs import BatchJobConfig
from openr_core.launchers import chunks, for_each_batch
from openr_core.runs import JsonlResults, Run
from openr_core.stepwise import read_example
from openr_core.types import LabelledExample, Problem, to_dict

LABELS_FILE = "labels.jsonl"


@attrs.frozen(kw_only=True)
class LabelJob(BatchJobConfig):
    """Label solutions of a task split with a registered labeller."""

    task: Any = component("task")
    labeler: Any = component("labeler")
    generator: Any = component("generator", optional=True)
    split: str = "train"
    limit: int | None = count(None)
    batch_size: int = count(64)


def label_batch(run: Run, batch: list[Problem]) -> tuple[list[dict], list[dict]]:
    """One batch's labelled examples (ids ``<problem id>/<k>``) and its problem ids."""
    counts: dict[str, int] = {}
    records = []
    for example in run.labeler.label(batch, task=run.task, generator=run.generator):
        pid = example.problem_id or "?"
        counts[pid] = counts.get(pid, 0) + 1
        records.append({"id": f"{pid}/{counts[pid] - 1}", **to_dict(example)})
    return records, [{"id": p.id} for p in batch]


def label_problems(run: Run, problems: Sequence[Problem], batch_size: int, folder: Path | None = None) -> JsonlResults:
    """Label ``problems`` with the run's labeler into ``folder`` (default: the run's output folder)."""
    folder = Path(folder or run.output_dir)
    labels = JsonlResults(folder / LABELS_FILE)
    done = JsonlResults(folder / "labelled_problems.jsonl")
    todo = [p for p in problems if p.id not in done]

    def write(result: tuple[list[dict], list[dict]]) -> None:
        labels.append(result[0])
        done.append(result[1])

    for_each_batch(run, chunks(todo, batch_size), label_batch, write, label="label", total=len(problems))
    return labels


def first_error_labels(verdicts: Sequence[bool]) -> list[bool]:
    """Step labels from per-step verdicts: steps before the first wrong one are good; the wrong
    one and every later step are bad (the PRM convention of Math-Shepherd and ProcessBench)."""
    labels, ok = [], True
    for verdict in verdicts:
        ok = ok and bool(verdict)
        labels.append(ok)
    return labels


def read_labels(records: Iterable[dict], source: str | None = None) -> list[LabelledExample]:
    """The examples of ``labels.jsonl`` records (a :class:`JsonlResults` names its file itself),
    each field checked: a hand-edited or damaged record is one DataError line naming it."""
    source = source or str(getattr(records, "path", "labels"))
    return [read_example(r, f"{source}: record {r['id']!r}" if "id" in r else f"{source}: record {i}")
            for i, r in enumerate(records)]


def run_label(config: LabelJob, run: Run) -> None:
    """Label solutions of a task split; writes labels.jsonl (resumable) and a summary."""
    problems = run.task.load(config.split, config.limit)
    labels = label_problems(run, problems, config.batch_size)
    ids = {p.id for p in problems}  # a run resumed with a smaller limit summarises its own problems
    examples = [e for e in read_labels(labels) if e.problem_id is None or e.problem_id in ids]
    steps = sum(len(e.labels) for e in examples)
    summary = {"problems": len(problems), "examples": len(examples), "steps": steps,
               "good_steps": sum(sum(e.labels) for e in examples),
               "correct_solutions": sum(e.first_error == -1 for e in examples)}
    run.write_json("summary.json", summary)
    click.echo(" ".join(f"{k}={v}" for k, v in summary.items()))
