import pytest

from openr_search import mcts as M
from openr_search.sampling import BestOfN, Greedy, Majority
from openr_search.tree import DVTS, Beam



@pytest.fixture(autouse=True)
def _names(toy):
    global TASK, P, ScriptedGenerator, ScriptedRM
    TASK, P, ScriptedGenerator, ScriptedRM = toy.task, toy.P, toy.Generator, toy.RM


def test_beam_keeps_the_best_width_paths_and_prunes():
    tree = {("Q:q0",): ["a", "b", "c", "d"],
            ("Q:q0", "a"): ["a1", "a2"], ("Q:q0", "b"): ["b1"], ("Q:q0", "c"): ["c1"],
            ("Q:q0", "a", "a1"): ["ans 1"], ("Q:q0", "a", "a2"): ["ans 2"], ("Q:q0", "b", "b1"): ["ans 3"]}
    values = {"a": 0.9, "b": 0.8, "c": 0.3, "d": 0.1, "a1": 0.95, "a2": 0.2, "b1": 0.7, "ans 1": 0.9, "ans 2": 0.9, "ans 3": 0.9}
    gen, rm = ScriptedGenerator(tree), ScriptedRM(values)
    result = Beam(n=4, width=2, reducer="min", temperature=1.0).search(P, task=TASK, generator=gen, reward_model=rm)[0]
    # round 1: a .9, b .8 kept (c, d pruned by width); round 2: a -> a1 a2 (2 each), b -> b1 (x2, deduped)
    # ranked: a1 (min .9) > b1 (.7) > a2 (.2); width 2 keeps a1, b1; both end with an answer
    assert [list(s.steps) for s in result.candidates] == [["a", "a1", "ans 1"], ["b", "b1", "ans 3"]]
    assert result.answer == "1" and result.meta["values"] == [0.9, 0.7]
    assert gen.calls == [1, 2, 2] and rm.calls == [4, 3, 2]  # one call per round for all open paths
    pruned = Beam(n=4, width=2, prune_below=0.65).search(P, task=TASK, generator=ScriptedGenerator(tree), reward_model=rm)[0]
    assert [list(s.steps) for s in pruned.candidates] == [["a", "a1", "ans 1"], ["b", "b1", "ans 3"]]
    pruned_hard = Beam(n=4, width=2, prune_below=0.75).search(P, task=TASK, generator=ScriptedGenerator(tree), reward_model=rm)[0]
    assert [list(s.steps) for s in pruned_hard.candidates] == [["a", "a1", "ans 1"]]  # path b (min .7) pruned


def test_budget_accounting_sums_tokens_calls_and_prm_tokens():
    tree = {("Q:q0",): ["a", "b"], ("Q:q0", "a"): ["ans 1"], ("Q:q0", "b"): ["ans 2"]}
    rm = ScriptedRM({"a": 0.9, "b": 0.1})
    result = Beam(n=2, width=2).search(P, task=TASK, generator=ScriptedGenerator(tree), reward_model=rm)[0]
    # round 1: 2 children x 2 tokens; round 2: 1 child each for a and b
    assert result.budget.generated_tokens == 2 * 2 + 2 * 2
    assert result.budget.generator_calls == 2
    assert result.budget.prm_tokens == 2 * 1 + 2 * 2  # scored paths: [a], [b], then [a, ans 1], [b, ans 2]


def test_best_of_n_reducers_and_selection():
    tree = {("Q:q0",): ["x", "y", "z"], ("Q:q0", "x"): ["ans 5"], ("Q:q0", "y"): ["ans 7"], ("Q:q0", "z"): ["ans 7"]}
    rm = ScriptedRM({"x": 0.9, "y": 0.6, "z": 0.5, "ans 5": 0.95, "ans 7": 0.2})
    def run(**kw):
        return BestOfN(n=3, **kw).search(P, task=TASK, generator=ScriptedGenerator(tree), reward_model=rm)[0].answer
    assert run(reducer="min", selection="max") == "5"       # min: .9 vs .2 vs .2
    assert run(reducer="last", selection="majority") == "7"  # two of three say 7
    assert run(reducer="mean", selection="weighted") == "5"  # 0.925 vs 0.4 + 0.35
    assert Majority(n=3).search(P, task=TASK, generator=ScriptedGenerator(tree))[0].answer == "7"
    assert Greedy().search(P, task=TASK, generator=ScriptedGenerator(tree))[0].answer == "5"


