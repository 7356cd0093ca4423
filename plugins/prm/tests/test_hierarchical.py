import json

import pytest
from click.testing import CliRunner

from openr_core.cli import cli
from openr_core.types import LabelledExample, to_dict
from openr_prm.hierarchical import compress, merge_pair
from openr_prm.trainer import PRMTrainerConfig

STEPS = ["3 + 4 = 7", "7 * 2 = 15", "15 - 1 = 14", "Answer: 14"]
EXAMPLE = LabelledExample("Start at 3. Add 4, times 2, minus 1.", STEPS, [True, False, False, False],
                          [1.0, 0.25, 0.0, 0.0], "p1")


def test_a_merged_pair_is_one_node_with_the_second_steps_labels():
    first = merge_pair(EXAMPLE, 0)
    assert first.completions == ("3 + 4 = 7\n7 * 2 = 15", "15 - 1 = 14", "Answer: 14")
    assert first.labels == (False, False, False)  # the wrong second step makes the node wrong
    assert first.soft_labels == (0.25, 0.0, 0.0)
    last = merge_pair(EXAMPLE, 2, join=" ")
    assert last.completions == ("3 + 4 = 7", "7 * 2 = 15", "15 - 1 = 14 Answer: 14")
    assert last.labels == (True, False, False) and last.soft_labels == (1.0, 0.25, 0.0)
    assert last.meta["merged_pair"] == 2 and last.problem_id == "p1"
    with pytest.raises(ValueError, match="no consecutive pair at 3 in 4 steps"):
        merge_pair(EXAMPLE, 3)


def test_compress_keeps_every_example_and_adds_one_merged_copy_at_the_rate():
    single = LabelledExample("q", ["Answer: 1"], [True])
    data = [EXAMPLE] * 400 + [single] * 50
    out = compress(data, 0.5, seed=1)
    assert out[:450] == data  # the originals, in order
    copies = out[450:]
    assert 160 <= len(copies) <= 240  # Binomial(400, 0.5): mean 200, sd 10; one-step examples never copied
    assert all(len(c.completions) == 3 and c.labels == merge_pair(EXAMPLE, c.meta["merged_pair"]).labels
               for c in copies)
    assert {c.meta["merged_pair"] for c in copies} == {0, 1, 2}  # every pair position is drawn
    assert compress(data, 0.5, seed=1) == out and compress(data, 0.5, seed=2) != out
    assert len(compress(data, 1.0)) == 850 and compress(data, 0.0) == data


def test_the_trainer_trains_on_the_compressed_set(tmp_path):
    """`hrm_merge: 1` doubles the training set of multi-step solutions (logged `train_examples`)."""
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(to_dict(e)) + "\n" for e in [EXAMPLE] * 6))
    config = tmp_path / "prm.yaml"
    config.write_text(json.dumps({"job": "train", "trainer": {
        "type": "prm", "model": "pkg:openr_arith/models/backbone", "data": [str(data)], "steps": 1,
        "batch_size": 4, "warmup_steps": 0, "eval_every": 0, "log_every": 1, "threads": 1, "hrm_merge": 1.0,
        "good_token": "good", "bad_token": "bad"}}))
    result = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "out" / "train_log.jsonl").read_text().splitlines()[0])
    assert first["train_examples"] == 12 and first["train_steps_labelled"] == 6 * 4 + 6 * 3


def test_hrm_merge_is_a_fraction():
    with pytest.raises(ValueError, match="hrm_merge"):
        PRMTrainerConfig(model="m", hrm_merge=1.5)
