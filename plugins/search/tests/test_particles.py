import math

import pytest

from openr_search.common import Path, Round
from openr_search.particles import (GibbsConfig, ParticleConfig, ParticleFilter, ParticleGibbs, effective_sample_size,
                                    resampling_probabilities, sweep)

LOGIT_9 = math.log(9)


@pytest.fixture
def toy(toy):
    class Rotating(toy.Generator):
        """Requests for the same prompt take the tree's options in turn (across calls), so
        particles sharing a prefix get different, known steps."""

        def __init__(self, tree):
            super().__init__(tree)
            self.turn = {}

        def generate(self, requests):
            self.calls.append(len(requests))
            out = []
            for r in requests:
                question, _, rest = r.prompt.partition("\n")
                key = (question,) + tuple(s for s in rest.split("\n") if s)
                options = self.tree.get(key, ["ans 0"])
                k = self.turn.get(key, 0)
                self.turn[key] = k + 1
                step = options[k % len(options)]
                end = None if step.startswith("ans ") else "\n"
                out.append(toy.GenerationResult([toy.Completion(step, 2, "stop", None, end)], 1))
            return out

    from openr_core import Completion, GenerationResult
    toy.Completion, toy.GenerationResult, toy.Rotating = Completion, GenerationResult, Rotating
    return toy


def test_resampling_probabilities_are_softmax_of_log_odds_over_temperature():
    # weights 0.9 and 0.1 -> log-odds +-ln 9; softmax: 9/(9 + 1/9) = 81/82
    assert resampling_probabilities([LOGIT_9, -LOGIT_9], 1.0) == pytest.approx([81 / 82, 1 / 82])
    assert resampling_probabilities([LOGIT_9, -LOGIT_9], 2.0) == pytest.approx([0.9, 0.1])  # (odds)^(1/2): 3 vs 1/3
    assert resampling_probabilities([float("-inf"), 0.0], 1.0) == [0.0, 1.0]
    assert resampling_probabilities([float("-inf")] * 2, 1.0) == [0.5, 0.5]
    assert effective_sample_size([0.9, 0.1]) == pytest.approx(1 / 0.82)
    assert effective_sample_size([0.25] * 4) == pytest.approx(4)


def test_particle_filter_resamples_towards_the_prm_and_spends_one_step_per_particle(toy):
    tree = {("Q:q0",): ["a", "b", "c", "d"], ("Q:q0", "a"): ["a1", "ans 2"], ("Q:q0", "a", "a1"): ["ans 1"]}
    rm = toy.RM({"a": 0.999999, "b": 1e-6, "c": 1e-6, "d": 1e-6, "a1": 0.9, "ans 2": 0.2, "ans 1": 0.8})
    gen = toy.Rotating(tree)
    result = ParticleFilter(n=4).search(toy.P, task=toy.task, generator=gen, reward_model=rm)[0]
    # round 1: particles a b c d; a's odds are 1e12 times the others': all four resample to a.
    # round 2: the four copies of a step to a1, ans 2, a1, ans 2 (weights .9 .2 .9 .2 by the last score);
    #   resampled 4 draws from probs 81/(81+81+1/16+1/16)...: the ans-2 particles survive with p ~ 8e-4 each
    # round 3: the a1 particles end with ans 1 (.8)
    assert sorted(" ".join(s.steps) for s in result.candidates) == ["a a1 ans 1"] * 4
    assert result.answer == "1"
    assert gen.calls == [4, 4, 4] and rm.calls == [4, 4, 4]
    assert result.budget.generated_tokens == 3 * 4 * 2 and result.budget.generator_calls == 3
    assert result.budget.prm_tokens == 4 * 1 + 4 * 2 + 4 * 3


def test_ess_resampling_keeps_particles_while_the_weights_are_even(toy):
    tree = {("Q:q0",): ["a", "b", "c", "d"], ("Q:q0", "a"): ["ans 1"], ("Q:q0", "b"): ["ans 2"],
            ("Q:q0", "c"): ["ans 3"], ("Q:q0", "d"): ["ans 3"]}
    rm = toy.RM({"ans 1": 0.9, "ans 2": 0.1})  # steps a-d score 0.5 each: ESS = 4
    result = ParticleFilter(n=4, resample="ess", selection="majority").search(
        toy.P, task=toy.task, generator=toy.Rotating(tree), reward_model=rm)[0]
    assert [" ".join(s.steps) for s in result.candidates] == ["a ans 1", "b ans 2", "c ans 3", "d ans 3"]
    assert result.answer == "3"  # the vote over untouched particles