def test_vote_tie_goes_to_the_first_answer():
    tree = {("Q:q0",): ["u", "v"], ("Q:q0", "u"): ["ans 3"], ("Q:q0", "v"): ["ans 4"]}
    assert Majority(n=2).search(P, task=TASK, generator=ScriptedGenerator(tree))[0].answer == "3"


def test_dvts_subtrees_are_greedy_by_prm():
    tree = {("Q:q0",): ["a", "b"], ("Q:q0", "a"): ["ans 1", "ans 2"], ("Q:q0", "b"): ["ans 3"]}
    rm = ScriptedRM({"a": 0.9, "b": 0.5, "ans 1": 0.3, "ans 2": 0.8, "ans 3": 0.9})
    result = DVTS(n=4, expansions=2).search(P, task=TASK, generator=ScriptedGenerator(tree), reward_model=rm)[0]
    # two subtrees; each expands the root into (a, b), keeps a (.9), then keeps ans 2 (min .8)
    assert [list(s.steps) for s in result.candidates] == [["a", "ans 2"], ["a", "ans 2"]]
    assert result.answer == "2"


def test_mcts_visits_and_backed_up_values_by_hand():
    tree = {("Q:q0",): ["a", "b"], ("Q:q0", "a"): ["ans 1", "ans 2"], ("Q:q0", "b"): ["ans 3"]}
    rm = ScriptedRM({"a": 0.8, "b": 0.4, "ans 1": 0.6, "ans 2": 0.2, "ans 3": 1.0})
    searcher = M.MCTS(n=100, expansions=2, c_puct=1.0, max_simulations=3, reducer="min", widen_below=None)
    roots = []
    original = M.Node
    result = searcher.search(P, task=TASK, generator=ScriptedGenerator(tree), reward_model=rm)[0]
    # sim 1: expand root -> a (N1 W.8), b (N1 W.4); back up the best child: root N1 W.8
    # sim 2: PUCT at root: a: .8 + .5*sqrt(1)/2 = 1.05; b: .4 + .25 = .65 -> expand a ->
    #        ans 1 (min .6), ans 2 (min .2); back up .6: a N2 W1.4, root N2 W1.4
    # sim 3: root: a: .7 + .5*sqrt(2)/3 = .936; b: .4 + .5*sqrt(2)/2 = .754 -> a;
    #        a: ans 1: .6 + .354 = .954; ans 2: .2 + .354 -> ans 1 is terminal: re-valued .6
    #        ans 1 N2 W1.2, a N3 W2.0, root N3 W2.0
    assert result.meta["simulations"] == 3 and result.meta["root_visits"] == 3
    # final by visits: root -> a (3 visits vs 1) -> ans 1 (2 vs 1)
    assert result.answer == "1"
    by_value = M.MCTS(n=100, expansions=2, max_simulations=3, final="value", widen_below=None).search(
        P, task=TASK, generator=ScriptedGenerator(tree), reward_model=rm)[0]
    assert by_value.answer == "1"  # min(.8, .6) = .6 beats .4 and .2


def test_mcts_puct_and_backup_units():
    root = M.Node(M.Path(0, []))
    a, b = M.Node(M.Path(0, ["a"]), root, 0.5), M.Node(M.Path(0, ["b"]), root, 0.5)
    root.children = [a, b]
    M.backup(a, 0.8)
    M.backup(b, 0.4)
    assert (root.visits, root.value_sum) == (2, pytest.approx(1.2))
    assert M.puct_child(root, 1.0) is a
    M.backup(a, 0.0)
    M.backup(a, 0.0)  # a: Q = .8/3 = .267 + .5*2/4 = .517 ; b: .4 + .5*2/2 = .9
    assert M.puct_child(root, 1.0) is b
