import math
import re

import attrs
import pytest
import yaml

from openr_core import Completion, ConfigError, GenerationResult, Generator, LabelledExample, get_component, hookimpl
from openr_core import plugins as plugins_module
from openr_core.plugins import Plugins
from openr_label.common import first_error_of
from openr_label.consensus import ConsensusLabeler
from openr_label.judge import JudgeLabeler, parse_verdict
from openr_label.mc import MCLabeler
from openr_label.omegaprm import OmegaPRMLabeler, selection_score

CASES = [(n, e) for n in (1, 2, 3, 5, 8, 13) for e in [-1, *range(n)]]


def fixture(toy):
    problems = toy.task.load("train", 2)
    sols = [[toy.solution(n, e) for n, e in CASES[::2]], [toy.solution(n, e) for n, e in CASES[1::2]]]
    return problems, sols


def test_omegaprm_binary_search_finds_the_known_first_error_in_log_rounds(toy):
    problems, sols = fixture(toy)
    gen = toy.Generator()
    lab = OmegaPRMLabeler(k=4)
    out = lab.label_solutions(problems, sols, task=toy.task, generator=gen)
    expected = [e for group in (CASES[::2], CASES[1::2]) for _, e in group]
    assert [ex.first_error for ex in out] == expected
    for ex, (_, e) in zip(out, [c for g in (CASES[::2], CASES[1::2]) for c in g]):
        n = len(ex.labels)
        assert ex.labels == tuple(e == -1 or i < e for i in range(n))
        # right answers are searched too (search_correct): at most one probe per round
        assert ex.meta["rollouts"] <= 4 * math.ceil(math.log2(n)) if n > 1 else ex.meta["rollouts"] == 0
        visited = [i for i, v in enumerate(ex.meta["mc"][:-1]) if v is not None]
        assert len(visited) >= ex.meta["search_rounds"]  # prefixes other solutions probed count too
    # one generator call per round, for every solution of both problems together
    assert len(gen.calls) == max(ex.meta["search_rounds"] for ex in out) == math.ceil(math.log2(13))
    assert sum(ex.meta["rollouts"] for ex in out) == sum(r.params.n for r in gen.requests) == 4 * len(gen.requests)


def test_omegaprm_searches_right_answers_with_compensating_errors(toy):
    problems = toy.task.load("train", 1)
    sols = [[("bad 0", "ok 1", "ok 2", "ans 1"), ("ok 0", "ok 1", "bad 2", "ans 1"), ("ok 0", "ok 1", "ans 1")]]
    out = OmegaPRMLabeler(k=2).label_solutions(problems, sols, task=toy.task, generator=toy.Generator())
    assert [e.first_error for e in out] == [0, 2, -1]
    assert all(e.meta["rollouts"] > 0 for e in out)
    lazy = OmegaPRMLabeler(k=2, search_correct=False)
    out = lazy.label_solutions(problems, sols, task=toy.task, generator=toy.Generator())
    assert [e.first_error for e in out] == [-1, -1, -1] and lazy.stats["rollouts"] == 0


def test_omegaprm_binary_search_on_non_monotone_mc_finds_a_boundary_not_the_first_zero(toy):
    """MC = 0 after step 0 but > 0 again later (an error the policy recovers from): mc's linear
    scan finds step 0, the binary search probes the midpoint first and settles on a later one."""
    problems = toy.task.load("train", 1)
    steps = ("bad 0", "fix 1", "ok 2", "bad 3", "ans 0")  # 'fix' makes rollouts succeed again

    class Recovering(toy.Generator):
        def generate(self, requests):
            out = super().generate(requests)
            return [GenerationResult([Completion("ans 1", 2)] * r.params.n, 1)
                    if "fix" in r.prompt and "bad 3" not in r.prompt else res for r, res in zip(requests, out)]

    mc = MCLabeler(k=2).label_solutions(problems, [[steps]], task=toy.task, generator=Recovering())[0]
    om = OmegaPRMLabeler(k=2).label_solutions(problems, [[steps]], task=toy.task, generator=Recovering())[0]
    assert mc.soft_labels == (0.0, 1.0, 1.0, 0.0, 0.0)
    assert mc.first_error == 0 and om.first_error == 3
    assert om.meta["mc"] == [None, 1.0, 1.0, 0.0, 0.0]


