"""The `step-dpo` trainer: the DPO loss by hand, step completions (EOS only where a step ends the
solution), and training that moves the policy's preference towards the chosen step."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from openr_core.cli import cli
from openr_transformers.dpo_loss import completion_logprobs, dpo_loss, encode_pair, to_divergence
from openr_transformers.loading import load_causal_lm
from openr_transformers.sft_loop import collate


def test_dpo_loss_by_hand():
    # margin = (-1 - -2) - (-3 - -2) = 2; beta x margin = 1; -log sigmoid(1) = log(1 + e^-1)
    loss = dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0]), beta=0.5)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    # policy == reference: log 2 whatever the log-probabilities; a mean over pairs
    same = dpo_loss(torch.tensor([-4.0, -1.0]), torch.tensor([-2.0, -9.0]), torch.tensor([-4.0, -1.0]),
                    torch.tensor([-2.0, -9.0]), beta=0.1)
    assert same.item() == pytest.approx(math.log(2), abs=1e-6)


def test_eos_follows_a_step_only_where_it_ends_the_solution():
    assert encode_pair([1, 5], [7, 8], ends=True, eos=2, max_length=10) == ([1, 5, 7, 8, 2], 2)
    assert encode_pair([1, 5], [7, 8], ends=False, eos=2, max_length=10) == ([1, 5, 7, 8], 2)
    assert encode_pair([1, 5, 6], [7, 8], ends=True, eos=2, max_length=4) == ([1, 5, 6, 7], 3)


def test_to_divergence_keeps_each_step_through_its_first_differing_token():
    # "96 - 7 = 89" vs "94 - 7 = 87": only the first token differs; the rest follows other contexts
    assert to_divergence([96, 45, 7, 38, 89], [94, 45, 7, 38, 87]) == ([96], [94])
    assert to_divergence([5, 6, 7], [5, 6, 8, 9]) == ([5, 6, 7], [5, 6, 8])
    assert to_divergence([5, 6], [5, 6, 2]) == ([5, 6], [5, 6, 2])  # a prefix: the extra token (EOS) is the difference


def test_completion_logprobs_sum_the_completion_tokens_only(random_model_dir):
    model, _ = load_causal_lm(random_model_dir, device="cpu")
    seq = ([1, 5, 6, 7, 8], 3)  # prompt 1 5 6, completion 7 8
    ids, mask, labels = collate([seq], pad_id=0, completion_only=True)
    got = completion_logprobs(model, ids, mask, labels)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    assert got.item() == pytest.approx((logp[2, 7] + logp[3, 8]).item(), abs=1e-5)


def test_training_raises_the_chosen_steps_margin_over_the_reference(tmp_path, random_model_dir):
    pairs = [{"prompt": "2 + 3 = ?\n", "chosen": "2 + 3 = 5\n", "rejected": "2 + 3 = 6\n"},
             {"prompt": "4 + 1 = ?\n", "chosen": "The answer is 5", "rejected": "The answer is 7", "chosen_ends": True,
              "rejected_ends": True}]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    config = {"job": "train", "seed": 0, "trainer": {"type": "step-dpo", "model": random_model_dir, "data": str(data),
                                                     "steps": 12, "batch_size": 2, "lr": 0.003, "beta": 0.5,
                                                     "log_every": 1, "warmup_steps": 0, "save_every": 0}}
    path = tmp_path / "dpo.yaml"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(cli, ["run", str(path), "-o", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    log = [json.loads(l) for l in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # step 1: the policy is the reference
    assert log[-1]["loss"] < 0.3

    def margins(location):
        from openr_transformers.dpo_loss import DPOObjective
        from openr_transformers.dpo import StepDPOConfig

        model, tokenizer = load_causal_lm(location, device="cpu")
        objective = DPOObjective(StepDPOConfig(model=random_model_dir, data=str(data)), None, tokenizer)
        seqs = [s for ex in objective.examples for s in ex[:2]]
        logp = completion_logprobs(model, *collate(seqs, tokenizer.pad_token_id, True)).tolist()
        return [logp[2 * k] - logp[2 * k + 1] for k in range(len(pairs))]

    before, after = margins(random_model_dir), margins(str(tmp_path / "out" / "final"))
    assert all(a > b + 1.0 for a, b in zip(after, before)), (before, after)
