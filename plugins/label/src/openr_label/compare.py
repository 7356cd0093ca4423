"""The ``label-compare`` job: several labellers on the SAME sampled solutions vs exact labels.

Solutions are sampled once per batch; every labeller labels them with ``label_solutions``; the
task's exact verifier (``task.verify_steps``, first-error semantics) gives the truth. Reports per
labeller: examples kept, first-error accuracy (predicted first wrong step == true one, -1 for
none), step-label accuracy, rollouts and labelling tokens spent. Resumable batch by batch
(``batches.jsonl``).
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import click

from openr_core.config import component, count, number
from openr_core.errors import DataError
from openr_core.jobs import BatchJobConfig
from openr_core.launchers import chunks, for_each_batch
from openr_core.labelling import first_error_labels
from openr_core.runs import Run
from openr_label.common import first_error_of, sample_solutions


@attrs.frozen(kw_only=True)
class CompareJob(BatchJobConfig):
    """Compare labellers against the task's exact step labels on the same sampled solutions."""

    task: Any = component("task")
    generator: Any = component("generator")
    labelers: Any = component("labeler", many=True, minimum=1)
    split: str = "test"
    limit: int = count(300)
    batch_size: int = count(100)
    n_solutions: int = count(4)
    temperature: float = number(1.0, minimum=0)
    max_tokens: int = count(96)
    cache: bool = True


class CachingGenerator:
    """Memoises results by (prompt, params): requests are seeded, so a repeat is identical.
    Lets a consensus labeller reuse its parts' rollouts in wall time (they still count them)."""

    def __init__(self, generator):
        self.generator, self.memo = generator, {}

    def generate(self, requests):
        todo = list(dict.fromkeys(r for r in requests if r not in self.memo))
        if todo:
            for r, result in zip(todo, self.generator.generate(todo)):
                self.memo[r] = result
        return [self.memo[r] for r in requests]


def costs(labeler) -> dict:
    """Rollouts and labelling tokens a labeller spent (a consensus: both of its parts)."""
    if hasattr(labeler, "first") and hasattr(labeler, "second"):
        a, b = costs(labeler.first), costs(labeler.second)
        return {k: a[k] + b[k] for k in a}
    stats = getattr(labeler, "stats", {})
    return {"rollouts": stats.get("rollouts", 0), "tokens": stats.get("tokens", 0)}


def truth_labels(task, problem, steps):
    verdicts = task.verify_steps(problem, list(steps))
    if verdicts is None:
        return None
    return first_error_labels(verdicts)


def name_of(spec) -> str:
    """The labeller's type, with its ``k`` when it has one and a search other than the paper's
    (``omegaprm(k=4)``, ``omegaprm(k=4,exponential)``)."""
    k, search = getattr(spec.config, "k", None), getattr(spec.config, "search", "binary")
    args = [f"k={k}"] * (k is not None) + [search] * (search != "binary")
    return f"{spec.type}({','.join(args)})" if args else spec.type


COUNTS = ("examples", "first_error_hits", "steps", "step_hits", "rollouts", "tokens", "seconds")


def compare_batch(batch, task, generator, config: CompareJob, seed: int, labelers) -> dict:
    """Sample the batch's solutions once, have every labeller label them, score against the truth.
    Returns the batch's record: solution counts and, per labeller, hits and costs."""
    solutions, _ = sample_solutions(batch, task, generator, n=config.n_solutions, temperature=config.temperature,
                                    max_tokens=config.max_tokens, seed=seed)
    truth = {}
    for p, sols in zip(batch, solutions):
        for s in sols:
            labels = truth_labels(task, p, s)
            if labels is not None:
                truth[p.id, tuple(s)] = labels
    record = {"id": batch_key(batch), "problems": len(batch), "solutions": len(truth),
              "wrong_solutions": sum(first_error_of(t) >= 0 for t in truth.values()), "labelers": {}}
    for name, labeler in labelers:
        before, t0 = costs(labeler), time.perf_counter()
        examples = labeler.label_solutions(batch, solutions, task=task, generator=generator)
        after = costs(labeler)
        a = dict.fromkeys(COUNTS, 0)
        a.update(rollouts=after["rollouts"] - before["rollouts"], tokens=after["tokens"] - before["tokens"],
                 seconds=round(time.perf_counter() - t0, 2))
        for e in examples:
            gold = truth.get((e.problem_id, tuple(e.completions)))
            if gold is None:
                continue
            a["examples"] += 1
            a["first_error_hits"] += first_error_of(e.labels) == first_error_of(gold)
            a["steps"] += len(gold)
            a["step_hits"] += sum(x == y for x, y in zip(e.labels, gold))
        record["labelers"][name] = a
    return record


