"""The ``rest-mcts`` job: ReST-MCTS* self-training (Zhang et al. 2024) from the existing jobs.

Iteration k (folder ``iter-k/``), with policy P and value model V from iteration k-1 (the
config's ``policy`` and ``value_model`` for k = 1):

1. ``search/``: the ``search`` job on ``search.split`` with generator P and reward model V,
   every tree recorded;
2. ``data/``: per-step Q values, pairs and right solutions from those trees
   (:func:`openr_search.tree_job.write_tree_data`);
3. ``value/``: the ``train`` job with ``value_trainer`` from V on ``data/values.jsonl`` (Q as soft
   labels) -> the next V;
4. ``policy/``: the ``train`` job with ``policy_trainer`` from P on ``data/solutions.jsonl`` (the
   verified-right traces) -> the next P;
5. ``eval/``: the ``search`` job with ``evaluate``'s searchers on its split with the new P and V;
6. ``done.json``: the iteration's accuracies and counts, written last.

``iter-0/eval/`` evaluates the starting P and V. A killed run resumes at the first iteration
without ``done.json``; inside it a finished training step (its ``final/`` exists) is not run
again, and the search steps resume as the search job does (problems already in its results
are skipped). ``curve.json`` / ``curve.png``: accuracy per iteration and searcher.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import attrs
import click

from openr_core.config import Where, component, count, number, structure, unstructure
from openr_core.errors import ConfigError
from openr_core.jobs import Job, JobConfig, TrainJob, execute, run_train
from openr_core.plugins import get_plugins
from openr_core.runs import Run, write_atomically
from openr_search.job import SearchJob, run_search
from openr_search.tree_data import read_trees
from openr_search.tree_job import write_tree_data

SEARCH = Job("search", SearchJob, run_search)
TRAIN = Job("train", TrainJob, run_train)


@attrs.frozen(kw_only=True)
class RestMCTSJob(JobConfig):
    """``task``, ``generator`` and ``value_model`` are component specs (``generator.model`` and
    ``value_model.model`` are replaced by each iteration's policy and value model); ``search`` and
    ``evaluate`` are search-job keys (``split``, ``limit``, ``searchers``, ...); ``value_trainer``
    and ``policy_trainer`` are trainer specs (``model`` and ``data`` are filled in)."""

    task: Any = component("task")
    generator: dict
    policy: str
    value_model: dict
    search: dict
    evaluate: dict
    value_trainer: dict
    policy_trainer: dict
    iterations: int = count(3)
    margin: float = number(0.5, above=0, maximum=1)


def with_model(spec: dict, model: str) -> dict:
    return {**spec, "model": model}


class Loop:
    """Builds each step's job config (checked like a config file) and runs it in its folder."""

    def __init__(self, config: RestMCTSJob, run: Run):
        self.config, self.run, self.out = config, run, Path(run.output_dir)
        self.source = str(self.out / "config.yaml")
        self.task = unstructure(config.task)

    def structure(self, job: Job, raw: dict, name: str):
        return structure(job.config_class, {"job": job.name, "seed": self.config.seed, **raw},
                         Where(self.source, (name,)), get_plugins())

    def search_raw(self, keys: dict, policy: str, value: str) -> dict:
        return {**keys, "task": self.task, "generator": with_model(self.config.generator, policy),
                "reward_model": with_model(self.config.value_model, value)}

    def train_raw(self, trainer: dict, start: str, data) -> dict:
        return {"task": self.task, "trainer": {**trainer, "model": start, "data": data}}

    def search(self, keys: dict, policy: str, value: str, folder: Path, name: str, trees: bool) -> dict:
        raw = self.search_raw(keys, policy, value)
        if trees:
            raw["trees"] = keys.get("limit") or 10**9
        execute(SEARCH, self.structure(SEARCH, raw, name), self.source, str(folder), fresh=False)
        return json.loads((folder / "summary.json").read_text())

    def train(self, trainer: dict, start: str, data, folder: Path, name: str) -> str:
        final = folder / "final"
        if not final.is_dir():  # a finished step is never run again
            execute(TRAIN, self.structure(TRAIN, self.train_raw(trainer, start, data), name), self.source, str(folder),
                    fresh=False)
        return str(final)

    def check(self) -> None:
        """Every step's config, before any work (a typo fails now, not after an hour of search)."""
        c = self.config
        self.structure(SEARCH, self.search_raw(c.search, c.policy, "v"), "search")
        self.structure(SEARCH, self.search_raw(c.evaluate, c.policy, "v"), "evaluate")
        self.structure(TRAIN, self.train_raw(c.value_trainer, "v", ["d"]), "value_trainer")
        self.structure(TRAIN, self.train_raw(c.policy_trainer, "p", "d"), "policy_trainer")


def row(iteration: int, summary: dict, **more) -> dict:
    return {"iteration": iteration, **more,
            "accuracy": {s["searcher"]: s["accuracy"] for s in summary["searchers"]}, "problems": summary["problems"]}


def run_rest_mcts(config: RestMCTSJob, run: Run) -> list[dict]:
    """ReST-MCTS* self-training: search -> Q targets from the trees -> train value model and policy -> repeat."""
    loop = Loop(config, run)
    loop.check()
    out = Path(run.output_dir)
    policy, value = config.policy, config.value_model.get("model")
    if not value:
        raise ConfigError(f"{loop.source}: value_model.model: required (the starting value model / PRM)")
    curve = []
    base = out / "iter-0"
    if not (base / "done.json").exists():
        summary = loop.search(config.evaluate, policy, value, base / "eval", "iteration 0 evaluate", trees=False)
        write_atomically(base / "done.json", json.dumps(row(0, summary, policy=policy, value_model=value)) + "\n")
    curve.append(json.loads((base / "done.json").read_text()))
    for k in range(1, config.iterations + 1):
        folder = out / f"iter-{k}"
        done = folder / "done.json"
        if done.exists():
            record = json.loads(done.read_text())
        else:
            t0 = time.perf_counter()
            loop.search(config.search, policy, value, folder / "search", f"iteration {k} search", trees=True)
            trees = read_trees(sorted(str(p) for p in (folder / "search" / "trees").glob("*.jsonl")))
            counts = write_tree_data(run.task, trees, folder / "data", config.margin)
            new_value, new_policy = value, policy
            if counts["values"]:
                new_value = loop.train(config.value_trainer, value, [str(folder / "data" / "values.jsonl")],
                                       folder / "value", f"iteration {k} value_trainer")
            if counts["solutions"]:
                new_policy = loop.train(config.policy_trainer, policy, str(folder / "data" / "solutions.jsonl"),
                                        folder / "policy", f"iteration {k} policy_trainer")
            summary = loop.search(config.evaluate, new_policy, new_value, folder / "eval", f"iteration {k} evaluate",
                                  trees=False)
            record = row(k, summary, policy=new_policy, value_model=new_value, data=counts,
                         seconds=round(time.perf_counter() - t0, 1))
            write_atomically(done, json.dumps(record) + "\n")
        policy, value = record["policy"], record["value_model"]
        curve.append(record)
    run.write_json("curve.json", curve)
    plot_curve(curve, out / "curve.png")
    for r in curve:
        click.echo(f"iteration {r['iteration']}: " + ", ".join(f"{s} {a:.3f}" for s, a in r["accuracy"].items()))
    return curve


def plot_curve(curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for searcher in curve[0]["accuracy"]:
        ax.plot([r["iteration"] for r in curve], [r["accuracy"].get(searcher) for r in curve], marker="o", label=searcher)
    ax.set_xlabel("iteration")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

