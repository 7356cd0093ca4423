"""rStar, PAV beam, compute-optimal and MCTS's budget, by hand on scripted generators and reward models."""

import pytest

from openr_search import mcts as M
from openr_search.compute_optimal import ComputeOptimal, Policy, allocate, quantile_edges
from openr_search.pav import PAVBeam
from openr_search.rstar import RStar, RStarConfig
from openr_search.tree import Beam


class Endless(dict):
    """Every node offers the steps x and y; no solution ever ends."""

    def get(self, key, default=None):
        return ["x", "y"]


def test_mcts_stops_at_n_partial_paths_when_nothing_completes(toy):
    rm = toy.RM({})  # .5 everywhere: below widen_below, so the root is re-expanded (duplicates, nothing new)
    searcher = M.MCTS(n=4, expansions=2, widen_below=0.6, max_expansions=4, max_simulations=64, max_steps=50)
    result = searcher.search(toy.P, task=toy.task, generator=toy.Generator(Endless()), reward_model=rm)[0]
    # sim 1: root -> x, y (4 tokens; deepest partial path 2 tokens, budget 4 x 2 = 8); sim 2: the root is
    # widened: 4 more tokens, 8 >= 8: stop (before the fix: 64 simulations, 256 tokens)
    assert result.meta["simulations"] == 2 and result.budget.generated_tokens == 8
    assert result.answer is None and result.candidates == ()


def test_mcts_budget_with_finished_solutions_is_n_times_their_mean_length(toy):
    root = M.Node(M.Path(0, []))
    root.children = [M.Node(M.Path(0, ["a", "ans 1"], 6, True), root), M.Node(M.Path(0, ["b"], 30), root)]
    assert M.expected_solution_tokens(root, 256) == 6  # the finished path, not the longer partial one
    assert M.expected_solution_tokens(M.Node(M.Path(0, [])), 256) == 256


def rstar_setup(toy):
    tree = {("Q:q0",): ["a", "b"], ("Q:q0", "a"): ["ans 1"], ("Q:q0", "b"): ["ans 2"]}
    rm = toy.RM({"a": 0.9, "b": 0.95, "ans 1": 0.9, "ans 2": 0.95})
    # the discriminator finishes a's prefix with a's answer, b's with another
    checker = toy.Generator({("Q:q0", "a"): ["ans 1"], ("Q:q0", "b"): ["ans 5"]})
    return tree, rm, checker


def test_rstar_prefers_candidates_the_discriminator_completes_alike(toy):
    tree, rm, checker = rstar_setup(toy)
    searcher = RStar(n=8, expansions=2, widen_below=None, checks=2, cut_low=0.5, cut_high=0.5)
    assert searcher.config.generation_n == 7  # 2 checks x 1 sample x half a solution each
    searcher.own.get = lambda kind, spec, default=None: checker
    gen = toy.Generator(tree)
    result = searcher.search(toy.P, task=toy.task, generator=gen, reward_model=rm)[0]
    # MCTS: sim 1 root -> a (.9), b (.95); sim 2 PUCT picks b (.95 + .25 > .9 + .25) -> ans 2;
    # sim 3: a: .9 + .5 * sqrt(2) / 2 = 1.254 beats b: .95 + .5 * sqrt(2) / 3 = 1.186 -> ans 1; exhausted.
    # Both candidates are cut after 1 of 2 steps: a's completion says 1 (consistent), b's says 5 (not)
    assert sorted(s.answer for s in result.candidates) == ["1", "2"]
    assert result.answer == "1" and result.meta["consistent"] == [k for k, s in enumerate(result.candidates) if s.answer == "1"]
    assert gen.calls == [1, 1, 1] and checker.calls == [2]
    assert result.budget.generated_tokens == 3 * 4 + 2 * 2 and result.budget.generator_calls == 4
    plain = M.MCTS(n=7, expansions=2, widen_below=None, final="value").search(
        toy.P, task=toy.task, generator=toy.Generator(tree), reward_model=rm)[0]
    assert plain.answer == "2"  # without the check, the PRM's favourite