def test_omegaprm_exponential_search_finds_the_first_error_before_a_cancelling_one(toy):
    """The fixture above: probing 1, 2, 4 steps finds the MC = 0 at step 0 that bisection hides."""
    problems = toy.task.load("train", 1)
    steps = ("bad 0", "fix 1", "ok 2", "bad 3", "ans 0")

    class Recovering(toy.Generator):
        def generate(self, requests):
            out = super().generate(requests)
            return [GenerationResult([Completion("ans 1", 2)] * r.params.n, 1)
                    if "fix" in r.prompt and "bad 3" not in r.prompt else res for r, res in zip(requests, out)]

    om = OmegaPRMLabeler(k=2, search="exponential").label_solutions(problems, [[steps]], task=toy.task,
                                                                      generator=Recovering())[0]
    assert om.first_error == 0 and om.meta["mc"] == [0.0, None, None, None, 0.0]
    assert om.meta["rollouts"] == 2 and om.meta["search_rounds"] == 1


def test_omegaprm_exponential_search_finds_every_known_first_error(toy):
    problems, sols = fixture(toy)
    out = OmegaPRMLabeler(k=4, search="exponential").label_solutions(problems, sols, task=toy.task,
                                                                     generator=toy.Generator())
    cases = [c for group in (CASES[::2], CASES[1::2]) for c in group]
    assert [ex.first_error for ex in out] == [e for _, e in cases]
    for ex, (n, e) in zip(out, cases):
        # doubling up to the first bad prefix, then bisecting the gap: ~2 log2(e + 2) probes
        bound = 2 * math.ceil(math.log2(e + 2)) if e >= 0 else 2 * math.ceil(math.log2(n + 1))
        assert ex.meta["search_rounds"] <= max(1, bound), (n, e, ex.meta["search_rounds"])


def test_omegaprm_reuses_rollouts_that_pass_through_later_prefixes(toy):
    """Rollouts write the next 'ok' steps before answering, so a probe's rollouts are also samples
    of the longer prefixes: with reuse, later probes need fewer (here no) new rollouts, every
    estimate still rests on k samples and the labels do not change."""
    problems = toy.task.load("train", 2)
    sols = [[toy.solution(n, e) for n, e in CASES[::2]], [toy.solution(n, e) for n, e in CASES[1::2]]]
    outs, gens = [], []
    for reuse in (False, True):
        gen = toy.Generator(continue_steps=3)
        outs.append(OmegaPRMLabeler(k=4, reuse_rollouts=reuse).label_solutions(problems, sols, task=toy.task,
                                                                            generator=gen))
        gens.append(gen)
    plain, reused = outs
    assert [e.labels for e in plain] == [e.labels for e in reused]
    assert [e.meta["mc"] for e in plain] == [e.meta["mc"] for e in reused]
    spent = [sum(e.meta["rollouts"] for e in out) for out in outs]
    assert spent[0] == sum(r.params.n for r in gens[0].requests)
    assert spent[1] == sum(r.params.n for r in gens[1].requests) < spent[0]
    assert any(r.params.n < 4 for r in gens[1].requests) or len(gens[1].requests) < len(gens[0].requests)


def test_mc_hard_and_soft_labels_and_one_batched_call(toy):
    problems, sols = fixture(toy)
    gen = toy.Generator(fail_every=4)  # a good prefix gets 3 of 4 rollouts right
    out = MCLabeler(k=4).label_solutions(problems, sols, task=toy.task, generator=gen)
    assert len(gen.calls) == 1
    for ex in out:
        e = first_error_of([not s.startswith("bad") and s != "ans 0" for s in ex.completions])
        n = len(ex.labels)
        soft = [0.75 if (e == -1 or i < e) else 0.0 for i in range(n - 1)]
        soft.append(1.0 if e == -1 else 0.0)  # the whole solution is graded, not rolled out
        assert ex.soft_labels == tuple(soft)
        assert ex.labels == tuple(e == -1 or i < e for i in range(n))
    # rollouts are counted once per distinct prefix: (n - 1) * k per solution, shared prefixes once
    assert sum(ex.meta["rollouts"] for ex in out) == 4 * len(gen.requests)
    assert sum(ex.meta["tokens"] for ex in out) == 2 * 4 * len(gen.requests)


def test_mc_non_monotone_option(toy):
    problems = toy.task.load("train", 1)
    gen = toy.Generator()
    steps = ("ok 0", "bad 1", "ok 2", "ans 0")  # rollouts after 'bad 1' all fail
    ex = MCLabeler(k=2, monotone=False).label_solutions(problems, [[steps]], task=toy.task, generator=gen)[0]
    assert ex.labels == (True, False, False, False) and ex.soft_labels == (1.0, 0.0, 0.0, 0.0)


