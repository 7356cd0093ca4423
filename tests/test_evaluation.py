"""Answer-level metrics on hand-computed numbers, and the evaluate job end to end (with resume)."""

import json

import pytest

from openr_core.evaluation import format_summary, pass_at_k, stable_seed, summarize, vote


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),        # 1 - C(3,1)/C(5,1) = 1 - 3/5
        (5, 2, 2, 0.7),        # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 3, 5, 1 - 21 / 252),  # C(7,5)=21, C(10,5)=252
        (4, 2, 3, 1.0),        # fewer than k wrong samples: some pick of 3 is right
        (3, 0, 2, 0.0),
        (3, 3, 3, 1.0),
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
    ],
)
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_needs_k_samples():
    with pytest.raises(ValueError, match="pass@4 needs at least 4 samples, got 3"):
        pass_at_k(3, 1, 4)


@pytest.mark.parametrize(
    ("answers", "kwargs", "expected"),
    [
        (["7", "3", "3"], {}, 1),                          # plain majority: first member of the group
        (["a", "b", "b", "a"], {}, 0),                     # 2-2 tie: the group that came first
        (["b", "a", "a", "b"], {}, 0),
        (["x", "y", "z"], {}, 0),                          # all distinct: the first
        ([None, "y", None, "z", "z"], {}, 3),              # None never votes
        ([None, None], {}, None),                          # nobody voted
        ([], {}, None),
        (["a", "b", "b"], {"weights": [0.9, 0.3, 0.3]}, 0),  # 0.9 beats 0.6
        (["a", "b", "b"], {"weights": [0.5, 0.3, 0.3]}, 1),  # 0.6 beats 0.5
        (["a", "b"], {"weights": [0.5, 0.5]}, 0),          # weighted tie: first
        ([None, "y"], {"weights": [100.0, 1.0]}, 1),       # a None answer's weight counts for nothing
        (["A", "b", "a"], {"same": lambda p, q: p.lower() == q.lower()}, 0),
        ([" 4", "5", "4 "], {"same": lambda p, q: p.strip() == q.strip()}, 0),
    ],
)
def test_vote(answers, kwargs, expected):
    assert vote(answers, **kwargs) == expected


def test_summarize_hand_computed():
    records = [
        # greedy right; samples: 1 of 2 right, majority ("5" vs "4": tie, first wins) is right
        {"correct": True, "tokens": 10, "seconds": 0.5, "sample_answers": ["5", "4"], "sample_correct": [True, False], "sample_tokens": 30},
        # greedy wrong; samples: none answered
        {"correct": False, "tokens": 20, "seconds": 1.5, "sample_answers": [None, None], "sample_correct": [False, False], "sample_tokens": 10},
        # greedy wrong; samples: 1 right but the majority is wrong
        {"correct": False, "tokens": 0, "seconds": 1.0, "sample_answers": ["1", "1"], "sample_correct": [False, False], "sample_tokens": 2},
        {"correct": True, "tokens": 6, "seconds": 1.0, "sample_answers": ["9", "8"], "sample_correct": [False, True], "sample_tokens": 6},
    ]
    summary = summarize(records, 2, lambda a, b: a == b)
    assert summary == {
        "problems": 4,
        "accuracy": 0.5,
        "greedy_tokens_per_problem": 9.0,
        "wall_seconds": 4.0,
        "pass@2": 0.5,
        "majority@2": 0.25,  # only the first: the last's tie goes to the wrong "9"
        "average@2": (0.5 + 0 + 0 + 0.5) / 4,
        "sample_tokens_per_problem": 12.0,
    }
    assert summarize([], 2, lambda a, b: a == b) == {"problems": 0}
    text = format_summary(summary)
    assert "accuracy                   0.5000" in text and "problems                   4" in text


def test_stable_seed_is_per_item_and_deterministic():
    assert stable_seed(0, "p1") == stable_seed(0, "p1")
    assert stable_seed(0, "p1") != stable_seed(0, "p2")
    assert stable_seed(1, "p1") != stable_seed(0, "p1")
    assert 0 <= stable_seed(123456789, "x" * 100) < 2**31


def test_evaluate_job_numbers(plugins, invoke, write_config, tmp_path):
    # tiny: prompt's last line is the answer for even problems -> echo gets 2 of 4 right
    path = write_config("job: evaluate\ntask: tiny\ngenerator: {type: echo, repeat: 2}\nn: 3\n")
    out = tmp_path / "out"
    result = invoke("run", path, "-o", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 4
    assert summary["accuracy"] == 0.5
    assert summary["pass@3"] == 0.5 and summary["majority@3"] == 0.5 and summary["average@3"] == 0.5
    assert summary["greedy_tokens_per_problem"] == 2.0  # the last line twice: "0\n0" or "wrong\nwrong"
    assert summary["sample_tokens_per_problem"] == 6.0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["id"], r["answer"], r["correct"]) for r in records] == [
        ("p0", "0", True), ("p1", "wrong", False), ("p2", "2", True), ("p3", "wrong", False)]
    assert records[0]["sample_answers"] == ["0", "0", "0"] and records[1]["sample_correct"] == [False] * 3
    assert "accuracy" in result.stdout and "pass@3" in result.stdout


def test_evaluate_resumes_after_a_crash(plugins, invoke, write_config, tmp_path):
    echo = plugins.entry("generator", "echo").load()
    path = write_config("job: evaluate\ntask: {type: tiny, size: 5}\ngenerator: echo\nbatch_size: 2\n")
    out = tmp_path / "out"
    echo.crash_after = 1  # the first batch is written, the second call dies
    result = invoke("run", path, "-o", str(out))
    assert isinstance(result.exception, RuntimeError)
    assert [json.loads(line)["id"] for line in (out / "results.jsonl").read_text().splitlines()] == ["p0", "p1"]
    assert not (out / "summary.json").exists()
    echo.crash_after = None
    echo.calls.clear()
    result = invoke("run", path, "-o", str(out))
    assert result.exit_code == 0, result.output
    # only the missing problems were generated, and every problem is in the file once
    assert [[prompt.splitlines()[0] for prompt in batch] for batch in echo.calls] == [["say 2", "say 3"], ["say 4"]]
    assert [json.loads(line)["id"] for line in (out / "results.jsonl").read_text().splitlines()] == ["p0", "p1", "p2", "p3", "p4"]
    assert json.loads((out / "summary.json").read_text())["accuracy"] == 3 / 5
    # a third run has nothing left to do but still writes the summary
    echo.calls.clear()
    assert invoke("run", path, "-o", str(out)).exit_code == 0
    assert echo.calls == []
    assert json.loads((out / "summary.json").read_text())["problems"] == 5
