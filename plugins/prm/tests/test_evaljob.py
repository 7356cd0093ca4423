"""The eval-prm job end to end (CLI), with the exact arith oracle as reward model (no model to load):
subsets of files that share a name stay apart; a class with no samples is "n/a", never 0."""

import json
from pathlib import Path

from click.testing import CliRunner

import pytest

from openr_arith import problems as P
from openr_core import DataError
from openr_core.cli import cli


def processbench_records(first_errors: list[int], seed: str) -> list[dict]:
    """ProcessBench records of arith problems; ``first_errors[i]`` is -1 (correct) or the step that is
    made wrong (its result off by one), so the oracle finds exactly that first error."""
    out = []
    for i, first in enumerate(first_errors):
        problem = P.generate(seed, i, P.Difficulty())
        steps = problem.solution_steps()
        if first != -1:
            steps[first] = steps[first].rsplit(" ", 1)[0] + f" {problem.values()[first + 1] + 1}"
        out.append({"id": f"{seed}-{i}", "problem": problem.question, "steps": steps, "label": first})
    return out


def run(tmp_path, files: list, **changes) -> tuple[str, dict]:
    config = {"job": "eval-prm", "reward_model": {"type": "arith-oracle"}, "format": "processbench",
              "data": [str(f) for f in files], "threshold": 0.5, **changes}
    path = tmp_path / "eval.yaml"
    path.write_text(json.dumps(config))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(path), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output, json.loads((out / "summary.json").read_text())


def test_files_with_the_same_name_are_separate_subsets(tmp_path):
    for folder, errors in (("gsm8k", [-1, 0, 1]), ("omnimath", [-1, -1, 2, 0, 1])):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "test.json").write_text(json.dumps(processbench_records(errors, folder)))
    output, summary = run(tmp_path, [tmp_path / "gsm8k" / "test.json", tmp_path / "omnimath" / "test.json"])
    rows = {r["subset"]: r for r in summary["subsets"]}
    assert set(rows) == {"gsm8k/test", "omnimath/test"}
    assert (rows["gsm8k/test"]["correct"], rows["gsm8k/test"]["erroneous"]) == (1, 2)
    assert (rows["omnimath/test"]["correct"], rows["omnimath/test"]["erroneous"]) == (2, 3)
    assert all(r["f1"] == 1.0 for r in rows.values())  # the oracle finds every first error
    results = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert len(results) == 8 and len({r["id"] for r in results}) == 8


def test_a_limit_below_the_first_correct_sample_reports_n_a_not_zero(tmp_path):
    data = tmp_path / "math.json"  # ProcessBench lists erroneous samples first
    data.write_text(json.dumps(processbench_records([1, 0, 2, -1, -1], "math")))
    output, summary = run(tmp_path, [data], limit=3)
    row = summary["subsets"][0]
    assert (row["erroneous"], row["correct"]) == (3, 0)
    assert row["error_accuracy"] == 1.0 and row["correct_accuracy"] is None and row["f1"] is None
    assert summary["average_f1"] is None
    table = output.splitlines()
    line = next(t for t in table if t.split()[0] == "math")
    assert line.split()[1:6] == ["3", "0", "1.0000", "n/a", "n/a"]
    assert "average F1 n/a" in output and "0.0000" not in output
    assert "n/a: not measured, a class is empty in math (no correct samples)" in output


def test_subset_names():
    from openr_prm.evaljob import subset_names

    assert subset_names(["x/math.json", "y/gsm8k.json"]) == {"math": "x/math.json", "gsm8k": "y/gsm8k.json"}
    assert subset_names(["a/x/t.json", "b/x/t.json", "c.json"]) == {"a/x/t": "a/x/t.json", "b/x/t": "b/x/t.json",
                                                                      "c": "c.json"}
    assert subset_names(["t.json", "x/t.json"]) == {"t": "t.json", "x/t": "x/t.json"}
    assert subset_names(["a/math.json", "a/math.jsonl"]) == {"a/math.json": "a/math.json", "a/math.jsonl": "a/math.jsonl"}
    with pytest.raises(DataError, match="x/t.json: listed twice in data"):
        subset_names(["x/t.json", "x/../x/t.json"])


def test_subset_names_are_unique_for_any_list_of_distinct_files():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from openr_prm.evaljob import subset_names

    part = st.sampled_from(["a", "b", "math", "x.y"])
    path = st.tuples(st.lists(part, max_size=3), part, st.sampled_from(["", ".json", ".jsonl"])).map(
        lambda t: "/".join([*t[0], t[1] + t[2]]))

    @settings(max_examples=300, deadline=None)
    @given(st.lists(path, max_size=6, unique_by=lambda p: str(Path(p).resolve())))
    def check(files):
        names = subset_names(files)
        assert sorted(names.values()) == sorted(files) and len(names) == len(files)

    check()