def test_omegaprm_and_mc_agree_on_monotone_fixture_with_fewer_rollouts(toy):
    problems, sols = fixture(toy)
    mc = MCLabeler(k=4).label_solutions(problems, sols, task=toy.task, generator=toy.Generator())
    om = OmegaPRMLabeler(k=4).label_solutions(problems, sols, task=toy.task, generator=toy.Generator())
    assert [e.first_error for e in mc] == [e.first_error for e in om]
    assert sum(e.meta["rollouts"] for e in om) <= 0.5 * sum(e.meta["rollouts"] for e in mc)


def test_label_samples_seeded_solutions_then_labels_them(toy):
    problems = toy.task.load("train", 2)
    solutions = {"p0": [toy.solution(4, 2), toy.solution(3, -1)], "p1": [toy.solution(5, 0)]}
    runs = []
    for _ in range(2):
        gen = toy.Generator(solutions)
        runs.append([(e.problem_id, e.completions, e.labels) for e in
                     OmegaPRMLabeler(n_solutions=2, k=2).label(problems, task=toy.task, generator=gen)])
        assert gen.requests[0].params.seed == gen.requests[0].params.seed
    assert runs[0] == runs[1]
    assert [r[0] for r in runs[0]] == ["p0", "p0", "p1"]  # p1's two samples are deduplicated
    assert [first_error_of(r[2]) for r in runs[0]] == [2, -1, 0]


def test_search_budget_picks_by_q_plus_u(toy):
    problems = toy.task.load("train", 1)
    sols = [[("bad a", "x y z w", "ans 0"), ("bad b", "ans 0"), ("bad b", "q", "ans 0"), ("ok", "ans 1")]]
    # without exploration: the two shortest wrong solutions (beta^(len/L) decides)
    lab = OmegaPRMLabeler(k=2, search_budget=2, length_scale=1.0, c_puct=0.0, search_correct=False)
    out = lab.label_solutions(problems, sols, task=toy.task, generator=toy.Generator())
    assert [e.completions for e in out] == [sols[0][1], sols[0][2], sols[0][3]]
    assert lab.stats["unsearched"] == 1
    # with strong exploration the second pick leaves the already-searched first step 'bad b'
    lab = OmegaPRMLabeler(k=2, search_budget=2, length_scale=1.0, c_puct=1.0, search_correct=False)
    out = lab.label_solutions(problems, sols, task=toy.task, generator=toy.Generator())
    assert [e.completions for e in out] == [sols[0][0], sols[0][1], sols[0][3]]
    assert [e.first_error for e in out] == [0, 0, -1]
    assert selection_score(1.0, 0, 0, 0) == 1.0
    assert selection_score(0.0, 500, 0, 4) == pytest.approx(0.5 * 0.9 + 0.125 * 2)


@pytest.mark.parametrize("text,n,expected", [
    ("first error: step 3", 5, 2), ("Step 3", 5, 2), ("-1", 5, -1), ("none", 5, -1), ("All correct.", 5, -1),
    ("All steps are correct", 4, -1), ("\\boxed{2}", 5, 1), ("The answer is \\boxed{-1}", 5, -1), (" 4", 5, 3),
    ("First wrong step: 1.", 3, 0), ("step #2 is wrong", 3, 1), ("Step 9", 5, None), ("0", 5, None),
    ("\\boxed{7}", 5, None), ("", 5, None), ("ann has 57 coins", 5, None), ("65 - 3 = 62", 5, None),
    ("banana", 5, None), ("no errors", 3, -1), ("step three", 3, None),
])
def test_judge_parsing(text, n, expected):
    assert parse_verdict(text, n) == expected


def test_judge_drops_and_counts_unparseable(toy):
    problems = toy.task.load("train", 1)
    sols = [[toy.solution(3, 1), toy.solution(3, -1), toy.solution(4, 0), toy.solution(2, 1)]]
    gen = toy.Generator(verdicts=["Step 2", "blah", "-1", "Step 7"])
    lab = get_component("labeler", "llm-judge")
    out = lab.label_solutions(problems, sols, task=toy.task, generator=gen)
    assert len(gen.calls) == 1
    assert [(e.completions, e.first_error) for e in out] == [(sols[0][0], 1), (sols[0][2], -1)]
    assert lab.stats["unparseable"] == 2 and out[-1].meta["unparseable_so_far"] == 1


