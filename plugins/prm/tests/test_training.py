import json
import random

import pytest
from click.testing import CliRunner

from openr_arith.task import ArithTask
from openr_core.cli import cli
from openr_core.types import LabelledExample, ScoreRequest, to_dict
from openr_prm.models import ImplicitPRM
from openr_prm.train_loop import evaluate

BACKBONE = "pkg:openr_arith/models/backbone"


def corrupted(task, split, n, seed):
    """Reference solutions and copies with one wrong result (exact labels), as stepwise examples."""
    rng = random.Random(seed)
    out = []
    for p in task.load(split, n):
        steps = p.meta["solution"].split("\n")
        out.append(LabelledExample(p.question, steps, [True] * len(steps), None, p.id, {"outcome": True}))
        k = rng.randrange(len(steps) - 1)
        bad = list(steps)
        head, result = bad[k].rsplit(" ", 1)
        bad[k] = f"{head} {int(result) + rng.choice([-2, -1, 1, 2])}"
        labels = [i < k for i in range(len(steps))]
        out.append(LabelledExample(p.question, bad, labels, None, p.id, {"outcome": False}))
    return out


@pytest.mark.slow
def test_implicit_prm_training_improves_processbench_f1(tmp_path):
    """pi_theta starts equal to pi_ref (every step reward is 0: nothing is flagged); a short
    cross-entropy run on outcome labels alone must teach it where the errors are."""
    task = ArithTask()
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(to_dict(e)) + "\n" for e in corrupted(task, "train", 200, 0)))
    config = tmp_path / "prm.yaml"
    config.write_text(json.dumps({"job": "train", "trainer": {
        "type": "prm", "kind": "implicit", "model": BACKBONE, "reference": BACKBONE, "beta": 0.05,
        "data": [str(data)], "format": "openr", "steps": 40, "batch_size": 16, "lr": 0.0005,
        "warmup_steps": 5, "eval_every": 0, "log_every": 10}}))
    result = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    dev = corrupted(task, "dev", 60, 1)
    before = evaluate(ImplicitPRM(model=BACKBONE, reference=BACKBONE)._scorer, dev)
    after = evaluate(ImplicitPRM(model=str(tmp_path / "out" / "final"), reference=BACKBONE)._scorer, dev)
    assert before["dev_f1_tuned"] == 0.0
    assert after["dev_f1_tuned"] > 0.5, after
    log = [json.loads(line) for line in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["train_examples"] == 400 and log[-1]["step"] == 40


def test_new_label_tokens_are_distinct_and_carry_gradient():
    """The LM-head PRM's score depends only on e_good - e_bad (tied head). transformers' mean
    resizing makes new rows identical up to ~1e-4, which leaves a frozen or slow-moving base
    with no gradient; ensure_marker must draw them as ordinary, distinct tokens."""
    import torch

    from openr_prm.heads import LMHead
    from openr_prm.train_loop import deepen, ensure_marker
    from openr_prm.trainer import PRMTrainerConfig

    torch.manual_seed(0)
    config = PRMTrainerConfig(model=BACKBONE, good_token="good", bad_token="bad", extra_layers=1)
    head = LMHead.from_fields(config)
    models, tokenizer = head.load(train=True)
    model = models["model"]
    deepen(model, 1)
    ensure_marker(head, config, model, tokenizer)
    head.setup(tokenizer)
    weight = model.get_input_embeddings().weight
    good, bad = tokenizer.convert_tokens_to_ids(["good", "bad"])
    typical = (weight[10] - weight[11]).norm().item()
    assert (weight[good] - weight[bad]).norm().item() > 0.3 * typical
    # with the base frozen, the new layer alone still gets a usable gradient
    for p in model.parameters():
        p.requires_grad_(False)
    down = model.base_model.layers[-1].mlp.down_proj.weight
    down.requires_grad_(True)
    from openr_prm.layout import build_layout

    layout = build_layout(tokenizer, "ann has 5 coins .\n", ["5 + 1 = 7", "answer 7"], tag=" ки")
    raw = head.raw(models, [layout], tokenizer.pad_token_id)[0]
    torch.log_softmax(raw, -1)[:, 1].sum().backward()
    assert down.grad.norm().item() > 1e-3


@pytest.mark.parametrize("kind, cls", [("classifier", "ClassifierPRM"), ("outcome", "OutcomeRM")])
def test_head_kinds_train_from_a_causal_lm_and_load_back(tmp_path, kind, cls):
    """Training starts a fresh head on a causal LM (allowed only when training); the checkpoint it
    writes then loads for scoring with every head weight in place."""
    from openr_prm import models

    task = ArithTask()
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(to_dict(e)) + "\n" for e in corrupted(task, "train", 8, 0)))
    config = tmp_path / "prm.yaml"
    config.write_text(json.dumps({"job": "train", "trainer": {
        "type": "prm", "kind": kind, "model": BACKBONE, "separator": " ки", "data": [str(data)], "steps": 2,
        "batch_size": 4, "warmup_steps": 0, "eval_every": 0, "log_every": 1, "threads": 1}}))
    result = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rm = getattr(models, cls)(model=str(tmp_path / "out" / "final"), **({"separator": " ки"} if kind == "classifier" else {}))
    steps = task.split_steps(task.reference_solution(task.load("test", 1)[0]))
    first = rm.score([ScoreRequest(task.load("test", 1)[0], steps)])[0].scores
    again = getattr(models, cls)(model=str(tmp_path / "out" / "final"),
                                 **({"separator": " ки"} if kind == "classifier" else {})).score(
        [ScoreRequest(task.load("test", 1)[0], steps)])[0].scores
    assert len(first) == len(steps) and first == again  # no random head: the same scores on every load
