"""Answer-level metrics and the ``evaluate`` job (greedy accuracy, pass@n, majority@n)."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from math import comb, prod
from typing import Any

import attrs
import click

from openr_core.config import component, count, number
from openr_core.jobs import BatchJobConfig
from openr_core.launchers import chunks, for_each_batch
from openr_core.runs import Run
from openr_core.types import GenerationRequest, SamplingParams


def stable_seed(seed: int, key: str) -> int:
    """A per-item seed that does not depend on batch composition or resume order."""
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % 2**31


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (Chen et al., 2021)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


# How a solution's step scores become one value (search selection, best-of-n, votes): the
# weakest step (``min``, the PRM convention), the final step, the mean, or the product. No
# score at all is -inf: such a solution is never preferred.
REDUCERS: dict[str, Callable[[Sequence[float]], float]] = {
    "min": lambda s: min(s) if s else float("-inf"),
    "last": lambda s: s[-1] if s else float("-inf"),
    "mean": lambda s: sum(s) / len(s) if s else float("-inf"),
    "product": lambda s: prod(s) if s else float("-inf"),
}


def reduce_scores(scores: Sequence[float], reducer: str) -> float:
    """One value for a solution's step ``scores`` (see :data:`REDUCERS`)."""
    return REDUCERS[reducer](scores)


def vote(answers: Sequence[str | None], same: Callable[[str, str], bool] = lambda a, b: a == b,
         weights: Sequence[float] | None = None) -> int | None:
    """Index of the answer with the largest total weight (default 1 each), grouping equal answers.

    ``None`` answers do not vote. Ties go to the group whose first member came first.
    Returns the index of that group's first member, or None when no answer voted.
    """
    groups: list[list[int]] = []
    for i, answer in enumerate(answers):
        if answer is None:
            continue
        for group in groups:
            if same(answers[group[0]], answer):
                group.append(i)
                break
        else:
            groups.append([i])
    if not groups:
        return None
    w = weights if weights is not None else [1.0] * len(answers)
    best = max(groups, key=lambda g: (sum(w[i] for i in g), -g[0]))
    return best[0]


@attrs.frozen(kw_only=True)
class EvaluateJob(BatchJobConfig):
    """Greedy accuracy and, with ``n`` > 0, average@n, pass@n and majority@n of sampled solutions."""

    task: Any = component("task")
    generator: Any = component("generator")
    split: str = "test"
    limit: int | None = count(None)
    n: int = count(0, minimum=0)
    temperature: float = number(1.0, minimum=0)
    top_p: float = number(1.0, above=0, maximum=1)
    max_tokens: int = count(256)
    batch_size: int = count(100)


def evaluate_batch(run: Run, batch: list) -> list[dict]:
    """The records of one batch of problems (runs wherever the run's launcher puts it)."""
    config, task, generator = run.config, run.task, run.generator
    greedy = SamplingParams(n=1, temperature=0.0, max_tokens=config.max_tokens)
    requests = [GenerationRequest(task.prompt(p), greedy) for p in batch]
    if config.n:
        requests += [
            GenerationRequest(task.prompt(p), SamplingParams(
                n=config.n, temperature=config.temperature, top_p=config.top_p,
                max_tokens=config.max_tokens, seed=stable_seed(run.seed, p.id)))
            for p in batch
        ]
    t0 = time.perf_counter()
    outputs = generator.generate(requests)
    seconds = (time.perf_counter() - t0) / len(batch)
    records = []
    for i, problem in enumerate(batch):
        completion = outputs[i].completions[0]
        grade = task.grade(problem, completion.text)
        record = {"id": problem.id, "gold": problem.answer, "text": completion.text,
                  "answer": grade.predicted, "correct": grade.correct,
                  "tokens": completion.n_tokens, "seconds": seconds}
        if config.n:
            samples = outputs[len(batch) + i].completions
            grades = [task.grade(problem, c.text) for c in samples]
            record["sample_answers"] = [g.predicted for g in grades]
            record["sample_correct"] = [g.correct for g in grades]
            record["sample_tokens"] = sum(c.n_tokens for c in samples)
        records.append(record)
    return records


def run_evaluate(config: EvaluateJob, run: Run) -> dict:
    """Evaluate a generator on a task split: greedy accuracy, average@n, pass@n, majority@n, tokens, time."""
    task = run.task
    problems = task.load(config.split, config.limit)
    results = run.results()
    todo = [p for p in problems if p.id not in results]
    for_each_batch(run, chunks(todo, config.batch_size), evaluate_batch, results.append,
                   label="evaluate", total=len(problems))
    summary = summarize([results.get(p.id) for p in problems], config.n, task.same_answer)
    run.write_json("summary.json", summary)
    click.echo(format_summary(summary))
    return summary


def summarize(records: list[dict], n: int, same: Callable[[str, str], bool]) -> dict:
    count = len(records)
    if not count:
        return {"problems": 0}
    summary: dict[str, Any] = {
        "problems": count,
        "accuracy": sum(r["correct"] for r in records) / count,
        "greedy_tokens_per_problem": sum(r["tokens"] for r in records) / count,
        "wall_seconds": sum(r["seconds"] for r in records),
    }
    if n:
        summary[f"pass@{n}"] = sum(pass_at_k(n, sum(r["sample_correct"]), n) for r in records) / count
        majority = 0
        for r in records:
            winner = vote(r["sample_answers"], same)
            majority += winner is not None and r["sample_correct"][winner]
        summary[f"majority@{n}"] = majority / count
        # average@n: the mean accuracy of the n samples (PRL's average@n; pass@n is "any of them")
        summary[f"average@{n}"] = sum(sum(r["sample_correct"]) / n for r in records) / count
        summary["sample_tokens_per_problem"] = sum(r["sample_tokens"] for r in records) / count
    return summary


def format_summary(summary: dict) -> str:
    width = max(len(k) for k in summary)
    lines = []
    for key, value in summary.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {shown}")
    return "\n".join(lines)
