"""The ``search`` job: a task split x a list of searchers, budget-matched.

Per searcher, per-problem results go to ``results/<label>.jsonl`` as each batch of problems
finishes (a killed run resumes where it stopped); then ``summary.json``, a table, and
``accuracy_vs_tokens.png``. With ``trees: N`` the search trees of the first N problems go to
``trees/<label>.jsonl`` (what ``openr report`` draws).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import attrs
import click

from openr_core.config import component, count
from openr_core.jobs import BatchJobConfig
from openr_core.launchers import chunks, for_each_batch
from openr_core.runs import Run
from openr_core.types import Problem, to_dict
from openr_search.record import recording, tree_record


@attrs.frozen(kw_only=True)
class SearchJob(BatchJobConfig):
    """Run several searchers on one task split and compare them at matched budgets."""

    task: Any = component("task")
    generator: Any = component("generator")
    reward_model: Any = component("reward_model", optional=True)
    searchers: list = component("searcher", many=True, minimum=1)
    split: str = "test"
    limit: int | None = count(None)
    batch_size: int = count(100)
    plot: bool = True
    trees: int = 0  # record the search trees of the first `trees` problems (trees/<label>.jsonl, for `openr report`)


def labels(specs) -> list[str]:
    out = []
    for spec in specs:
        n = getattr(spec.config, "n", None)
        base = spec.type + (f"@{n}" if n is not None and spec.type != "greedy" else "")
        label, k = base, 2
        while label in out:
            label, k = f"{base}-{k}", k + 1
        out.append(label)
    return out


def search_batch(run: Run, batch: list[tuple[int, Problem, bool]]) -> tuple[int, list[dict], list[dict]]:
    """A batch of ``(searcher index, problem, record its tree)``, all of one searcher of the run's
    config: that index, one record per problem, and the trees of the problems marked for recording."""
    index, problems = batch[0][0], [p for _, p, _ in batch]
    recorded = {p.id for _, p, keep in batch if keep}
    task = run.task
    searcher = run.build(run.config.searchers[index])
    t0 = time.perf_counter()
    with recording(recorded) if recorded else contextlib.nullcontext() as recorder:
        found = searcher.search(problems, task=task, generator=run.generator, reward_model=run.reward_model)
    seconds = (time.perf_counter() - t0) / len(problems)
    records = []
    for problem, result in zip(problems, found):
        correct = result.answer is not None and task.answers_match(problem, result.answer)
        any_correct = any(c.answer is not None and task.answers_match(problem, c.answer) for c in result.candidates)
        records.append({"id": problem.id, "answer": result.answer, "gold": problem.answer, "correct": correct,
                        "pass": any_correct or correct, "candidates": len(result.candidates),
                        **to_dict(result.budget), "seconds": seconds,
                        "solution": list(result.solution.steps) if result.solution else None,
                        **({"meta": dict(result.meta)} if result.meta else {})})
    trees = [tree_record(task, p, r, recorder.trees[p.id]) for p, r in zip(problems, found)
             if p.id in recorder.trees] if recorded else []
    return index, records, trees


def run_search(config: SearchJob, run: Run) -> list[dict]:
    """Run several searchers on a task split; per-problem JSONL, a summary table and a plot.

    The batches of all searchers form one queue (searcher by searcher), so a launcher's workers
    go on to the next searcher's batches without waiting for the last batch of the previous one."""
    if not config.searchers:
        raise click.UsageError("search: `searchers:` is empty")
    problems = run.task.load(config.split, config.limit)
    names = labels(config.searchers)
    files = [run.results(f"results/{label}.jsonl") for label in names]
    tree_files = [run.results(f"trees/{label}.jsonl") for label in names] if config.trees > 0 else None
    recorded = {p.id for p in problems[: config.trees]} if tree_files else set()
    batches = [[(index, p, p.id in recorded) for p in chunk] for index, results in enumerate(files)
               for chunk in chunks([p for p in problems if p.id not in results], config.batch_size)]

    def write(result: tuple[int, list[dict], list[dict]]) -> None:
        index, records, trees = result
        if trees:  # before the records: a batch whose records are written is not searched again
            tree_files[index].append(trees)
        files[index].append(records)

    for_each_batch(run, batches, search_batch, write,
                   label=f"search ({len(names)} searchers)", total=len(problems) * len(names))
    rows = [summarize(label, spec, [results.get(p.id) for p in problems])
            for label, spec, results in zip(names, config.searchers, files)]
    run.write_json("summary.json", {"split": config.split, "problems": len(problems), "searchers": rows})
    click.echo(format_table(rows))
    if config.plot:
        plot(rows, run.output_dir / "accuracy_vs_tokens.png")
    return rows


def summarize(label: str, spec, records: list[dict]) -> dict:
    count = len(records)
    return {
        "searcher": label, "type": spec.type, "n": getattr(spec.config, "n", 1), "problems": count,
        "accuracy": sum(r["correct"] for r in records) / count,
        "pass@n": sum(r["pass"] for r in records) / count,
        "tokens_per_problem": sum(r["generated_tokens"] for r in records) / count,
        "generator_calls_per_problem": sum(r["generator_calls"] for r in records) / count,
        "prm_tokens_per_problem": sum(r["prm_tokens"] for r in records) / count,
        "wall_seconds": sum(r["seconds"] for r in records),
    }


def format_table(rows: list[dict]) -> str:
    head = f"{'searcher':<16} {'accuracy':>8} {'pass@n':>7} {'tokens/problem':>14} {'calls/problem':>13} {'prm tokens':>10} {'seconds':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['searcher']:<16} {r['accuracy']:>8.3f} {r['pass@n']:>7.3f} {r['tokens_per_problem']:>14.1f} "
                     f"{r['generator_calls_per_problem']:>13.1f} {r['prm_tokens_per_problem']:>10.0f} {r['wall_seconds']:>8.1f}")
    return "\n".join(lines)


def plot(rows: list[dict], path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.scatter(r["tokens_per_problem"], r["accuracy"])
        ax.annotate(r["searcher"], (r["tokens_per_problem"], r["accuracy"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
