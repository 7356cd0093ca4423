"""The ``eval-prm`` job: ProcessBench-style F1, recall per error type, step AUROC, Best-of-N and the
response-level ("Lessons of developing PRMs") evaluation for any reward model.

Data: ``data`` files (``format``: processbench, openr, trl, math-shepherd, prm800k; the subset
name is the file's stem, with parent folders prepended while two stems collide), or the run's labeler applied to ``problems`` problems of the task's
``split`` (e.g. the arith policy's own sampled solutions with exact labels). Scores are written
per example to ``results.jsonl`` as they are computed, so a killed run resumes; so are the
``response_level`` samples, scores and grades, per problem, to ``response_results.jsonl``.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Literal

import attrs
import click

from openr_core.config import component, count, number
from openr_core.errors import ConfigError, DataError
from openr_core.evaluation import stable_seed
from openr_core.jsonl import iter_lines, read_bytes
from openr_core.jobs import BatchJobConfig
from openr_core.launchers import chunks, for_each_batch
from openr_core.labelling import label_problems, read_labels
from openr_core.runs import Run
from openr_core.types import GenerationRequest, LabelledExample, Problem, SamplingParams, ScoreRequest
from openr_prm import metrics
from openr_prm.data import Format, load_stepwise


@attrs.frozen(kw_only=True)
class ResponseLevel:
    """Best-of-n and PRM-weighted-vote accuracy over ``n`` sampled solutions per problem of the
    job's ``split`` (its first ``problems``; default the job's): drawn from the run's generator at
    ``temperature``, or read from ``samples``, a JSON Lines file of ``{"id": PROBLEM_ID, "texts":
    [SOLUTION, ...]}`` (an earlier run's ``response_results.jsonl`` is one), so another reward
    model can be measured on exactly the same solutions."""

    n: int = count(8)
    problems: int | None = count(None)
    temperature: float = number(1.0, minimum=0)
    max_tokens: int = count(96)
    samples: str | None = None


@attrs.frozen(kw_only=True)
class EvalPRMJob(BatchJobConfig):
    """Evaluate a reward model: ProcessBench F1 and recall per error type per subset, step AUROC,
    Best-of-N; with ``response_level``, best-of-n and weighted-vote accuracy over the policy's samples."""

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
    reducer: Literal["min", "last", "mean", "product"] = "min"
    batch_size: int = count(64)
    response_level: ResponseLevel | None = None


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
    """The run's reward model on one batch of ``(id, example)``: one record of step scores each,
    with the task's kind of the example's first error (``error_type``; None: none, or not classified)."""
    requests = [ScoreRequest(Problem(e.problem_id or key, e.prompt), e.completions) for key, e in batch]
    scored = run.reward_model.score(requests)
    return [{"id": key, "subset": subset, "scores": list(s.scores), "first_error": e.first_error,
             "error_type": run.task.error_type(r.problem, r.steps) if run.task is not None and e.first_error != -1 else None,
             "outcome": e.meta.get("outcome"), "problem_id": e.problem_id, "tokens": s.n_tokens}
            for (key, e), r, s in zip(batch, requests, scored)]


def score_all(run: Run, name: str, examples: list[LabelledExample], results_name: str, batch_size: int) -> list[dict]:
    """Every example's results record (``scores``, ``error_type``), scoring those not yet in ``results_name``."""
    results = run.results(results_name)
    ids = [f"{name}/{e.problem_id or i}/{i}" for i, e in enumerate(examples)]
    todo = [(key, e) for key, e in zip(ids, examples) if key not in results]
    for_each_batch(run, chunks(todo, batch_size), functools.partial(score_batch, name), results.append,
                   label=f"score {name}", total=len(examples))
    return [results.get(key) for key in ids]


def summarize(name: str, examples: list[LabelledExample], records: list[dict], threshold: float, reducer: str,
              error_types: tuple[str, ...] = ()) -> dict:
    """One subset's row; ``error_types`` (the task's kinds of error) adds recall per kind when
    the task classifies errors (left out, not zeros, when it does not)."""
    labels = [e.first_error for e in examples]
    scores = [r["scores"] for r in records]
    predictions = [metrics.predict_first_error(s, threshold) for s in scores]
    row = {"subset": name, **metrics.processbench(predictions, labels)}
    kinds = [r.get("error_type") for r in records]
    if error_types or any(kinds):
        row["error_types"] = metrics.recall_per_type(predictions, labels, kinds, error_types)
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
    """Evaluate a reward model: ProcessBench F1 and recall per error type per subset, step AUROC,
    Best-of-N; best-of-n, PRM-weighted vote and the BoN bias over policy samples (response_level)."""
    threshold = config.threshold
    summary: dict[str, Any] = {}
    # checked (task, generator, samples file) before anything is scored
    responses = response_problems(config, run) if config.response_level is not None else None
    if threshold is None:
        dev = subsets(config, run, dev=True)
        if not dev:
            raise click.UsageError("eval-prm: threshold: null (tune) needs dev_data or a task + labeler")
        dev_scores, dev_labels = [], []
        for name, examples in dev.items():
            dev_scores += [r["scores"] for r in score_all(run, name, examples, "dev_results.jsonl", config.batch_size)]
            dev_labels += [e.first_error for e in examples]
        threshold, dev_f1 = metrics.tune_threshold(dev_scores, dev_labels)
        if threshold is None:
            raise DataError(f"eval-prm: cannot tune a threshold: the dev data has {sum(l == -1 for l in dev_labels)} "
                            f"correct and {sum(l != -1 for l in dev_labels)} erroneous samples (both are needed); "
                            "give more dev data or set `threshold`")
        summary["tuned"] = {"threshold": threshold, "dev_f1": dev_f1}
    rows = []
    error_types = run.task.error_types if run.task is not None else ()
    for name, examples in subsets(config, run).items():
        records = score_all(run, name, examples, "results.jsonl", config.batch_size)
        rows.append(summarize(name, examples, records, threshold, config.reducer, error_types))
    summary["threshold"] = threshold
    summary["subsets"] = rows
    measured = [r["f1"] for r in rows if r["f1"] is not None]
    summary["average_f1"] = sum(measured) / len(measured) if measured else None  # over subsets with both classes
    if responses is not None:
        summary["response_level"] = response_level(config, run, responses)
    run.write_json("summary.json", summary)
    click.echo(format_table(rows, summary))
    return summary


def response_problems(config: EvalPRMJob, run: Run) -> list[tuple[Problem, list[str] | None]]:
    """The response-level problems, each with its solutions from the ``samples`` file (None: to sample)."""
    rl = config.response_level
    if run.task is None or (rl.samples is None and run.generator is None):
        raise ConfigError("eval-prm: response_level needs a `task:` and a `generator:` (or response_level.samples)")
    problems = run.task.load(config.split, rl.problems or config.problems)
    if rl.samples is None:
        return [(p, None) for p in problems]
    by_id = {p.id: p for p in problems}
    texts: dict[str, list[str]] = {}
    for line, record in iter_lines(read_bytes(rl.samples), rl.samples):
        pid, solutions = record.get("id"), record.get("texts")
        if not isinstance(solutions, list) or not all(isinstance(t, str) for t in solutions):
            raise DataError(f"{rl.samples}:{line}: `texts` must be a list of solution strings")
        if pid not in by_id:
            raise DataError(f"{rl.samples}:{line}: id {pid!r} is not one of the first {len(problems)} problems "
                            f"of split {config.split!r}")
        if pid in texts:
            raise DataError(f"{rl.samples}:{line}: id {pid!r} appears twice")
        texts[pid] = solutions
    return [(p, texts[p.id]) for p in problems if p.id in texts]


def response_batch(run: Run, batch: list[tuple[Problem, list[str] | None]]) -> list[dict]:
    """One batch of problems: sample (where the samples file gave none), score every solution with
    the reward model in one call and grade it; one record per problem."""
    rl, task = run.config.response_level, run.task
    todo = [p for p, given in batch if given is None]
    requests = [GenerationRequest(task.prompt(p), SamplingParams(
        n=rl.n, temperature=rl.temperature, max_tokens=rl.max_tokens, seed=stable_seed(run.seed, f"{p.id}@response")))
        for p in todo]
    sampled = iter(run.generator.generate(requests) if requests else [])
    texts = [given if given is not None else [c.text for c in next(sampled).completions] for _, given in batch]
    steps = [[task.split_steps(t) for t in group] for group in texts]
    scoring = [ScoreRequest(p, s) for (p, _), group in zip(batch, steps) for s in group if s]
    scored = iter(run.reward_model.score(scoring) if scoring else [])
    records = []
    for (problem, _), group, group_steps in zip(batch, texts, steps):
        grades = [task.grade(problem, t) for t in group]
        verdicts = [task.verify_steps(problem, s) if s else None for s in group_steps]
        record = {"id": problem.id, "texts": group,
                  "scores": [list(next(scored).scores) if s else [] for s in group_steps],
                  "answers": [g.predicted for g in grades], "correct": [g.correct for g in grades]}
        if any(v is not None for v in verdicts):
            record["flawed"] = [None if v is None else not all(v) for v in verdicts]
        records.append(record)
    return records


def response_level(config: EvalPRMJob, run: Run, problems: list[tuple[Problem, list[str] | None]]) -> dict:
    """Best-of-n, PRM-weighted vote, majority vote, pass@n and the BoN bias over the policy's samples."""
    results = run.results("response_results.jsonl")
    todo = [item for item in problems if item[0].id not in results]
    for_each_batch(run, chunks(todo, max(1, config.batch_size // config.response_level.n)), response_batch,
                   results.append, label="response level", total=len(problems))
    groups = []
    for problem, _ in problems:
        r = results.get(problem.id)
        flawed = r.get("flawed") or [None] * len(r["texts"])
        groups.append([{"scores": s, "answer": a, "correct": c, "flawed": f}
                       for s, a, c, f in zip(r["scores"], r["answers"], r["correct"], flawed)])
    return {"split": config.split, "reducer": config.reducer,
            **metrics.response_level(groups, config.reducer, run.task.same_answer)}


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
    for r in rows:
        if "error_types" in r:
            lines.append(f"recall per error type ({r['subset']}; first error found at its exact step):")
            lines += [f"  {kind:>24}  {_cell(v['recall'], 'recall'):>6}  (n {v['n']})" for kind, v in r["error_types"].items()]
    rl = summary.get("response_level")
    if rl:
        lines.append(f"response level ({rl['split']}, {rl['problems']} problems, {rl['samples']} samples, "
                     f"reducer {rl['reducer']}):")
        names = {"best_of_n": "best-of-n", "weighted_vote": "PRM-weighted vote", "majority_vote": "majority vote",
                 "pass_at_n": "pass@n", "bon_bias_all": "BoN bias (all)", "bon_bias_selected": "BoN bias (chosen)",
                 "bon_right_but_flawed": "chosen right but flawed"}
        lines += [f"  {label:>24}  {_cell(rl[key], key)}" for key, label in names.items() if key in rl]
    return "\n".join(lines)


def _cell(value: Any, column: str) -> str:
    """A table cell: floats to 4 places; a metric over an empty class (None) is "n/a", never 0."""
    if value is None and column != "subset":
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
