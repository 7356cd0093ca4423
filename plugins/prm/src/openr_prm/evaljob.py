"""The ``eval-prm`` job: ProcessBench-style F1, step AUROC and Best-of-N for any reward model.

Data: ``data`` files (``format``: processbench, openr, trl, math-shepherd, prm800k; the subset
name is the file's stem), or the run's labeler applied to ``problems`` problems of the task's
``split`` (e.g. the arith policy's own sampled solutions with exact labels). Scores are written
per example to ``results.jsonl`` as they are computed, so a killed run resumes.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import attrs
import click

from openr_core.config import component
from openr_core.jobs import BatchJobConfig
from openr_core.launchers import chunks, for_each_batch
from openr_core.labelling import label_problems, read_labels
from openr_core.runs import Run
from openr_core.types import LabelledExample, Problem, ScoreRequest
from openr_prm import metrics
from openr_prm.data import load_stepwise


@attrs.frozen(kw_only=True)
class EvalPRMJob(BatchJobConfig):
    """Evaluate a reward model: ProcessBench F1 per subset, step AUROC, Best-of-N."""

    reward_model: Any = component("reward_model")
    data: list[str] = attrs.field(factory=list)
    format: str = "processbench"
    limit: int | None = None
    task: Any = component("task", optional=True)
    generator: Any = component("generator", optional=True)
    labeler: Any = component("labeler", optional=True)
    split: str = "test"
    problems: int = 300
    threshold: float | None = 0.5
    dev_data: list[str] = attrs.field(factory=list)
    dev_split: str = "dev"
    dev_problems: int = 200
    reducer: str = "min"
    batch_size: int = 64


def subsets(config: EvalPRMJob, run: Run, dev: bool = False) -> dict[str, list[LabelledExample]]:
    files = config.dev_data if dev else config.data
    if files:
        return {Path(f).stem: load_stepwise(f, config.format, config.limit) for f in files}
    if run.task is None or run.component("labeler") is None:
        if dev:
            return {}
        raise click.UsageError("eval-prm: set `data:` or give `task:`, `labeler:` (and `generator:`)")
    split, n = (config.dev_split, config.dev_problems) if dev else (config.split, config.problems)
    labels = label_problems(run, run.task.load(split, n), config.batch_size, Path(run.output_dir) / "data" / split)
    return {split: read_labels(labels)}


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
    row["step_auroc"] = metrics.auroc(step_scores, positives)
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
        summary["tuned"] = {"threshold": threshold, "dev_f1": dev_f1}
    rows = []
    for name, examples in subsets(config, run).items():
        scores = score_all(run, name, examples, "results.jsonl", config.batch_size)
        rows.append(summarize(name, examples, scores, threshold, config.reducer))
    summary["threshold"] = threshold
    summary["subsets"] = rows
    summary["average_f1"] = sum(r["f1"] for r in rows) / len(rows) if rows else 0.0
    run.write_json("summary.json", summary)
    click.echo(format_table(rows, summary))
    return summary


def format_table(rows: list[dict], summary: dict) -> str:
    cols = ["subset", "erroneous", "correct", "error_accuracy", "correct_accuracy", "f1", "step_auroc"]
    extra = sorted({k for r in rows for k in r if k.startswith("best_of_n") or k == "pass_at_n"})
    cols += extra
    lines = ["  ".join(f"{c:>16}" for c in cols)]
    for r in rows:
        lines.append("  ".join(f"{r.get(c, ''):>16.4f}" if isinstance(r.get(c), float) else f"{str(r.get(c, '')):>16}" for c in cols))
    lines.append(f"threshold {summary['threshold']:.4g}   average F1 {summary['average_f1']:.4f}")
    return "\n".join(lines)