def ex(pid, steps, first):
    return LabelledExample("q", steps, [first < 0 or i < first for i in range(len(steps))], None, pid, {"rollouts": 1})


def test_consensus_keeps_only_agreeing_first_errors():
    lab = ConsensusLabeler(first={"type": "mc", "k": 2}, second={"type": "omegaprm", "k": 2})
    a = [ex("p", ("a", "b"), 1), ex("p", ("c", "d"), -1), ex("q", ("e",), 0), ex("q", ("f",), 0)]
    b = [ex("p", ("a", "b"), 1), ex("p", ("c", "d"), 0), ex("q", ("e",), 0)]  # ('f',) dropped by second
    kept = lab.combine(a, b)
    assert [k.completions for k in kept] == [("a", "b"), ("e",)]
    assert kept[0].meta["kept_fraction"] == 0.5 and kept[0].meta["rollouts"] == 2
    assert lab.stats == {"candidates": 4, "kept": 2}


def test_consensus_end_to_end_with_a_disagreeing_judge(toy):
    problems = toy.task.load("train", 1)
    solutions = {"p0": [toy.solution(3, 1), toy.solution(3, -1), toy.solution(4, 0)]}
    gen = toy.Generator(solutions, verdicts=["Step 2", "Step 1", "nonsense"])
    lab = get_component("labeler", "consensus", first={"type": "omegaprm", "n_solutions": 3, "k": 2},
                        second={"type": "llm-judge"})
    out = list(lab.label(problems, task=toy.task, generator=gen))
    assert [e.completions for e in out] == [solutions["p0"][0]]
    assert out[0].meta["kept_fraction"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("first,where", [({"type": "mc", "kk": 2}, "first.kk: unknown key"),
                                         ({"type": "nope"}, "first.type"), ({"type": "mc", "k": "x"}, "first.k")])
def test_consensus_sections_are_validated_like_components(first, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        get_component("labeler", "consensus", first=first)
    with pytest.raises(ConfigError, match="second"):
        get_component("labeler", "consensus", second={"type": "omegaprm", "k": 0})


class Completer(Generator):
    """A registered generator whose section names a ``model``; rollouts are scripted."""

    instances: list = []
    scripted_class: type | None = None  # the toy's ScriptedGenerator (set by the fixture)

    @attrs.frozen
    class Config:
        model: str

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        self.scripted = Completer.scripted_class()
        Completer.instances.append(self)

    def generate(self, requests):
        return self.scripted.generate(requests)


class CompleterPlugin:
    @hookimpl
    def register_generators(self, register):
        register("scripted", Completer)


@pytest.fixture
def with_completer(monkeypatch, toy):
    """The installed plugins plus generator 'scripted' (a :class:`Completer`)."""
    Completer.scripted_class = toy.Generator
    loaded = Plugins(strict=True).load_entry_points()
    assert loaded.register(CompleterPlugin(), "completer-tests")
    monkeypatch.setattr(plugins_module, "_plugins", loaded)
    Completer.instances.clear()
    return loaded


@pytest.mark.parametrize("cls", [MCLabeler, OmegaPRMLabeler])
def test_rollouts_come_from_the_completer_and_solutions_from_the_generator(toy, with_completer, cls):
    sampler = toy.Generator({"p0": [toy.solution(4, 2)], "p1": [toy.solution(3, -1)]})
    labeler = cls(n_solutions=1, k=2, completer={"type": "scripted", "model": "m"})
    assert Completer.instances == []  # built on first use
    out = list(labeler.label(toy.task.load("train", 2), task=toy.task, generator=sampler))
    assert [first_error_of(e.labels) for e in out] == [2, -1]
    [completer] = Completer.instances  # built once, from the section
    assert completer.config.model == "m"
    assert sampler.requests and all(r.prompt.endswith(":p0\n") or r.prompt.endswith(":p1\n") for r in sampler.requests)
    assert completer.scripted.requests and not any(r.prompt.endswith(("p0\n", "p1\n")) for r in completer.scripted.requests)
    labeler.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"type": "transformers", "modle": "x"}, "completer.modle: unknown key (did you mean 'model'?)"),
        ("transformers", "completer.model: required key is missing"),
        ({"type": "scripted"}, "completer.model: required key is missing"),
        ({"type": "scripted", "model": 3}, "completer.model: expected a string, got an integer 3"),
        ({"type": "nope", "model": "m"}, "completer.type: unknown generator 'nope'"),
        (["scripted"], "completer: expected a generator section like {type: NAME, ...}, got a list"),
    ],
)
def test_nested_generator_sections_are_checked_like_top_level_ones(with_completer, section, message):
    for cls in (MCLabeler, OmegaPRMLabeler):
        with pytest.raises(ConfigError) as info:
            cls(completer=section)
        assert str(info.value) == f"{cls.__name__}: {message}" or str(info.value).startswith(f"{cls.__name__}: {message}")
    with pytest.raises(ConfigError, match=re.escape(f"critic{message.removeprefix('completer')}")):
        JudgeLabeler(critic=section)


