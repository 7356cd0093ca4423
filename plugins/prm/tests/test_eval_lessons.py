"""The "Lessons of developing PRMs" part of eval-prm: recall per error type, best-of-n and
PRM-weighted vote over the policy's samples, the BoN bias. Hand-computed values throughout."""

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from openr_arith import problems as P
from openr_arith.task import ArithTask
from openr_core.cli import cli
from openr_prm import metrics as M
from openr_prm.augment import perturb_number

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "arith"


def test_recall_per_type_counts_exact_first_errors_and_says_n_a_for_an_empty_type():
    predictions = [1, 0, 2, -1, 3, 0]
    labels = [1, 1, 2, 2, -1, 0]
    types = ["a", "a", "b", "b", None, None]  # the last is erroneous but unclassified: left out
    assert M.recall_per_type(predictions, labels, types, ("a", "b", "c")) == {
        "a": {"recall": 0.5, "found": 1, "n": 2},  # found at step 1; predicted 0 for a step-1 error: missed
        "b": {"recall": 0.5, "found": 1, "n": 2},
        "c": {"recall": None, "found": 0, "n": 0}}


def sample(scores, answer, correct, flawed=None):
    return {"scores": scores, "answer": answer, "correct": correct, "flawed": flawed}


def test_response_level_by_hand():
    groups = [
        [sample([0.9, 0.8, 0.2], "5", True, True),     # min 0.2, on the final step only
         sample([0.9, 0.3, 0.7], "4", False, True),    # min 0.3, not final
         sample([0.7, 0.65, 0.6], "4", False, True),   # min 0.6, final: chosen by best-of-n (wrong)
         sample([0.5], "5", True, False)],             # one step: no BoN-bias verdict
        [sample([0.9, 0.9], "7", True, True),          # min 0.9, a tie is not "below": chosen (right, flawed)
         sample([0.95, 0.1], "7", True, False),        # final-only minimum
         sample([0.8, 0.4], "8", False, True)]]        # final-only minimum
    out = M.response_level(groups, "min", lambda a, b: a == b)
    assert out == {
        "best_of_n": 0.5,
        "weighted_vote": 0.5,   # "4": 0.3 + 0.6 > "5": 0.2 + 0.5; "7": 0.9 + 0.1 > "8": 0.4
        "majority_vote": 1.0,   # 2-2 tie goes to the answer seen first ("5"); "7" twice
        "pass_at_n": 1.0,
        "bon_bias_all": 4 / 6,  # of the six solutions of 2+ steps
        "bon_bias_selected": 0.5,
        "bon_right_but_flawed": 1.0,  # the one right pick went through a wrong step
        "problems": 2, "samples": 7}
    last = M.response_level(groups, "last", lambda a, b: a == b)
    assert (last["best_of_n"], last["bon_bias_selected"]) == (0.5, 0.0)  # picks 0.7 (wrong), 0.9 (right)


def test_weighted_vote_clips_negative_values_like_the_search_plugin():
    group = [sample([-0.5], "1", True), sample([-0.1], "1", True), sample([0.2], "2", False)]
    assert M.response_level([group], "min", str.__eq__)["weighted_vote"] == 0.0


def test_the_sandbox_perturbations_are_arithmetic_or_wrong_answer_errors():
    """augment changes the last number of one step of a gold solution: an operation step's result
    (arithmetic) or the answer line's number (wrong answer); the classifier says which, never another kind."""
    rng = random.Random(0)
    seen = set()
    for i in range(200):
        problem = P.generate("perturb", i, P.Difficulty())
        steps = problem.solution_steps()
        k = rng.randrange(len(steps))
        wrong = steps[:k] + [perturb_number(steps[k], rng, 0, 199)] + steps[k + 1:]
        assert P.first_error(problem, wrong) == k
        assert P.error_type(problem, wrong) == ("wrong answer" if k == len(problem.ops) else "arithmetic")
        seen.add(k == len(problem.ops))
    assert seen == {True, False}


# -- the job, end to end with the exact arith oracle (scores 1 up to the first error, then 0) ------


def openr_run(tmp_path, config: dict, name="out"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(config))
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["run", str(path), "-o", str(out)], catch_exceptions=False)
    return result, out


def test_recall_per_error_type_in_the_table_and_summary(tmp_path):
    problem = P.generate("kinds", 0, P.Difficulty(min_steps=3, max_steps=3))
    gold, v, (op0, x0) = problem.solution_steps(), problem.values(), problem.ops[0]
    wrong = {"arithmetic": [f"{v[0]} {op0} {x0} = {v[1] + 1}"],
             "wrong start": [f"{v[0] + 1} {op0} {x0} = {P.apply(v[0] + 1, op0, x0)}"],
             "early or missing answer": [gold[0], f"answer {v[1]}"]}
    records = [{"problem": problem.question, "steps": steps, "label": len(steps) - 1} for steps in wrong.values()]
    records.append({"problem": problem.question, "steps": gold, "label": -1})
    (tmp_path / "kinds.json").write_text(json.dumps(records))
    config = {"job": "eval-prm", "reward_model": {"type": "arith-oracle"}, "data": [str(tmp_path / "kinds.json")],
              "threshold": 0.5}
    result, out = openr_run(tmp_path, {**config, "task": {"type": "arith"}})
    assert result.exit_code == 0, result.output
    kinds = json.loads((out / "summary.json").read_text())["subsets"][0]["error_types"]
    assert list(kinds) == list(ArithTask.error_types)
    assert {k: v["n"] for k, v in kinds.items() if v["n"]} == {k: 1 for k in wrong}
    assert all(kinds[k]["recall"] == 1.0 for k in wrong) and kinds["malformed"]["recall"] is None
    assert "recall per error type (kinds" in result.output
    assert [line.split() for line in result.output.splitlines() if "malformed" in line] == [["malformed", "n/a", "(n", "0)"]]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(str(r["error_type"]) for r in records) == sorted([*wrong, "None"])
    # a run without a task that classifies errors has no such section (not zeros)
    result, out = openr_run(tmp_path, config, "plain")
    assert "error_types" not in json.loads((out / "summary.json").read_text())["subsets"][0]
    assert "recall per error type" not in result.output