def batch_key(batch) -> str:
    """A batch's record key: its first and last problem and its size, so a run resumed with another
    ``limit`` or ``batch_size`` recounts a batch whose problems changed instead of reusing it."""
    return f"{batch[0].id}..{batch[-1].id}#{len(batch)}"


def compare_shard(run: Run, batch) -> dict:
    """:func:`compare_batch` with the run's components (its labellers built once per run)."""
    config = run.config
    generator = CachingGenerator(run.generator) if config.cache else run.generator
    labelers = [(name, run.build(spec)) for name, spec in zip(labeler_names(config), config.labelers)]
    return compare_batch(batch, run.task, generator, config, run.seed, labelers)


def labeler_names(config: CompareJob) -> list[str]:
    names = []
    for spec in config.labelers:
        name = name_of(spec)
        names.append(name if name not in names else f"{name}#{len(names)}")
    return names


def run_compare(config: CompareJob, run: Run) -> dict:
    """Run each labeller on the same sampled solutions; compare with exact labels; print a table.

    Resumable: after each batch one record (its counts per labeller) is appended to
    ``batches.jsonl``; a re-run skips the batches recorded there and sums all records."""
    problems = run.task.load(config.split, config.limit)
    names = labeler_names(config)
    done = run.results("batches.jsonl")
    for record in done:  # a resumed run must compare the same labellers
        if sorted(record["labelers"]) != sorted(names):
            raise DataError(f"{done.path}: written for labellers {sorted(record['labelers'])}, this config has "
                            f"{sorted(names)}; use a new output folder")
    batches = chunks(problems, config.batch_size)
    for_each_batch(run, [b for b in batches if batch_key(b) not in done], compare_shard, done.append,
                   label="label-compare", total=len(problems))
    records = [done.get(batch_key(batch)) for batch in batches]
    total = {n: {k: sum(r["labelers"][n][k] for r in records) for k in COUNTS} for n in names}
    solutions = sum(r["solutions"] for r in records)
    rows = []
    for name in names:
        a = total[name]
        rows.append({"labeler": name, "examples": a["examples"],
                     "kept": a["examples"] / solutions if solutions else 0.0,
                     "first_error_acc": a["first_error_hits"] / a["examples"] if a["examples"] else 0.0,
                     "step_acc": a["step_hits"] / a["steps"] if a["steps"] else 0.0,
                     "rollouts": a["rollouts"], "tokens": a["tokens"], "seconds": round(a["seconds"], 1)})
    summary = {"problems": len(problems), "solutions": solutions,
               "wrong_solutions": sum(r["wrong_solutions"] for r in records), "labelers": rows}
    run.write_json("summary.json", summary)
    click.echo(format_table(summary))
    return summary


def format_table(summary: dict) -> str:
    lines = [f"problems={summary['problems']} solutions={summary['solutions']} "
             f"(truly wrong: {summary['wrong_solutions']})",
             f"{'labeler':<16} {'examples':>8} {'kept':>6} {'first-err acc':>13} {'step acc':>8} "
             f"{'rollouts':>9} {'tokens':>9} {'seconds':>8}"]
    for r in summary["labelers"]:
        lines.append(f"{r['labeler']:<16} {r['examples']:>8} {r['kept']:>6.3f} {r['first_error_acc']:>13.4f} "
                     f"{r['step_acc']:>8.4f} {r['rollouts']:>9} {r['tokens']:>9} {r['seconds']:>8}")
    return "\n".join(lines)
