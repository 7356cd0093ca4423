"""Training data from search trees: per-step Q values, step preference pairs, verified solutions.

A tree is a problem's step prefixes (``tuple`` of steps -> :class:`Node`). Two sources:

- the ``search`` job's recorded trees (``trees/<searcher>.jsonl``, ``trees: N``): the Q value of
  a node is the fraction of the finished solutions below it (itself included) whose answer is
  right, i.e. a Monte-Carlo estimate from the tree's own rollouts (nodes with no finished
  solution below them have none);
- OmegaPRM labels (the ``label`` job's ``labels.jsonl`` with ``labeler: omegaprm``): the Q value of
  a prefix is its MC estimate (``meta.mc``); solutions of one problem sharing a prefix share
  that node, so their differing next steps are siblings.

From a tree: **pairs** (Step-DPO, "Enhancing Decision-Making for LLM Agents via Step-Level
Q-Value Models"): at every node, each two children whose Q values differ by at least
``margin`` give {prompt + prefix, chosen = the higher-Q step, rejected = the lower}; **values**:
one stepwise example per finished solution with every step's Q as its soft label (the targets
of a step-level Q-value model, trained by the ``prm`` trainer with ``soft_labels: true``);
**solutions**: the distinct finished solutions whose answer is right (SFT data, ReST-MCTS*).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from openr_core import Problem, Task
from openr_core.errors import DataError
from openr_core.jsonl import iter_records
from openr_core.stepwise import read_example

Steps = tuple[str, ...]


@attrs.define
class Node:
    q: float | None = None  # None: no estimate
    done: bool = False  # a complete solution
    correct: bool | None = None  # its answer is right (finished nodes of search trees)


@attrs.define
class Tree:
    problem: Problem
    nodes: dict[Steps, Node]

    def children(self, steps: Steps) -> list[Steps]:
        return [s for s in self.nodes if len(s) == len(steps) + 1 and s[: len(steps)] == steps]


def q_from_outcomes(nodes: dict[Steps, Node]) -> None:
    """Set every node's Q to the fraction of right answers among the finished nodes below it."""
    finished = [(s, n.correct) for s, n in nodes.items() if n.done and n.correct is not None]
    for steps, node in nodes.items():
        below = [ok for s, ok in finished if s[: len(steps)] == steps]
        node.q = sum(below) / len(below) if below else None


def tree_from_search_record(record: dict, where: str) -> Tree:
    """A :class:`Tree` from one record of a search job's ``trees/*.jsonl`` (see :mod:`openr_search.record`)."""
    for key in ("id", "question", "nodes"):
        if key not in record:
            raise DataError(f"{where}: no '{key}' field (not a search tree record)")
    by_id = {n["id"]: n for n in record["nodes"]}

    def path(n: dict) -> Steps:
        return () if n["parent"] is None else path(by_id[n["parent"]]) + (n["step"],)

    nodes = {}
    for n in record["nodes"]:
        done = n.get("status") == "finished"
        nodes[path(n)] = Node(None, done, bool(n["answer_correct"]) if done and "answer_correct" in n else None)
    q_from_outcomes(nodes)
    return Tree(Problem(str(record["id"]), record["question"], str(record.get("gold"))), nodes)


def trees_from_omegaprm(records: Iterable[tuple[str, dict]]) -> list[Tree]:
    """One :class:`Tree` per problem from OmegaPRM's labelled solutions (``meta.mc`` per prefix)."""
    trees: dict[str, Tree] = {}
    for where, record in records:
        example = read_example(record, where)
        mc = example.meta.get("mc")
        if not isinstance(mc, list) or len(mc) != len(example.completions):
            raise DataError(f"{where}: meta.mc: expected one MC value (or null) per step (an omegaprm label record)")
        pid = example.problem_id or example.prompt
        tree = trees.setdefault(pid, Tree(Problem(pid, example.prompt, ""), {(): Node()}))
        steps = tuple(example.completions)
        for depth, value in enumerate(mc, 1):
            node = tree.nodes.setdefault(steps[:depth], Node())
            if value is not None:
                node.q = float(value)
        tree.nodes[steps].done = True
    return list(trees.values())


def read_trees(search_trees: Iterable[str] = (), omegaprm_labels: Iterable[str] = ()) -> list[Tree]:
    out = []
    for path in search_trees:
        out += [tree_from_search_record(record, where) for where, record in iter_records(path)]
    for path in omegaprm_labels:
        out += trees_from_omegaprm(iter_records(path))
    return out


def _completion(task: Task, tree: Tree, steps: Steps) -> tuple[str, bool]:
    """The text of a node's last step as the policy writes it, and whether it ends the solution
    (then EOS follows it; otherwise the step separator does)."""
    done = tree.nodes[steps].done
    return (steps[-1] if done else task.join_steps([steps[-1]])), done


def step_pairs(task: Task, tree: Tree, margin: float) -> Iterator[dict]:
    """Sibling steps ranked by Q: every two children of a node whose Q differ by >= ``margin``."""
    prompt_of = task.prompt(tree.problem)
    for steps in sorted(tree.nodes, key=lambda s: (len(s), s)):
        kids = sorted((k for k in tree.children(steps) if tree.nodes[k].q is not None),
                      key=lambda k: (-tree.nodes[k].q, k))
        for i, better in enumerate(kids):
            for worse in kids[i + 1:]:
                q_better, q_worse = tree.nodes[better].q, tree.nodes[worse].q
                if q_better - q_worse < margin:
                    continue
                chosen, chosen_ends = _completion(task, tree, better)
                rejected, rejected_ends = _completion(task, tree, worse)
                yield {"problem_id": tree.problem.id, "depth": len(steps),
                       "prompt": prompt_of + task.join_steps(steps), "chosen": chosen, "rejected": rejected,
                       "chosen_ends": chosen_ends, "rejected_ends": rejected_ends,
                       "chosen_q": q_better, "rejected_q": q_worse}


def value_examples(tree: Tree, threshold: float = 0.5) -> Iterator[dict]:
    """One stepwise record (``format: openr``) per finished solution: soft labels = Q of each prefix."""
    for steps, node in tree.nodes.items():
        if not node.done or not steps:
            continue
        qs = [tree.nodes[steps[:d]].q for d in range(1, len(steps) + 1)]
        if any(q is None for q in qs):
            continue
        yield {"prompt": tree.problem.question, "completions": list(steps), "labels": [q >= threshold for q in qs],
               "soft_labels": qs, "problem_id": tree.problem.id, "meta": {"source": "tree-q"}}


def right_solutions(task: Task, tree: Tree) -> Iterator[dict]:
    """The distinct finished solutions with a right answer, as (prompt, completion) records."""
    for steps, node in tree.nodes.items():
        if node.done and steps and node.correct:
            yield {"problem_id": tree.problem.id, "prompt": task.prompt(tree.problem),
                   "completion": task.join_steps(steps).removesuffix(task.step_separator)}


def keyed(records: Iterable[dict[str, Any]], prefix: str) -> list[dict]:
    """Records numbered per problem: ``id`` = ``<problem id>/<prefix><k>`` (stable for a given tree)."""
    counts: dict[str, int] = {}
    out = []
    for r in records:
        k = counts.get(r["problem_id"], 0)
        counts[r["problem_id"]] = k + 1
        out.append({"id": f"{r['problem_id']}/{prefix}{k}", **r})
    return out
