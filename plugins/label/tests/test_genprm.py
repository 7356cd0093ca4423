import attrs
import pytest

from openr_core import Completion, GenerationResult, Generator, Problem, ScoreRequest, get_component, hookimpl
from openr_core import plugins as plugins_module
from openr_core.plugins import Plugins
from openr_label.genprm import GenerativePRM, verdict_text
from openr_label.judge import JudgeLabeler, first_wrong_step, parse_step_verdicts


def test_step_verdicts_are_read_per_section_and_missing_ones_stay_unknown():
    text = ("Step 1: 3 + 4 is 7. Verdict: correct\n"
            "Step 2: 7 * 2 is 14, not 15; the verdict below is final.\nVerdict: Incorrect\n"
            "Step 3: uses 15, follows from step 2.\n"  # no verdict
            "Step 4: \\boxed{correct}\n"
            "Step 4: Verdict: incorrect\n"  # a repeated step: the first section wins
            "Step 9: Verdict: incorrect\n")  # out of range
    assert parse_step_verdicts(text, 5) == [True, False, None, True, None]
    assert parse_step_verdicts("Step 1: verdict: wrong ... verdict: right", 1) == [True]  # the last one counts
    assert parse_step_verdicts("", 2) == [None, None] and parse_step_verdicts(None, 1) == [None]
    assert parse_step_verdicts("__import__('os').system('x') Step 1: Verdict: correct", 1) == [None]  # not a line start
    assert first_wrong_step([True, False, None]) == 1 and first_wrong_step([True, True]) == -1
    assert first_wrong_step([True, None, False]) is None
    assert verdict_text(["3 + 4 is 7.", "7 * 2 is 14, not 15."], [True, False]) == (
        "Step 1: 3 + 4 is 7. Verdict: correct\nStep 2: 7 * 2 is 14, not 15. Verdict: incorrect\n")


class Verifier(Generator):
    """A registered generator replaying ``replies`` (cycled over the n samples of each request)."""

    replies: list = []
    requests: list = []

    @attrs.frozen
    class Config:
        model: str

    def generate(self, requests):
        Verifier.requests += list(requests)
        return [GenerationResult([Completion(Verifier.replies[j % len(Verifier.replies)], 7) for j in range(r.params.n)], 1)
                for r in requests]


class VerifierPlugin:
    @hookimpl
    def register_generators(self, register):
        register("scripted-verifier", Verifier)


@pytest.fixture
def verifier(monkeypatch):
    loaded = Plugins(strict=True).load_entry_points()
    assert loaded.register(VerifierPlugin(), "genprm-tests")
    monkeypatch.setattr(plugins_module, "_plugins", loaded)
    Verifier.requests = []
    return Verifier


def test_generative_prm_scores_are_mean_verdicts_with_a_defined_missing_score(verifier):
    verifier.replies = ["Step 1: fine. Verdict: correct\nStep 2: 7 * 2 is 14. Verdict: incorrect\nStep 3: ok",
                        "Step 1: Verdict: correct\nStep 2: Verdict: correct\nStep 3: Verdict: incorrect",
                        "no sections at all"]
    rm = get_component("reward_model", "generative-prm", verifier={"type": "scripted-verifier", "model": "v"},
                       samples=3, temperature=0.6, missing_score=0.25)
    assert isinstance(rm, GenerativePRM)
    problem = Problem("p0", "Start at 3. Add 4, then times 2.", "14")
    [scores] = rm.score([ScoreRequest(problem, ("3 + 4 = 7", "7 * 2 = 15", "Answer: 15"))])
    # step 1: (1 + 1 + 0.25) / 3; step 2: (0 + 1 + 0.25) / 3; step 3: (0.25 + 0 + 0.25) / 3
    assert scores.scores == pytest.approx([0.75, 1.25 / 3, 0.5 / 3]) and scores.n_tokens == 21
    [ask] = verifier.requests
    assert ask.prompt.startswith("Problem: Start at 3. Add 4, then times 2.\nSolution:\nStep 1: 3 + 4 = 7\nStep 2: 7 * 2 = 15\n")
    assert ask.params.n == 3 and ask.params.max_tokens == 3 * 32 and ask.params.temperature == 0.6
    assert rm.score([]) == []
    rm.close()


def test_llm_judge_per_step_takes_the_first_incorrect_verdict_and_drops_gaps(toy):
    problems = toy.task.load("train", 1)
    sols = [[("ok 0", "bad 1", "ans 0"), ("ok 0", "ok 1", "ans 1"), ("ok 0", "ok 1", "ans 0")]]
    gen = toy.Generator(verdicts=["Step 1: Verdict: correct\nStep 2: Verdict: incorrect",
                                  "Step 1: Verdict: correct Step 2 Verdict: correct\nStep 3: Verdict: correct",
                                  "Step 1: Verdict: correct\nStep 3: Verdict: incorrect"])
    judge = JudgeLabeler(per_step=True)
    out = judge.label_solutions(problems, sols, task=toy.task, generator=gen)
    # the second critique has no 'Step 2:' section at a line start: step 2 unknown before any error
    assert [e.labels for e in out] == [(True, False, False)]
    assert judge.stats["unparseable"] == 2
    assert "Verdict: correct' or 'Verdict: incorrect'" in gen.requests[0].prompt
    assert gen.requests[0].params.max_tokens == 24 * 3
