"""Tree recording for `openr report`: nodes, scores, statuses, MCTS statistics, the chosen path."""

import pytest

from openr_search import mcts as M
from openr_search.record import recording, tree_record
from openr_search.sampling import BestOfN
from openr_search.tree import Beam


@pytest.fixture(autouse=True)
def _names(toy):
    global TASK, P, ScriptedGenerator, ScriptedRM
    TASK, P, ScriptedGenerator, ScriptedRM = toy.task, toy.P, toy.Generator, toy.RM


def by_path(record):
    """{steps tuple: node} from a record's parent links."""
    nodes = {n["id"]: n for n in record["nodes"]}

    def path(n):
        return () if n["parent"] is None else path(nodes[n["parent"]]) + (n["step"],)
    return {path(n): n for n in record["nodes"]}


BEAM_TREE = {("Q:q0",): ["a", "b", "c", "d"],
             ("Q:q0", "a"): ["a1", "a2"], ("Q:q0", "b"): ["b1"], ("Q:q0", "c"): ["c1"],
             ("Q:q0", "a", "a1"): ["ans 1"], ("Q:q0", "a", "a2"): ["ans 2"], ("Q:q0", "b", "b1"): ["ans 3"]}
BEAM_VALUES = {"a": 0.9, "b": 0.8, "c": 0.3, "d": 0.1, "a1": 0.95, "a2": 0.2, "b1": 0.7, "ans 1": 0.9, "ans 2": 0.9, "ans 3": 0.9}


def test_beam_tree_records_every_generated_node_with_its_score_status_and_the_chosen_path():
    searcher = Beam(n=4, width=2, reducer="min", temperature=1.0)
    with recording() as rec:
        result = searcher.search(P, task=TASK, generator=ScriptedGenerator(BEAM_TREE), reward_model=ScriptedRM(BEAM_VALUES))[0]
    record = tree_record(TASK, P[0], result, rec.trees["p0"])
    nodes = by_path(record)
    # generated: a b c d; a1 a2 b1; ans 1 under a1, ans 3 under b1 (a2 was cut by width 2)
    assert set(nodes) == {(), ("a",), ("b",), ("c",), ("d",), ("a", "a1"), ("a", "a2"), ("b", "b1"),
                          ("a", "a1", "ans 1"), ("b", "b1", "ans 3")}
    assert {k: n.get("score") for k, n in nodes.items() if k} == {
        ("a",): 0.9, ("b",): 0.8, ("c",): 0.3, ("d",): 0.1, ("a", "a1"): 0.95, ("a", "a2"): 0.2, ("b", "b1"): 0.7,
        ("a", "a1", "ans 1"): 0.9, ("b", "b1", "ans 3"): 0.9}
    status = {k: n["status"] for k, n in nodes.items()}
    assert status[("a",)] == status[("b",)] == status[("a", "a1")] == "expanded"
    assert status[("c",)] == status[("d",)] == status[("a", "a2")] == "dropped"
    assert status[("a", "a1", "ans 1")] == "finished" and nodes[("a", "a1", "ans 1")]["answer"] == "1"
    assert nodes[("a", "a1", "ans 1")]["answer_correct"] is True  # the toy's gold answer is "1"
    assert nodes[("b", "b1", "ans 3")]["answer_correct"] is False
    assert sorted(k for k, n in nodes.items() if n["chosen"]) == [(), ("a",), ("a", "a1"), ("a", "a1", "ans 1")]
    assert record["answer"] == "1" and record["correct"] is True


def test_mcts_nodes_carry_visits_and_q():
    tree = {("Q:q0",): ["a", "b"], ("Q:q0", "a"): ["ans 1", "ans 2"], ("Q:q0", "b"): ["ans 3"]}
    rm = ScriptedRM({"a": 0.8, "b": 0.4, "ans 1": 0.6, "ans 2": 0.2, "ans 3": 1.0})
    searcher = M.MCTS(n=100, expansions=2, c_puct=1.0, max_simulations=3, reducer="min", widen_below=None)
    with recording() as rec:
        result = searcher.search(P, task=TASK, generator=ScriptedGenerator(tree), reward_model=rm)[0]
    nodes = by_path(tree_record(TASK, P[0], result, rec.trees["p0"]))
    # by hand (test_searchers): root N3 W2.0, a N3 W2.0, b N1 W.4, ans 1 N2 W1.2, ans 2 N1 W.2
    assert {k: (n["visits"], round(n["q"], 4)) for k, n in nodes.items()} == {
        (): (3, 0.6667), ("a",): (3, 0.6667), ("b",): (1, 0.4), ("a", "ans 1"): (2, 0.6), ("a", "ans 2"): (1, 0.2)}
    assert [k for k, n in nodes.items() if n["chosen"]] == [(), ("a",), ("a", "ans 1")]
    assert nodes[("b",)]["status"] == "dropped"  # never expanded


def test_sampled_solutions_form_a_prefix_tree_with_per_step_scores():
    tree = {("Q:q0",): ["x", "y", "x"], ("Q:q0", "x"): ["ans 5", "ans 1", "ans 5"], ("Q:q0", "y"): ["ans 7"]}
    rm = ScriptedRM({"x": 0.9, "y": 0.6, "ans 5": 0.3, "ans 1": 0.8, "ans 7": 0.2})
    with recording() as rec:
        result = BestOfN(n=2, reducer="min").search(P, task=TASK, generator=ScriptedGenerator(tree), reward_model=rm)[0]
    nodes = by_path(tree_record(TASK, P[0], result, rec.trees["p0"]))
    # sample j follows option j at every step: x -> ans 5, y -> ans 7
    assert set(nodes) == {(), ("x",), ("x", "ans 5"), ("y",), ("y", "ans 7")}
    assert nodes[("x",)]["score"] == 0.9 and nodes[("x", "ans 5")]["score"] == 0.3
    assert nodes[("x",)]["status"] == "expanded" and nodes[("y", "ans 7")]["status"] == "finished"
    assert [k for k, n in nodes.items() if n["chosen"]] == [(), ("x",), ("x", "ans 5")]  # min .3 beats .2


def test_only_the_named_problems_are_recorded_and_nothing_without_a_recorder():
    problems = TASK.load("test", 2)
    with recording({"p1"}) as rec:
        Beam(n=2, width=1).search(problems, task=TASK, generator=ScriptedGenerator({}), reward_model=ScriptedRM({}))
    assert set(rec.trees) == {"p1"}
    from openr_search.common import Round
    assert Round(problems, TASK, None, None, Beam.Config()).recorder is None