def test_reference_particle_is_weighted_by_its_prefix_and_always_survives(toy):
    tree = {("Q:q0",): ["c"], ("Q:q0", "c"): ["ans 3"], ("Q:q0", "a"): ["ans 9"]}
    config = ParticleConfig(n=2)
    # the reference's prefix [a] scores 1e-6 although the whole trajectory scores .999999 at the end:
    # weighing it by the trajectory (its_hub#54) would make the free slot copy it; by the prefix it keeps c
    ref = Path(0, ["a", "ans 1"], 4, True, [1e-6, 0.999999])
    gen, rm = toy.Rotating(tree), toy.RM({"c": 0.5, "ans 3": 0.7})
    rnd = Round(toy.P, toy.task, gen, rm, config)
    final = sweep(rnd, config, 2, {0: ref}, "")[0]
    assert [p.steps for p in final] == [["a", "ans 1"], ["c", "ans 3"]]
    assert gen.calls == [1, 1] and rm.calls == [1, 1]  # the reference is neither generated nor re-scored
    # a strong reference prefix is copied into the free slot, which then continues on its own
    ref = Path(0, ["a", "ans 1"], 4, True, [0.999999, 0.999999])
    rnd = Round(toy.P, toy.task, toy.Rotating(tree), toy.RM({"c": 1e-6}), config)
    final = sweep(rnd, config, 2, {0: ref}, "")[0]
    assert [p.steps for p in final] == [["a", "ans 1"], ["a", "ans 9"]]


def test_particle_gibbs_sweeps_share_the_budget(toy):
    tree = {("Q:q0",): ["a", "b"], ("Q:q0", "a"): ["ans 1"], ("Q:q0", "b"): ["ans 2"]}
    rm = toy.RM({"a": 0.999999, "b": 1e-6})
    gen = toy.Rotating(tree)
    result = ParticleGibbs(n=4, iterations=2).search(toy.P, task=toy.task, generator=gen, reward_model=rm)[0]
    # sweep 1 (2 particles): a, b -> both resample to a -> a ans 1 twice; the reference is a ans 1.
    # sweep 2: the free slot steps from the root to a (its third turn), then ans 1
    assert [" ".join(s.steps) for s in result.candidates] == ["a ans 1"] * 4 and result.answer == "1"
    assert gen.calls == [2, 2, 1, 1] and rm.calls == [2, 2, 1, 1]
    assert result.budget.generated_tokens == (2 + 2 + 1 + 1) * 2 and result.budget.generator_calls == 4
    assert result.budget.prm_tokens == 2 * 1 + 2 * 2 + 1 + 2
    with pytest.raises(ValueError, match="iterations"):
        GibbsConfig(n=4, iterations=3)


def test_particle_searchers_answer_the_same_batched_and_alone(toy):
    problems = toy.task.load("test", 3)
    tree = {(f"Q:q{i}",): ["a", "b", "c"] for i in range(3)}
    tree.update({(f"Q:q{i}", s): [f"ans {i}{s}", "x"] for i in range(3) for s in "abc"})
    rm = toy.RM({"a": 0.6, "b": 0.5, "c": 0.4, "x": 0.3})
    for searcher in (ParticleFilter(n=6, softmax_temperature=0.5), ParticleGibbs(n=6, iterations=2)):
        together = searcher.search(problems, task=toy.task, generator=toy.Rotating(tree), reward_model=rm)
        alone = [searcher.search([p], task=toy.task, generator=toy.Rotating(tree), reward_model=rm)[0] for p in problems]
        assert [(r.answer, r.budget, [s.steps for s in r.candidates]) for r in together] == \
               [(r.answer, r.budget, [s.steps for s in r.candidates]) for r in alone]
