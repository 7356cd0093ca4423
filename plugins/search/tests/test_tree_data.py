"""Search trees and OmegaPRM labels -> per-step Q values, Step-DPO pairs, value targets, right
solutions; every expected value below is worked out by hand from the tree drawn in the test."""

import json

import pytest

from openr_core.errors import DataError
from openr_search.tree_data import (read_trees, right_solutions, step_pairs, tree_from_search_record,
                                    trees_from_omegaprm, value_examples)
from openr_search.tree_job import write_tree_data


def node(i, parent, step, status="expanded", correct=None):
    n = {"id": i, "parent": parent, "step": step, "status": status}
    if status == "finished":
        n["done"], n["answer_correct"] = True, correct
    return n


# q0 ── a ── a1 (finished, right)
#    │    ├─ a2 (finished, wrong)
#    │    └─ a3 (dropped: no finished node below, no Q)
#    ├─ b (finished, right)
#    └─ c ── c1 (finished, wrong)
RECORD = {"id": "p0", "question": "q0", "gold": "1", "nodes": [
    node(0, None, "q0"), node(1, 0, "a"), node(2, 1, "a1", "finished", True), node(3, 1, "a2", "finished", False),
    node(4, 1, "a3", "dropped"), node(5, 0, "b", "finished", True), node(6, 0, "c"), node(7, 6, "c1", "finished", False)]}


def test_q_of_a_node_is_the_right_fraction_of_the_finished_solutions_below_it():
    tree = tree_from_search_record(RECORD, "t")
    q = {steps: n.q for steps, n in tree.nodes.items()}
    assert q == {(): 0.5, ("a",): 0.5, ("a", "a1"): 1.0, ("a", "a2"): 0.0, ("a", "a3"): None, ("b",): 1.0,
                 ("c",): 0.0, ("c", "c1"): 0.0}


def test_pairs_rank_siblings_by_q_with_a_margin(toy):
    tree = tree_from_search_record(RECORD, "t")
    pairs = [(p["prompt"], p["chosen"], p["rejected"], p["chosen_ends"], p["rejected_ends"], p["chosen_q"], p["rejected_q"])
             for p in step_pairs(toy.task, tree, margin=0.5)]
    # root: b 1.0 > a 0.5 > c 0.0, every difference >= 0.5; under a: a1 1.0 > a2 0.0 (a3 has no Q)
    assert pairs == [("Q:q0\n", "b", "a\n", True, False, 1.0, 0.5), ("Q:q0\n", "b", "c\n", True, False, 1.0, 0.0),
                     ("Q:q0\n", "a\n", "c\n", False, False, 0.5, 0.0), ("Q:q0\na\n", "a1", "a2", True, True, 1.0, 0.0)]
    wide = [(p["chosen"], p["rejected"]) for p in step_pairs(toy.task, tree, margin=0.6)]
    assert wide == [("b", "c\n"), ("a1", "a2")]


def test_value_targets_are_the_q_of_every_prefix_of_each_finished_solution():
    tree = tree_from_search_record(RECORD, "t")
    got = {tuple(r["completions"]): (r["soft_labels"], r["labels"]) for r in value_examples(tree)}
    assert got == {("a", "a1"): ([0.5, 1.0], [True, True]), ("a", "a2"): ([0.5, 0.0], [True, False]),
                   ("b",): ([1.0], [True]), ("c", "c1"): ([0.0, 0.0], [False, False])}


def test_right_solutions_are_the_finished_nodes_with_a_right_answer(toy):
    tree = tree_from_search_record(RECORD, "t")
    assert [(s["prompt"], s["completion"]) for s in right_solutions(toy.task, tree)] == [("Q:q0\n", "a\na1"), ("Q:q0\n", "b")]


def omega(steps, mc, pid="p0"):
    return {"prompt": "q0", "completions": steps, "labels": [True] * len(steps), "problem_id": pid, "meta": {"mc": mc}}


def test_omegaprm_solutions_sharing_a_prefix_form_one_tree_with_mc_as_q(toy):
    records = [("f:1", omega(["s1", "s2", "s3"], [1.0, 0.5, 0.0])), ("f:2", omega(["s1", "t2"], [None, 1.0]))]
    [tree] = trees_from_omegaprm(records)
    assert {s: n.q for s, n in tree.nodes.items()} == {(): None, ("s1",): 1.0, ("s1", "s2"): 0.5,
                                                       ("s1", "s2", "s3"): 0.0, ("s1", "t2"): 1.0}
    [pair] = step_pairs(toy.task, tree, margin=0.5)
    assert (pair["prompt"], pair["chosen"], pair["rejected"], pair["chosen_ends"]) == ("Q:q0\ns1\n", "t2", "s2\n", True)
    assert [r["soft_labels"] for r in value_examples(tree)] == [[1.0, 0.5, 0.0], [1.0, 1.0]]


def test_omegaprm_record_without_mc_is_one_line_naming_it():
    with pytest.raises(DataError, match=r"^f:1: meta.mc: expected one MC value"):
        trees_from_omegaprm([("f:1", {"prompt": "q", "completions": ["a"], "labels": [True]})])


def test_written_files_count_what_they_hold(tmp_path, toy):
    trees_file = tmp_path / "trees.jsonl"
    trees_file.write_text(json.dumps(RECORD) + "\n")
    summary = write_tree_data(toy.task, read_trees([str(trees_file)]), tmp_path / "out", margin=0.5)
    assert summary == {"trees": 1, "nodes": 8, "margin": 0.5, "pairs": 4, "values": 4, "solutions": 2}
    pairs = [json.loads(l) for l in (tmp_path / "out" / "pairs.jsonl").read_text().splitlines()]
    assert [p["id"] for p in pairs] == ["p0/pair0", "p0/pair1", "p0/pair2", "p0/pair3"]
