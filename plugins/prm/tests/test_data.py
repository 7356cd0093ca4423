import os
from pathlib import Path

import pytest

from openr_core import DataError
from openr_prm.data import load_stepwise

DATA = Path(os.environ.get("OPENR_SHARED_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"))
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")


def test_processbench_all_subsets():
    counts = {"gsm8k": (400, 193), "math": (1000, 406), "olympiadbench": (1000, 339), "omnimath": (1000, 241)}
    for name, (total, correct) in counts.items():
        examples = load_stepwise(DATA / "processbench" / f"{name}.json", "processbench")
        assert len(examples) == total
        assert sum(e.first_error == -1 for e in examples) == correct
        assert all(e.first_error == e.meta["first_error"] for e in examples)


def test_math_shepherd_samples():
    examples = load_stepwise(DATA / "math_shepherd" / "samples.jsonl", "math-shepherd")
    assert len(examples) == 7
    for e in examples:
        assert e.completions[0].startswith("Step 1:") and "ки" not in "".join(e.completions)
        assert e.prompt and not e.prompt.startswith("Step")
    # sample 0 answers "how much more ... in a year" with the total (13520): only its last step is bad
    assert examples[0].labels == (True, True, True, True, False)
    assert examples[0].completions[-1].endswith("The answer is: 13520")
    assert [len(e.labels) for e in examples] == [5, 3, 2, 5, 5, 2, 3]


def test_prm800k_raw_samples():
    for name in ("openr_samples.jsonl", "phase1_examples.jsonl", "phase2_examples.jsonl"):
        examples = load_stepwise(DATA / "prm800k" / name, "prm800k")
        assert examples and all(e.completions for e in examples)
        for e in examples:  # a solution stops at its first bad step, so only its last step may be bad
            assert all(e.labels[:-1])
    phase2 = load_stepwise(DATA / "prm800k" / "phase2_examples.jsonl", "prm800k")
    assert all(e.meta["finish_reason"] == "found_error" for e in phase2)
    assert all(not e.labels[-1] for e in phase2)


def test_trl_and_openr_formats(tmp_path):
    trl = tmp_path / "trl.jsonl"
    trl.write_text('{"prompt": "1+1?", "completions": ["1+1=2", "answer 2"], "labels": [true, false]}\n'
                   '{"prompt": "2+2?", "completions": ["2+2=4"], "labels": [0.75]}\n')
    a, b = load_stepwise(trl, "trl")
    assert a.labels == (True, False) and a.soft_labels is None
    assert b.labels == (True,) and b.soft_labels == (0.75,)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "completions": ["a", "b"], "labels": [true]}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: .*2 steps but 1 labels"):
        load_stepwise(bad, "openr")
    trl.write_text('{"prompt": "x"}\n')
    with pytest.raises(DataError, match="trl.jsonl:1: missing field 'completions'"):
        load_stepwise(trl, "trl")


GOOD = {"prompt": "1+1?", "completions": ["1+1=2", "answer 2"], "labels": [True, False]}

WRONG_SHAPES = [  # (format, record, the error after "FILE:LINE: ")
    ("openr", {**GOOD, "labels": ["true", "false"]}, "field 'labels[0]' must be true/false (or 0/1), got str 'true'"),
    ("trl", {**GOOD, "labels": ["false", "false"]}, "field 'labels[0]' must be true/false or a number in [0, 1], got str"),
    ("openr", {**GOOD, "completions": "1+1=2"}, "field 'completions' must be a non-empty list of step strings, got str"),
    ("openr", {**GOOD, "completions": [], "labels": []}, "field 'completions' must be a non-empty list of step strings"),
    ("trl", {**GOOD, "completions": {"a": "1+1=2"}}, "field 'completions' must be a non-empty list of step strings, got dict"),
    ("openr", {**GOOD, "completions": ["1+1=2", 2]}, "field 'completions[1]' must be a string, got int 2"),
    ("openr", {**GOOD, "completions": ["1+1=2", " \n"]}, "field 'completions[1]' is an empty step"),
    ("processbench", {"problem": "p", "steps": ["a", ""], "label": -1}, "field 'steps[1]' is an empty step"),
    ("openr", {**GOOD, "prompt": None}, "field 'prompt' must be a string, got NoneType None"),
    ("trl", {**GOOD, "labels": 1}, "field 'labels' must be a list of step labels, got int 1"),
    ("openr", {**GOOD, "labels": [2, 0]}, "field 'labels[0]' must be true/false (or 0/1), got int 2"),
    ("openr", {**GOOD, "soft_labels": [0.5, 7]}, "field 'soft_labels[1]' must be true/false or a number in [0, 1]"),
    ("openr", {**GOOD, "meta": [1]}, "field 'meta' must be an object, got list"),
    ("processbench", {"problem": "p", "steps": ["a"], "label": "0"}, "field 'label' must be -1 (no error) or a step index below 1"),
    ("processbench", {"problem": "p", "steps": ["a"], "label": 3}, "field 'label' must be -1 (no error) or a step index below 1"),
    ("processbench", {"problem": "p", "steps": "ab", "label": -1}, "field 'steps' must be a non-empty list of step strings"),
    ("processbench", {"problem": None, "steps": ["a"], "label": -1}, "field 'problem' must be a string"),
    ("math-shepherd", {"input": 5, "label": "x"}, "field 'input' must be a string, got int 5"),
    ("prm800k", {"question": {"problem": "p"}, "label": {"steps": [5]}}, "field 'label.steps[0]' must be an object, got int"),
    ("prm800k", {"question": {"problem": "p"}, "label": []}, "field 'label' must be an object with a 'steps' list"),
    ("prm800k", {"question": {"problem": None}, "label": {"steps": [{"completions": [{"text": "a", "rating": 1}],
                                                                  "chosen_completion": 0}]}},
     "field 'question.problem' must be a string"),
]