def test_rstar_falls_back_to_all_candidates_when_none_is_consistent(toy):
    tree, rm, _ = rstar_setup(toy)
    searcher = RStar(n=8, expansions=2, widen_below=None, checks=2, cut_low=0.5, cut_high=0.5, selection="max")
    searcher.own.get = lambda kind, spec, default=None: toy.Generator({})  # completes everything with "ans 0"
    result = searcher.search(toy.P, task=toy.task, generator=toy.Generator(tree), reward_model=rm)[0]
    assert result.meta["consistent"] == [] and result.answer == "2"  # best value among all
    with pytest.raises(ValueError, match="discriminator"):
        RStarConfig(discriminator={"model": "x"})
    with pytest.raises(ValueError, match="no budget"):
        RStarConfig(n=2, checks=4)


def pav_setup(toy):
    tree = {("Q:q0",): ["a", "b"], ("Q:q0", "a"): ["ans 1"], ("Q:q0", "b"): ["ans 2"]}
    rm = toy.RM({"a": 0.6, "b": 0.5, "ans 1": 0.1, "ans 2": 0.9})
    return tree, rm


def test_pav_beam_ranks_by_prm_plus_progress_under_prover_rollouts(toy):
    tree, rm = pav_setup(toy)
    gen = toy.Generator(tree)
    result = PAVBeam(n=2, width=1, reducer="last", alpha=1.0).search(toy.P, task=toy.task, generator=gen, reward_model=rm)[0]
    # round 1: a (PRM .6) and b (.5); rollouts a -> ans 1 (.1), b -> ans 2 (.9): Q = .1, .9; V(root) = .5
    # effective: a .6 + (.1 - .5) = .2, b .5 + (.9 - .5) = .9 -> keep b. Round 2: b -> ans 2 (finished).
    assert [list(s.steps) for s in result.candidates] == [["b", "ans 2"]] and result.answer == "2"
    assert gen.calls == [1, 2, 1] and rm.calls == [4, 1]  # prover rollouts: one call; scored with the paths
    plain = Beam(n=2, width=1, reducer="last").search(toy.P, task=toy.task, generator=toy.Generator(tree), reward_model=rm)[0]
    assert plain.answer == "1"  # the PRM alone keeps a
    assert result.budget.generated_tokens == 2 * 2 + 2 * 2 + 2 * 2 and result.budget.generator_calls == 3
    assert result.budget.prm_tokens == 1 + 1 + 2 + 2 + 2
    # alpha 0 is plain beam
    assert PAVBeam(n=2, width=1, reducer="last", alpha=0.0).search(
        toy.P, task=toy.task, generator=toy.Generator(tree), reward_model=rm)[0].answer == "1"


def test_pav_beam_with_a_value_model(toy):
    tree, rm = pav_setup(toy)
    values = toy.RM({"a": 0.2, "b": 0.8})
    searcher = PAVBeam(n=2, width=1, reducer="last", value_model={"type": "scripted"})
    searcher.own.get = lambda kind, spec, default=None: values
    gen = toy.Generator(tree)
    result = searcher.search(toy.P, task=toy.task, generator=gen, reward_model=rm)[0]
    # a: .6 + (.2 - .5) = .3; b: .5 + (.8 - .5) = .8 -> b; no rollouts
    assert result.answer == "2" and gen.calls == [1, 1] and values.calls == [2, 1]


