import json

import pytest

from openr_arith import problems as P
from openr_arith.critique import VERIFIER_TOKENS, critiques, main, sft_record
from openr_arith.task import ArithTask
from openr_core.types import LabelledExample, to_dict
from openr_label.judge import parse_step_verdicts

PROBLEM = P.ArithProblem(3, (("+", 4), ("*", 2), ("-", 1)), "q")


def test_critiques_recompute_each_step_from_the_value_written_before_it():
    steps = ["3 + 4 = 7", "7 * 2 = 15", "15 - 1 = 14", "answer 14"]
    assert critiques(PROBLEM, steps) == ["3 + 4 = 7 . 3 + 4 = 7", "7 * 2 = 15 . 7 * 2 = 14", "15 - 1 = 14 . 15 - 1 = 14",
                                         "answer 14 . answer 14"]
    # an unreadable step leaves the next one nothing to compute from (the one after reads on from
    # what that one wrote, as check_steps does); a step too many gets ""
    assert critiques(PROBLEM, ["3 + 4 = 7", "seven", "6 - 1 = 5", "answer 5", "answer 5"]) == [
        "3 + 4 = 7 . 3 + 4 = 7", "seven . 7 * 2 = 14", "6 - 1 = 5", "answer 5 . answer 5", "answer 5"]


def test_sft_record_writes_critique_then_first_error_verdicts_the_parser_reads_back():
    task = ArithTask()
    problem = task.load("train", 1)[0]
    steps = problem.meta["solution"].split("\n")
    head, value = steps[0].rsplit(" ", 1)
    bad = [f"{head} {int(value) + 1}", *steps[1:]]
    record = sft_record(problem.question, bad)
    assert record["prompt"] == problem.question + "\n" + "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(bad)) + "\n"
    lines = record["completion"].splitlines()
    assert lines[0] == f"Step 1: {bad[0]} . {steps[0]} Verdict: incorrect"  # the step, then the right step
    assert all(line.endswith("Verdict: incorrect") for line in lines[1:])  # after the first error
    assert parse_step_verdicts(record["completion"], len(bad)) == [False] * len(bad)
    good = sft_record(problem.question, steps)["completion"]
    assert parse_step_verdicts(good, len(steps)) == [True] * len(steps)
    assert {"step", "verdict", "correct", "incorrect", ":"} == set(VERIFIER_TOKENS)


def test_the_command_writes_one_record_per_labelled_solution_and_never_overwrites(tmp_path):
    task = ArithTask()
    examples = [LabelledExample(p.question, p.meta["solution"].split("\n"), [True] * (len(p.meta["solution"].split("\n"))),
                                None, p.id) for p in task.load("train", 3)]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(to_dict(e)) + "\n" for e in examples))
    out = tmp_path / "sft.jsonl"
    main([str(labels), "-o", str(out)])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3 and records[2] == sft_record(examples[2].prompt, examples[2].completions)
    with pytest.raises(SystemExit, match="exists"):
        main([str(labels), "-o", str(out)])
