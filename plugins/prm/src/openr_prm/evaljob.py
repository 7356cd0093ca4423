"""The ``eval-prm`` job: ProcessBench-style F1, step AUROC and Best-of-N for any reward model.

Data: ``data`` files (``format``: processbench, openr, trl, math-shepherd, prm800k; the subset
name is the file's stem, with parent folders prepended while two stems collide), or the run's labeler applied to ``problems`` problems of the task's
``split`` (e.g. the arith policy's own sampled solutions with exact labels). Scores are written
per example to ``results.jsonl`` as they are computed, so a killed run resumes.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import attrs
import click

from openr_core.config import component, count
from openr_core.errors import DataError
from openr_core.jobs import BatchJobConfig
from openr_core.launchers import chunks, for_each_batch
from openr_core.labelling import label_problems, read_labels
from openr_core.runs import Run
from openr_core.types import LabelledExample, Problem, ScoreRequest
from openr_prm import metrics
from openr_prm.data import Format, load_stepwise


@attrs.frozen(kw_only=True)
class EvalPRMJob(BatchJobConfig):
    """Evaluate a reward model: ProcessBench F1 per subset, step AUROC, Best-of-N."""

    reward_model: Any = component("reward_model")
    data: list[str] = attrs.field(factory=list)
    format: Format = "processbench"
    limit: int | None = count(None)
    task: Any = component("task", optional=True)
    generator: Any = component("generator", optional=True)
    labeler: Any = component("labeler", optional=True)
    split: str = "test"
    problems: int = count(300)
    threshold: float | None = 0.5
    dev_data: list[str] = attrs.field(factory=list)
    dev_split: str = "dev"
    dev_problems: int = count(200, minimum=0)
    reducer: str = "min"
    batch_size: int = count(64)


def subsets(config: EvalPRMJob, run: Run, dev: bool = False) -> dict[str, list[LabelledExample]]:
    files = config.dev_data if dev else config.data
    if files:
        return {name: load_stepwise(f, config.format, config.limit) for name, f in subset_names(files).items()}
    if run.task is None or run.component("labeler") is None:
        if dev:
            return {}
        raise click.UsageError("eval-prm: set `data:` or give `task:`, `labeler:` (and `generator:`)")
    split, n = (config.dev_split, config.dev_problems) if dev else (config.split, config.problems)
    labels = label_problems(run, run.task.load(split, n), config.batch_size, Path(run.output_dir) / "data" / split)
    return {split: read_labels(labels)}


def subset_names(files: list[str]) -> dict[str, str]:
    """``{subset name: file}``: each file's stem; stems that collide get parent folders prepended
    until every name is unique (``a/math.json``, ``b/math.json`` -> ``a/math``, ``b/math``)."""
    paths = [Path(f).with_suffix("") for f in files]
    if len({Path(f).resolve() for f in files}) < len(files):
        twice = next(f for i, f in enumerate(files) if Path(f).resolve() in {Path(g).resolve() for g in files[:i]})
        raise DataError(f"{twice}: listed twice in data")
    depth, whole = [1] * len(files), [False] * len(files)
    while True:
        names = [f if w else "/".join(p.parts[-d:]) for p, d, w, f in zip(paths, depth, whole, files)]
        clashing = [i for i, name in enumerate(names) if names.count(name) > 1]
        if not clashing:
            return dict(zip(names, files))
        growing = [i for i in clashing if depth[i] < len(paths[i].parts)]
        for i in growing or clashing:  # one folder more; at the top, the file as given (math.json vs .jsonl)
            if growing:
                depth[i] += 1
            else:
                whole[i] = True


def score_batch(subset: str, run: Run, batch: list[tuple[str, LabelledExample]]) -> list[dict]:
    """The run's reward model on one batch of ``(id, example)``: one record of step scores each."""
    requests = [ScoreRequest(Problem(e.problem_id or key, e.prompt), e.completions) for key, e in batch]
    scored = run.reward_model.score(requests)
    return [{"id": key, "subset": subset, "scores": list(s.scores), "first_error": e.first_error,
             "outcome": e.meta.get("outcome"), "problem_id": e.problem_id, "tokens": s.n_tokens}
            for (key, e), s in zip(batch, scored)]


