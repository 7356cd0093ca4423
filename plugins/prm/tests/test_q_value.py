"""The step-level Q-value model: the LM-head PRM trained on the tree-data job's ``values.jsonl``
with ``soft_labels: true`` regresses each step's score onto its Q in [0, 1] (not onto Q rounded
to a hard label), and is then an ordinary ``lm-head-prm`` reward model."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from openr_arith.task import ArithTask
from openr_core.cli import cli
from openr_core.types import LabelledExample, ScoreRequest
from openr_prm.heads import HEADS
from openr_prm.models import LMHeadPRM
from openr_prm.trainer import PRMTrainerConfig

PRM = {"step_tag": " ки", "good_token": "good", "bad_token": "bad"}


def test_the_loss_against_q_is_the_binary_cross_entropy_by_hand():
    head = HEADS["lm-head"].from_fields(PRMTrainerConfig(model="m", **PRM))
    raw = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # P(good) = 3/4, then 1/2
    example = LabelledExample("q", ["a", "b"], [True, False], [0.5, 0.25])
    # step 1: -(0.5 ln 3/4 + 0.5 ln 1/4); step 2: ln 2 whatever the target; the mean of both
    by_hand = (-(0.5 * math.log(0.75) + 0.5 * math.log(0.25)) + math.log(2)) / 2
    assert head.loss(raw, example, soft_labels=True).item() == pytest.approx(by_hand, abs=1e-6)


@pytest.mark.slow
def test_trained_on_q_the_scores_move_to_q_not_to_the_rounded_label(tmp_path):
    task = ArithTask()
    records = []
    for p in task.load("train", 16):  # every step's Q is 0.25 (its hard label: bad)
        steps = p.meta["solution"].split("\n")
        records.append({"prompt": p.question, "completions": steps, "problem_id": p.id,
                        "labels": [False] * len(steps), "soft_labels": [0.25] * len(steps)})
    data = tmp_path / "values.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    config = {"job": "train", "seed": 0, "trainer": {
        "type": "prm", "kind": "lm-head", "model": "pkg:openr_arith/models/prm", "data": [str(data)],
        "soft_labels": True, "steps": 40, "batch_size": 8, "lr": 0.003, "warmup_steps": 0, "log_every": 10,
        "eval_every": 0, "save_every": 0, "threads": 1, **PRM}}
    path = tmp_path / "q.yaml"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(cli, ["run", str(path), "-o", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    problems = task.load("dev", 8)
    requests = [ScoreRequest(p, p.meta["solution"].split("\n")) for p in problems]
    before = LMHeadPRM(model="pkg:openr_arith/models/prm", threads=1, **PRM).score(requests)
    after = LMHeadPRM(model=str(tmp_path / "out" / "final"), threads=1, **PRM).score(requests)
    mean = lambda scored: sum(s for x in scored for s in x.scores) / sum(len(x.scores) for x in scored)  # noqa: E731
    assert mean(before) > 0.8  # right steps: the shipped PRM says good
    assert mean(after) == pytest.approx(0.25, abs=0.1)