@pytest.mark.parametrize(("format", "record", "message"), WRONG_SHAPES)
def test_records_of_the_wrong_shape_are_one_line_naming_file_line_and_field(tmp_path, format, record, message):
    import json

    path = tmp_path / "data.jsonl"
    good = {"processbench": {"problem": "p", "steps": ["a"], "label": -1},
            "math-shepherd": {"input": "q Step 1: a ки", "label": "q Step 1: a +"},
            "prm800k": {"question": "p", "label": {"steps": [{"completions": [{"text": "a", "rating": 1}]}]}}}
    path.write_text(json.dumps(good.get(format, GOOD)) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(DataError) as info:
        load_stepwise(path, format)
    assert str(info.value).startswith(f"{path}:2: {message}"), str(info.value)


@pytest.mark.parametrize("data", [b"7\n", b'"text"\n', b"[1, 2]\n"])
def test_bare_values_instead_of_records(tmp_path, data):
    path = tmp_path / "data.jsonl"
    path.write_bytes(data)
    with pytest.raises(DataError, match=rf"data.jsonl:1: expected a JSON object, got a"):
        load_stepwise(path, "openr")


def test_non_utf8_and_json_array_files(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"prompt": "caf\xe9", "completions": ["a"], "labels": [true]}\n')
    with pytest.raises(DataError, match=r"data.jsonl:1: not UTF-8 text"):
        load_stepwise(path, "openr")
    bench = tmp_path / "bench.json"
    bench.write_text('[{"problem": "p", "steps": ["a", "b"], "label": 1}, {"problem": "p", "steps": ["a"], "label": 1}]')
    with pytest.raises(DataError, match=r"bench.json: record 1: field 'label' must be -1"):
        load_stepwise(bench, "processbench")


def test_parquet_prm_data(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    path = tmp_path / "trl.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "1+1?", "completions": ["1+1=2", "answer 2"], "labels": [True, False]},
                                         {"prompt": None, "completions": ["a"], "labels": [True]}]), path)
    with pytest.raises(DataError, match=r"trl.parquet: row 1: field 'prompt' must be a string, got NoneType"):
        load_stepwise(path, "trl")
    assert load_stepwise(path, "trl", limit=1)[0].labels == (True, False)


@pytest.mark.parametrize(("name", "content"), [("e.jsonl", ""), ("b.jsonl", "\n  \n"), ("a.json", "[]"),
                                               ("d.json", '{"data": []}')])
def test_an_empty_data_file_is_one_line_not_a_run_of_nothing(tmp_path, name, content):
    from openr_prm.data import load_stepwise

    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=rf"^{tmp_path / name}: no records \(an empty data file\)$"):
        load_stepwise(tmp_path / name, "processbench")


def test_an_unknown_format_fails_validate_not_the_run():
    from openr_core import ConfigError
    from openr_core.config import Where, structure
    from openr_prm.evaljob import EvalPRMJob
    from openr_prm.trainer import PRMTrainer

    with pytest.raises(ConfigError, match=r"^PRMTrainer: format: 'nope' is not one of 'openr', 'trl',"):
        PRMTrainer(model="m", format="nope")
    with pytest.raises(ConfigError, match=r"^e.yaml: format: 'nope' is not one of 'openr', 'trl',"):
        structure(EvalPRMJob, {"job": "eval-prm", "reward_model": {"type": "arith-oracle"}, "data": ["d.json"],
                               "format": "nope"}, Where("e.yaml"), None)
