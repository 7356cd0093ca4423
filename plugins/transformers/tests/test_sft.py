import json

import attrs
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

from openr_core.cli import cli
from openr_transformers import sft_loop, training
from openr_transformers.sft import SFTConfig


def write_config(tmp_path, **trainer):
    body = {"type": "sft", "model": "pkg:openr_arith/models/skeleton", "from_scratch": True, "steps": 6,
            "batch_size": 16, "lr": 0.003, "log_every": 2, "save_every": 3, "warmup_steps": 1, **trainer}
    path = tmp_path / "sft.yaml"
    path.write_text(json.dumps({"job": "train", "seed": 3, "task": {"type": "arith"}, "trainer": body}))
    return path


def run(config_path, out):
    result = CliRunner().invoke(cli, ["run", str(config_path), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_loss_falls_and_checkpoint_is_an_hf_folder(tmp_path):
    log = run(write_config(tmp_path, steps=30, log_every=5, batch_size=32), tmp_path / "out")
    assert log[-1]["step"] == 30 and log[-1]["loss"] < 0.7 * log[0]["loss"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "final")
    assert model.config.model_type == "llama"
    assert (tmp_path / "out" / "config.yaml").read_text().count("from_scratch: true") == 1


def test_resume_after_kill_gives_the_same_weights(tmp_path):
    config = write_config(tmp_path)
    run(config, tmp_path / "full")
    # a run that stopped after its step-3 checkpoint, then resumed
    partial = tmp_path / "partial"
    run(write_config(tmp_path, steps=6, save_every=3), partial)
    import shutil

    shutil.rmtree(partial / "final")
    assert (partial / "checkpoints" / "step-3").exists()
    log = run(config, partial)
    assert [r["step"] for r in log] == [2, 4, 6]  # the log is cut back to the checkpoint: nothing doubled
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "full" / "final").state_dict()
    b = AutoModelForCausalLM.from_pretrained(partial / "final").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_batches_are_a_function_of_seed_and_step():
    assert training.batch_indices(10, 3, 4, seed=1) == training.batch_indices(10, 3, 4, seed=1)
    epoch = [i for step in range(5) for i in training.batch_indices(10, step, 2, seed=1)]
    assert sorted(epoch) == list(range(10))  # one epoch covers every example once
    assert training.batch_indices(10, 0, 4, seed=1) != training.batch_indices(10, 0, 4, seed=2)


def test_completion_only_masks_the_prompt():
    ids, mask, labels = sft_loop.collate([([1, 5, 6, 7, 2], 3), ([1, 8, 2], 2)], pad_id=0, completion_only=True)
    assert labels.tolist() == [[-100, -100, -100, 7, 2], [-100, -100, 2, -100, -100]]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]


def test_linear_schedule_ends_at_min_ratio():
    config = SFTConfig(model="m", steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert training.lr_factor(config, 0, config.steps) == 0.1 and training.lr_factor(config, 9, config.steps) == 1.0
    assert abs(training.lr_factor(config, 100, config.steps) - 0.1) < 1e-9
    assert training.lr_factor(attrs.evolve(config, schedule="constant"), 50, 100) == 1.0


def test_validate_rejects_zero_counts_for_every_trainer(tmp_path):
    """The shared TrainingConfig checks apply to sft, prm and the RL trainers alike."""
    cases = [({"type": "sft", "model": "m", "log_every": 0}, "log_every"),
             ({"type": "sft", "model": "m", "batch_size": 0}, "batch_size"),
             ({"type": "prm", "model": "m", "batch_size": 0}, "batch_size"),
             ({"type": "prm", "model": "m", "log_every": 0}, "log_every"),
             ({"type": "prm", "model": "m", "save_every": -1}, "save_every"),
             ({"type": "grpo", "model": "m", "log_every": 0}, "log_every"),
             ({"type": "ppo", "model": "m", "lr": 0}, "lr")]
    for trainer, field in cases:
        path = tmp_path / "job.yaml"
        path.write_text(json.dumps({"job": "train", "task": {"type": "arith"}, "trainer": trainer}))
        result = CliRunner().invoke(cli, ["validate", str(path)])
        assert result.exit_code == 2 and field in result.output and len(result.output.strip().splitlines()) == 1, \
            (trainer, result.output)


class _RunsCode:
    """Pickles to a call of Path.touch: loading it with pickle would create the file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        from pathlib import Path

        return Path.touch, (self.path,)


def test_trainer_state_is_read_without_running_pickled_code(tmp_path):
    torch.save({"step": 3, "hook": _RunsCode(tmp_path / "ran")}, tmp_path / "trainer_state.pt")
    assert training.read_state(tmp_path) is None  # refused by weights_only=True: an unusable checkpoint
    assert not (tmp_path / "ran").exists()
    torch.save({"step": 3, "optimizer": {"state": {0: {"exp_avg": torch.ones(2)}}}}, tmp_path / "trainer_state.pt")
    assert training.read_state(tmp_path)["step"] == 3


def test_a_data_record_whose_prompt_is_not_text_is_one_line_not_trained_as_its_repr(tmp_path):
    data = tmp_path / "sft.jsonl"
    data.write_text(json.dumps({"prompt": "1+1?", "completion": "2"}) + "\n"
                    + json.dumps({"prompt": {"role": "user"}, "completion": "3"}) + "\n")
    result = CliRunner().invoke(cli, ["run", str(write_config(tmp_path, data=str(data))), "-o", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert f"{data}: record 1: field 'prompt' must be a string, got dict" in result.output
    data.write_text(json.dumps({"question": "1+1?"}) + "\n")
    result = CliRunner().invoke(cli, ["run", str(write_config(tmp_path, data=str(data))), "-o", str(tmp_path / "out2")])
    assert f"{data}: record 0: missing field 'prompt'" in result.output


def test_add_tokens_extends_the_vocabulary_so_new_words_are_learned_not_unknown(tmp_path):
    """A generative verifier writes words the sandbox vocabulary lacks ("verdict", "correct"):
    without `add_tokens` they are [UNK] and cannot be written back as text."""
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"ann has {i} apples .\n", "completion": "verdict : correct"}) + "\n"
                            for i in range(8)))
    out = tmp_path / "out"
    log = run(write_config(tmp_path, data=str(data), add_tokens=["verdict", ":", "correct"], steps=2, batch_size=4,
                           eval_every=0, save_every=0), out)
    assert log[-1]["step"] == 2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out / "final")
    ids = tokenizer("verdict : correct", add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids and tokenizer.decode(ids) == "verdict : correct"
    model = AutoModelForCausalLM.from_pretrained(out / "final")
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) == 239 + 3
    rows = model.get_input_embeddings().weight[-3:]
    gaps = torch.cdist(rows, rows)
    assert min(gaps[0, 1], gaps[0, 2], gaps[1, 2]) > 0.1  # drawn, not three copies of the mean