def score_all(run: Run, name: str, examples: list[LabelledExample], results_name: str, batch_size: int) -> list[list[float]]:
    results = run.results(results_name)
    ids = [f"{name}/{e.problem_id or i}/{i}" for i, e in enumerate(examples)]
    todo = [(key, e) for key, e in zip(ids, examples) if key not in results]
    for_each_batch(run, chunks(todo, batch_size), functools.partial(score_batch, name), results.append,
                   label=f"score {name}", total=len(examples))
    return [results.get(key)["scores"] for key in ids]


def summarize(name: str, examples: list[LabelledExample], scores: list[list[float]], threshold: float, reducer: str) -> dict:
    labels = [e.first_error for e in examples]
    row = {"subset": name, **metrics.processbench([metrics.predict_first_error(s, threshold) for s in scores], labels)}
    step_scores, positives = [], []
    for e, s in zip(examples, scores):
        last = len(s) if e.first_error == -1 else e.first_error + 1  # labels after the first error are unknown
        step_scores += s[:last]
        positives += list(e.labels[:last])
    auroc = metrics.auroc(step_scores, positives)
    row["step_auroc"] = None if math.isnan(auroc) else auroc  # None: no good or no bad steps
    groups: dict[str, list] = {}
    for e, s in zip(examples, scores):
        if e.problem_id is not None and "outcome" in e.meta:
            groups.setdefault(e.problem_id, []).append((s, bool(e.meta["outcome"])))
    groups = {k: g for k, g in groups.items() if len(g) > 1}
    if groups:
        row[f"best_of_n_{reducer}"] = metrics.best_of_n(list(groups.values()), reducer)
        row["pass_at_n"] = sum(any(ok for _, ok in g) for g in groups.values()) / len(groups)
        row["bon_problems"] = len(groups)
    return row


def run_eval_prm(config: EvalPRMJob, run: Run) -> dict:
    """Evaluate a reward model: ProcessBench F1 per subset, step AUROC, Best-of-N."""
    threshold = config.threshold
    summary: dict[str, Any] = {}
    if threshold is None:
        dev = subsets(config, run, dev=True)
        if not dev:
            raise click.UsageError("eval-prm: threshold: null (tune) needs dev_data or a task + labeler")
        dev_scores, dev_labels = [], []
        for name, examples in dev.items():
            dev_scores += score_all(run, name, examples, "dev_results.jsonl", config.batch_size)
            dev_labels += [e.first_error for e in examples]
        threshold, dev_f1 = metrics.tune_threshold(dev_scores, dev_labels)
        if threshold is None:
            raise DataError(f"eval-prm: cannot tune a threshold: the dev data has {sum(l == -1 for l in dev_labels)} "
                            f"correct and {sum(l != -1 for l in dev_labels)} erroneous samples (both are needed); "
                            "give more dev data or set `threshold`")
        summary["tuned"] = {"threshold": threshold, "dev_f1": dev_f1}
    rows = []
    for name, examples in subsets(config, run).items():
        scores = score_all(run, name, examples, "results.jsonl", config.batch_size)
        rows.append(summarize(name, examples, scores, threshold, config.reducer))
    summary["threshold"] = threshold
    summary["subsets"] = rows
    measured = [r["f1"] for r in rows if r["f1"] is not None]
    summary["average_f1"] = sum(measured) / len(measured) if measured else None  # over subsets with both classes
    run.write_json("summary.json", summary)
    click.echo(format_table(rows, summary))
    return summary


def format_table(rows: list[dict], summary: dict) -> str:
    cols = ["subset", "erroneous", "correct", "error_accuracy", "correct_accuracy", "f1", "step_auroc"]
    extra = sorted({k for r in rows for k in r if k.startswith("best_of_n") or k == "pass_at_n"})
    cols += extra
    lines = ["  ".join(f"{c:>16}" for c in cols)]
    for r in rows:
        lines.append("  ".join(f"{_cell(r.get(c, ''), c):>16}" for c in cols))
    average = _cell(summary["average_f1"], "f1")
    lines.append(f"threshold {summary['threshold']:.4g}   average F1 {average}")
    empty = [f"{r['subset']} ({'no correct samples' if not r['correct'] else 'no erroneous samples'})"
             for r in rows if r["f1"] is None]
    if empty:
        lines.append(f"n/a: not measured, a class is empty in {', '.join(empty)}")
    return "\n".join(lines)


def _cell(value: Any, column: str) -> str:
    """A table cell: floats to 4 places; a metric over an empty class (None) is "n/a", never 0."""
    if value is None and column != "subset":
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
