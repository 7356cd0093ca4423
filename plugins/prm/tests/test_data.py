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
    with pytest.raises(DataError, match=r"bad.jsonl: record 0: .*2 steps but 1 labels"):
        load_stepwise(bad, "openr")
    trl.write_text('{"prompt": "x"}\n')
    with pytest.raises(DataError, match="record 0: missing field 'completions'"):
        load_stepwise(trl, "trl")