def test_python_fields_are_checked_like_yaml(with_completer):
    with pytest.raises(ConfigError, match=r"^MCLabeler: temperature: expected a number, got a string 'hot'$"):
        MCLabeler(temperature="hot")
    with pytest.raises(ConfigError, match=r"^MCLabeler: temperature: expected a number"):
        MCLabeler(MCLabeler.Config(temperature="hot"))
    with pytest.raises(ConfigError, match=r"^OmegaPRMLabeler: k: must be >= 1: 0$"):
        OmegaPRMLabeler(k=0)
    with pytest.raises(ConfigError, match=r"^ConsensusLabeler: keep: 'both' is not one of 'first', 'second'$"):
        ConsensusLabeler(keep="both")
    assert MCLabeler(temperature=1).config.temperature == 1.0  # an int is a number, as in YAML


def test_validate_checks_nested_sections(with_completer, tmp_path):
    from click.testing import CliRunner

    from openr_core.cli import cli

    config = tmp_path / "label.yaml"
    config.write_text("job: label\ntask: arith\nlabeler:\n  type: mc\n  completer: {type: transformers, modle: x}\n")
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"openr: error: {config}: labeler.completer.modle: unknown key")
    config.write_text("job: label\ntask: arith\nlabeler:\n  type: consensus\n  second: {type: mc, kk: 2}\n")
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"openr: error: {config}: labeler.second.kk: unknown key")
    config.write_text("job: label\ntask: arith\nlabeler: {type: consensus, first: {type: llm-judge, critic: scripted}}\n")
    result = CliRunner().invoke(cli, ["validate", str(config), "--show"])
    assert result.exit_code == 2 and "labeler.first.critic.model: required key is missing" in result.stderr
    config.write_text("job: label\ntask: arith\nlabeler: {type: consensus, first: {type: llm-judge, critic: {type: scripted, model: m}}}\n")
    result = CliRunner().invoke(cli, ["validate", str(config), "--show"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)["labeler"]
    assert shown["first"]["critic"] == {"type": "scripted", "model": "m"}
    assert shown["second"]["type"] == "omegaprm" and shown["second"]["k"] == 8  # the default section, resolved


def test_consensus_second_must_label_given_solutions_at_validate_time(with_completer, tmp_path):
    from click.testing import CliRunner

    from openr_core.cli import cli

    config = tmp_path / "label.yaml"
    config.write_text("job: label\ntask: arith\nlabeler: {type: consensus, second: arith-truth}\n")
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"openr: error: {config}: labeler.second: must be a labeler that labels given "
                                     "solutions; 'arith-truth' cannot")
    with pytest.raises(ConfigError, match=r"^ConsensusLabeler: second: must be a labeler that labels given solutions"):
        ConsensusLabeler(second="arith-truth")


def test_numbers_that_make_no_labeller_sense_fail_validate():
    """A negative alpha made OmegaPRM's score complex (a crash mid-run); arith-truth with no
    temperatures and no reference labelled nothing and exited 0."""
    from openr_arith.truth import ArithTruthLabeler

    with pytest.raises(ConfigError, match=r"^OmegaPRMLabeler: alpha: must be >= 0: -1.0$"):
        OmegaPRMLabeler(alpha=-1)
    with pytest.raises(ConfigError, match=r"^MCLabeler: rollout_temperature: must be >= 0: -0.1$"):
        MCLabeler(rollout_temperature=-0.1)
    with pytest.raises(ConfigError, match=r"^ArithTruthLabeler: \(top level\): temperatures is empty and include_reference is false"):
        ArithTruthLabeler(temperatures=[])
    assert ArithTruthLabeler(temperatures=[], include_reference=True).config.temperatures == ()
