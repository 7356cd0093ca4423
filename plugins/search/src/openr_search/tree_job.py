"""The ``tree-data`` job: search trees or OmegaPRM labels -> pairs, Q-value targets, right solutions.

Writes (each file whole and atomically; the data is a pure function of the inputs, so a rerun
writes the same files): ``pairs.jsonl`` (step preference pairs, the ``step-dpo`` trainer's
data), ``values.jsonl`` (stepwise records with per-step Q as soft labels, the ``prm`` trainer's
data with ``soft_labels: true``), ``solutions.jsonl`` (right-answer solutions, the ``sft``
trainer's data) and ``summary.json`` (counts). See :mod:`openr_search.tree_data`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from openr_core.config import component, number
from openr_core.errors import ConfigError
from openr_core.jobs import JobConfig
from openr_core.runs import Run, write_atomically
from openr_search.tree_data import Tree, keyed, read_trees, right_solutions, step_pairs, value_examples


@attrs.frozen(kw_only=True)
class TreeDataJob(JobConfig):
    """``search_trees``: the search job's ``trees/*.jsonl`` files; ``omegaprm_labels``: the label
    job's ``labels.jsonl`` files of an ``omegaprm`` labeller; ``margin``: the least Q difference
    of a pair; ``value_threshold``: a step's hard label is Q >= this."""

    task: Any = component("task")
    search_trees: tuple[str, ...] = ()
    omegaprm_labels: tuple[str, ...] = ()
    margin: float = number(0.5, above=0, maximum=1)
    value_threshold: float = number(0.5, minimum=0, maximum=1)


def write_tree_data(task, trees: list[Tree], out: Path, margin: float, value_threshold: float = 0.5) -> dict:
    """Write the three files and ``summary.json`` into ``out``; return the summary."""
    files = {
        "pairs.jsonl": keyed((p for t in trees for p in step_pairs(task, t, margin)), "pair"),
        "values.jsonl": [r for t in trees for r in value_examples(t, value_threshold)],
        "solutions.jsonl": keyed((s for t in trees for s in right_solutions(task, t)), "solution"),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, records in files.items():
        write_atomically(out / name, "".join(json.dumps(r) + "\n" for r in records))
    summary = {"trees": len(trees), "nodes": sum(len(t.nodes) for t in trees), "margin": margin,
               **{name.removesuffix(".jsonl"): len(records) for name, records in files.items()}}
    write_atomically(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def run_tree_data(config: TreeDataJob, run: Run) -> dict:
    """Step preference pairs, per-step Q targets and right solutions from search trees or OmegaPRM labels."""
    if not config.search_trees and not config.omegaprm_labels:
        raise ConfigError("tree-data: give `search_trees:` (search job trees/*.jsonl) or `omegaprm_labels:`")
    trees = read_trees(config.search_trees, config.omegaprm_labels)
    summary = write_tree_data(run.task, trees, run.output_dir, config.margin, config.value_threshold)
    print(json.dumps(summary))
    return summary