def test_response_level_from_a_samples_file(tmp_path):
    p0, p1 = ArithTask().load("test", 2)
    g0, g1 = p0.meta["solution"].split("\n"), p1.meta["solution"].split("\n")
    off = int(p0.answer) + 1
    last_op = g0[-2].rsplit(" ", 1)[0] + f" {off}"
    samples = [
        {"id": p0.id, "texts": ["\n".join(g0),                              # right: scores all 1
                                "\n".join(g0[:-1] + [f"answer {off}"]),      # wrong answer line: min on the final step only
                                "\n".join(g0[:-2] + [last_op, f"answer {off}"])]},  # arithmetic error, then a consistent answer
        {"id": p1.id, "texts": ["\n".join(["1 + 1 = 2"] + g1[1:]),            # wrong start: all 0, the right answer after all
                                g1[0],                                       # one right step, no answer: the best-of-n pick
                                "\n".join(g1)]}]                             # right
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    config = {"job": "eval-prm", "reward_model": {"type": "arith-oracle"}, "task": {"type": "arith"},
              "data": [], "labeler": {"type": "arith-truth", "temperatures": [], "include_reference": True},
              "problems": 2, "threshold": 0.5, "response_level": {"samples": str(tmp_path / "samples.jsonl")}}
    result, out = openr_run(tmp_path, config)
    assert result.exit_code == 0, result.output
    rl = json.loads((out / "summary.json").read_text())["response_level"]
    assert rl == {"split": "test", "reducer": "min", "best_of_n": 0.5, "weighted_vote": 1.0, "majority_vote": 0.5,
                  "pass_at_n": 1.0, "bon_bias_all": 0.2, "bon_bias_selected": 0.0, "bon_right_but_flawed": 0.0,
                  "problems": 2, "samples": 6}
    assert "best-of-n  0.5000" in result.output and "PRM-weighted vote  1.0000" in result.output
    # the records are a samples file themselves; a second run over them resumes nothing and agrees
    again, out2 = openr_run(tmp_path, {**config, "response_level": {"samples": str(out / "response_results.jsonl")}}, "again")
    assert json.loads((out2 / "summary.json").read_text())["response_level"] == rl
    assert len((out / "response_results.jsonl").read_text().splitlines()) == 2


def test_a_samples_file_naming_an_unknown_problem_is_one_line(tmp_path):
    (tmp_path / "s.jsonl").write_text(json.dumps({"id": "arith-test-9", "texts": ["answer 1"]}) + "\n")
    config = {"job": "eval-prm", "reward_model": {"type": "arith-oracle"}, "task": {"type": "arith"},
              "labeler": {"type": "arith-truth", "temperatures": [], "include_reference": True},
              "problems": 2, "threshold": 0.5, "response_level": {"samples": str(tmp_path / "s.jsonl")}}
    result, out = openr_run(tmp_path, config)
    assert result.exit_code != 0
    assert "s.jsonl:1: id 'arith-test-9' is not one of the first 2 problems of split 'test'" in result.output
    assert not (out / "results.jsonl").exists()  # refused before anything was labelled or scored


@pytest.mark.slow
def test_the_shipped_config_on_the_shipped_prm(tmp_path):
    """configs/arith/eval-prm.yaml as shipped (LM-head PRM, the policy's samples), cut to 2 problems."""
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(CONFIGS / "eval-prm.yaml"), "-o", str(out), "--set", "problems=2",
                                      "--set", "labeler.n=2", "--set", "response_level.n=3",
                                      "--set", "reward_model.threads=1", "--set", "generator.threads=1"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    row = summary["subsets"][0]
    kinds = row["error_types"]
    assert list(kinds) == list(ArithTask.error_types)
    assert sum(v["n"] for v in kinds.values()) == row["erroneous"]  # every wrong sample gets exactly one kind
    assert all((v["recall"] is None) == (v["n"] == 0) and 0 <= v["found"] <= v["n"] for v in kinds.values())
    rl = summary["response_level"]
    assert (rl["problems"], rl["samples"]) == (2, 6)
    for key in ("best_of_n", "weighted_vote", "majority_vote"):
        assert 0 <= rl[key] <= rl["pass_at_n"] <= 1
    assert all(rl[k] is None or 0 <= rl[k] <= 1 for k in ("bon_bias_all", "bon_bias_selected", "bon_right_but_flawed"))
    records = [json.loads(line) for line in (out / "response_results.jsonl").read_text().splitlines()]
    assert [len(r["texts"]) for r in records] == [3, 3] and all(len(r["scores"]) == 3 for r in records)