def test_allocation_maximises_dev_accuracy_within_the_average_budget():
    # bin 0 (hard): strategy 0 fails both, 1 solves both at twice the cost; bin 1 (easy): both solve
    correct = [[[False, False], [True, True]], [[True, True], [True, True]]]
    tokens = [[[4, 4], [8, 8]], [[4, 4], [8, 8]]]
    assert allocate(correct, tokens, 24) == (1, 0)  # 4 right at 24 tokens; (1, 1) also 4 right but 32
    assert allocate(correct, tokens, 16) == (0, 0)  # only the cheapest fits
    assert allocate(correct, tokens, 8) == (0, 0)   # nothing fits: the cheapest per bin
    assert quantile_edges([0.9, 0.3, 0.9, 0.3], 2) == (0.3,)
    edges = quantile_edges([0.0] * 5 + [0.5, 0.5, 1.0], 4)  # 2 values per bin, but ties share one
    assert edges == (0.0, 0.0, 0.5) and [Policy(edges, ()).bin(d) for d in (0.0, 0.5, 1.0)] == [0, 2, 3]
    assert [Policy((0.3,), (1, 0)).bin(d) for d in (0.2, 0.3, 0.9)] == [0, 0, 1]


def co_setup(toy):
    tree = {}
    for i in (0, 1):  # easy: every sample is g, ans 1
        tree[(f"Q:q{i}",)] = ["g"]
        tree[(f"Q:q{i}", "g")] = ["ans 1"]
    for i in (2, 3):  # hard: sample 0 goes w -> 7, sample 1 goes r -> 1
        tree[(f"Q:q{i}",)] = ["w", "r"]
        tree[(f"Q:q{i}", "w")] = ["ans 7"]
        tree[(f"Q:q{i}", "r")] = ["ans 1"]
    rm = toy.RM({"g": 0.9, "w": 0.2, "r": 0.4, "ans 1": 0.9, "ans 7": 0.9})
    strategies = [{"type": "majority", "n": 1}, {"type": "best-of-n", "n": 2}]
    return tree, rm, ComputeOptimal(n=4, probe=2, bins=2, dev_limit=4, strategies=strategies)


def test_compute_optimal_learns_a_strategy_per_difficulty_bin_on_dev(toy):
    tree, rm, searcher = co_setup(toy)
    problems = toy.task.load("test", 4)
    results = searcher.search(problems, task=toy.task, generator=toy.Generator(tree), reward_model=rm)
    # probe (2 samples of 4 tokens): easy problems score min .9, hard (.2 + .4) / 2 = .3: edge .3.
    # budget: 4 solutions of 4 tokens minus the 8-token probe = 8 tokens per problem (32 on dev):
    # hard bin: best-of-2 (8 tokens, right) -- majority@1 answers 7; easy bin: majority@1 (4 tokens)
    assert searcher.policy.edges == pytest.approx((0.3,)) and searcher.policy.choice == (1, 0)
    assert [r.meta["bin"] for r in results] == [1, 1, 0, 0] and [r.answer for r in results] == ["1"] * 4
    assert [r.budget.generated_tokens for r in results] == [8 + 4, 8 + 4, 8 + 8, 8 + 8]
    assert [r.budget.prm_tokens for r in results] == [4, 4, 8, 8]
    assert sum(r.budget.generated_tokens for r in results) / 4 <= 4 * 4  # the average budget holds
    alone = [searcher.search([p], task=toy.task, generator=toy.Generator(tree), reward_model=rm)[0] for p in problems]
    assert [(r.answer, r.budget) for r in alone] == [(r.answer, r.budget) for r in results]


def test_rstar_and_pav_answer_the_same_batched_and_alone(toy):
    problems = toy.task.load("test", 3)
    tree = {(f"Q:q{i}",): ["a", "b", "c"] for i in range(3)}
    tree.update({(f"Q:q{i}", s): [f"ans {i}{s}", "x"] for i in range(3) for s in "abc"})
    rm = toy.RM({"a": 0.6, "b": 0.5, "c": 0.4, "x": 0.3, "ans 0b": 0.9})
    for searcher in (RStar(n=8, expansions=3, checks=2), PAVBeam(n=3, width=2)):
        together = searcher.search(problems, task=toy.task, generator=toy.Generator(tree), reward_model=rm)
        alone = [searcher.search([p], task=toy.task, generator=toy.Generator(tree), reward_model=rm)[0] for p in problems]
        assert [(r.answer, r.budget) for r in together] == [(r.answer, r.budget) for r in alone]
