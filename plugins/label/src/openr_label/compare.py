"""The ``label-compare`` job: several labellers on the SAME sampled solutions vs exact labels.

Solutions are sampled once per batch; every labeller labels them with ``label_solutions``; the
task's exact verifier (``task.verify_steps``, first-error semantics) gives the truth. Reports per
labeller: examples kept, first-error accuracy (predicted first wrong step == true one, -1 for
none), step-label accuracy, rollouts and labelling tokens spent.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import attrs
import click

from openr_core.config import component
from openr_core.jobs import JobConfig
from openr_core.runs import Run
from openr_label.common import first_error_of, labels_from_first_error, sample_solutions


@attrs.frozen(kw_only=True)
class CompareJob(JobConfig):
    """Compare labellers against the task's exact step labels on the same sampled solutions."""

    task: Any = component("task")
    generator: Any = component("generator")
    labelers: Any = component("labeler", many=True)
    split: str = "test"
    limit: int = 300
    batch_size: int = 100
    n_solutions: int = 4
    temperature: float = 1.0
    max_tokens: int = 96
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
    return labels_from_first_error(len(steps), first_error_of(verdicts))


def name_of(spec) -> str:
    return spec.type


def run_compare(config: CompareJob, run: Run) -> dict:
    """Run each labeller on the same sampled solutions; compare with exact labels; print a table."""
    task = run.task
    generator = CachingGenerator(run.generator) if config.cache else run.generator
    problems = task.load(config.split, config.limit)
    labelers = [(name_of(spec), run.build(spec)) for spec in config.labelers]
    names = []
    for name, _ in labelers:
        names.append(name if name not in names else f"{name}#{len(names)}")
    acc = {n: {"examples": 0, "first_error_hits": 0, "steps": 0, "step_hits": 0, "seconds": 0.0} for n in names}
    total_solutions = 0
    true_wrong = 0
    with click.progressbar(length=len(problems), label="label-compare", file=sys.stderr) as bar:
        for start in range(0, len(problems), config.batch_size):
            batch = problems[start : start + config.batch_size]
            solutions, _ = sample_solutions(batch, task, generator, n=config.n_solutions,
                                            temperature=config.temperature, max_tokens=config.max_tokens, seed=run.seed)
            truth = {}
            for p, sols in zip(batch, solutions):
                for s in sols:
                    labels = truth_labels(task, p, s)
                    if labels is not None:
                        truth[p.id, tuple(s)] = labels
                        true_wrong += first_error_of(labels) >= 0
            total_solutions += len(truth)
            for name, (_, labeler) in zip(names, labelers):
                t0 = time.perf_counter()
                examples = labeler.label_solutions(batch, solutions, task=task, generator=generator)
                acc[name]["seconds"] += time.perf_counter() - t0
                for e in examples:
                    gold = truth.get((e.problem_id, tuple(e.completions)))
                    if gold is None:
                        continue
                    a = acc[name]
                    a["examples"] += 1
                    a["first_error_hits"] += first_error_of(e.labels) == first_error_of(gold)
                    a["steps"] += len(gold)
                    a["step_hits"] += sum(x == y for x, y in zip(e.labels, gold))
            bar.update(len(batch))
    rows = []
    for name, (_, labeler) in zip(names, labelers):
        a, cost = acc[name], costs(labeler)
        rows.append({"labeler": name, "examples": a["examples"],
                     "kept": a["examples"] / total_solutions if total_solutions else 0.0,
                     "first_error_acc": a["first_error_hits"] / a["examples"] if a["examples"] else 0.0,
                     "step_acc": a["step_hits"] / a["steps"] if a["steps"] else 0.0,
                     "rollouts": cost["rollouts"], "tokens": cost["tokens"], "seconds": round(a["seconds"], 1)})
    summary = {"problems": len(problems), "solutions": total_solutions, "wrong_solutions": true_wrong, "labelers": rows}
    run.write_json("summary.json", summary)
    click.echo(format_table(summary))
    return summary


def format_table(summary: dict) -> str:
    lines = [f"problems={summary['problems']} solutions={summary['solutions']} "
             f"(truly wrong: {summary['wrong_solutions']})",
             f"{'labeler':<12} {'examples':>8} {'kept':>6} {'first-err acc':>13} {'step acc':>8} "
             f"{'rollouts':>9} {'tokens':>9} {'seconds':>8}"]
    for r in summary["labelers"]:
        lines.append(f"{r['labeler']:<12} {r['examples']:>8} {r['kept']:>6.3f} {r['first_error_acc']:>13.4f} "
                     f"{r['step_acc']:>8.4f} {r['rollouts']:>9} {r['tokens']:>9} {r['seconds']:>8}")
    return "\n".join(lines)
