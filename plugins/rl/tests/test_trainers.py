import json
import math
import shutil

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

from openr_core.cli import cli
from openr_core.paths import resolve_location

POLICY = "pkg:openr_arith/models/policy"
SMALL = {"model": POLICY, "updates": 3, "prompts_per_update": 4, "group_size": 4, "max_tokens": 40,
         "lr": 0.001, "eval_every": 3, "eval_problems": 20, "eval_max_tokens": 40, "save_every": 2,
         "threads": 1}
TRAINERS = {
    "grpo-outcome": {"type": "grpo", "reward": "outcome"},
    "grpo-prm": {"type": "grpo", "reward": "prm", "schedule": "linear", "min_lr_ratio": 0.0},
    "grpo-mixed": {"type": "grpo", "reward": "mixed", "kl_coef": 0.1, "minibatches": 2, "epochs": 2},
    "ppo": {"type": "ppo", "reward": "mixed"},
    "ppo-pure": {"type": "ppo", "reward": "prm", "process_credit": "min", "min_temperature": 0.05},
    "prime": {"type": "prime", "accuracy_filter": [0.0, 0.5]},
    "prl": {"type": "prl", "eta": 5.0},
}


def write_config(tmp_path, trainer: dict, reward_model: bool = True):
    body = {"job": "train", "seed": 1, "task": {"type": "arith"}, "trainer": {**SMALL, **trainer}}
    if reward_model:
        body["reward_model"] = {"type": "arith-oracle"}
    path = tmp_path / "rl.yaml"
    path.write_text(json.dumps(body))
    return path


def run(config_path, out, *extra):
    result = CliRunner().invoke(cli, ["run", str(config_path), "-o", str(out), *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def weights(path):
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TRAINERS))
def test_three_updates_change_the_policy_with_finite_loss(tmp_path, name):
    log = run(write_config(tmp_path, TRAINERS[name]), tmp_path / "out")
    updates = [r for r in log if "loss" in r]
    assert [r["update"] for r in updates] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) for r in updates)
    assert [r["rollouts"] for r in updates] == [16, 32, 48]
    evals = [r for r in log if "test_accuracy" in r]
    assert [r["update"] for r in evals] == [0, 3] and all(0 <= r["test_accuracy"] <= 1 for r in evals)
    before, after = weights(resolve_location(POLICY)), weights(tmp_path / "out" / "final")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    if TRAINERS[name].get("reward") in ("prm", "mixed"):
        assert all("step_reward_mean" in r for r in updates)
    if name == "grpo-mixed":
        assert all(r["kl"] >= 0 for r in updates) and updates[-1]["kl"] > 0
    if name == "ppo":
        assert (tmp_path / "out" / "final" / "value").exists() and all("value_loss" in r for r in updates)
    if name == "prime":
        assert (tmp_path / "out" / "final" / "prm").exists() and all("prm_loss" in r for r in updates)
        assert all(0 <= r["kept_prompts"] <= 1 for r in updates)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["grpo-prm", "ppo"])
def test_resume_from_checkpoint_gives_the_same_policy_and_log(tmp_path, name):
    config = write_config(tmp_path, TRAINERS[name])
    full = run(config, tmp_path / "full")
    partial = tmp_path / "partial"
    run(config, partial)
    # simulate a kill after the update-2 checkpoint: drop the end state and cut the log
    shutil.rmtree(partial / "final")
    log_path = partial / "train_log.jsonl"
    lines = log_path.read_text().splitlines()
    log_path.write_text("\n".join(lines[:-1]) + '\n{"update": 3, "cut')
    assert (partial / "checkpoints" / "update-2" / "trainer_state.pt").exists()
    resumed = run(config, partial)
    assert [r["update"] for r in resumed] == [r["update"] for r in full]  # nothing doubled or lost
    a, b = weights(tmp_path / "full" / "final"), weights(partial / "final")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    if name == "ppo":
        assert (partial / "final" / "value").exists()


def test_checkpoint_reloads_as_an_hf_model_that_generates(tmp_path):
    from openr_transformers.generator import TransformersGenerator
    from openr_core.types import GenerationRequest, SamplingParams

    run(write_config(tmp_path, {"type": "grpo", "reward": "outcome", "updates": 2, "eval_every": 0},
                     reward_model=False), tmp_path / "out")
    generator = TransformersGenerator(model=str(tmp_path / "out" / "final"), threads=1)
    result = generator.generate([GenerationRequest("ann has 5 coins . she finds 2 more . how many coins now ?\n",
                                                   SamplingParams(max_tokens=20))])
    assert result[0].completions[0].n_tokens > 0


def test_bad_settings_fail_with_the_field_named(tmp_path):
    config = write_config(tmp_path, {"type": "grpo", "reward": "prm"}, reward_model=False)
    result = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path / "o")])
    assert result.exit_code != 0 and "reward_model" in result.output
    config = write_config(tmp_path, {"type": "grpo", "group_size": 1})
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2 and "group_size" in result.output
    for bad, message in (({"process_credit": "mean"}, "trainer.process_credit: 'mean' is not one of 'return', 'step', 'min'"),
                         ({"min_temperature": 0}, "trainer.min_temperature: must be > 0")):
        config = write_config(tmp_path, {"type": "grpo", "reward": "prm", **bad})
        result = CliRunner().invoke(cli, ["validate", str(config)])
        assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    config = write_config(tmp_path, {"type": "prime", "accuracy_filter": [0.9, 0.2]})
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2 and "accuracy_filter" in result.output


def test_rollout_generator_section_is_checked_by_validate(tmp_path):
    # a nested generator section is checked like a top-level one (issue 15): a misspelt key is one line
    for section, message in (({"type": "vllm", "modle": "x"}, "trainer: rollout_generator.modle: unknown key"),
                             ({"type": "transformers"}, "only 'vllm' syncs weights from the policy"),
                             ({"model": "x"}, "rollout_generator must be a generator section")):
        path = write_config(tmp_path, {"type": "grpo", "reward": "outcome", "rollout_generator": section}, False)
        result = CliRunner().invoke(cli, ["validate", str(path)])
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
    path = write_config(tmp_path, {"type": "grpo", "reward": "outcome", "rollout_generator": {"type": "vllm"}}, False)
    assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 0


def test_a_missing_or_corrupt_value_model_is_one_line(tmp_path):
    from openr_core import DataError
    from openr_rl.algorithms import load_value_model

    with pytest.raises(DataError, match=r"^value model '.*nope': no such folder"):
        load_value_model(str(tmp_path / "nope"), "float32", fresh_head=True)
    folder = tmp_path / "cut"
    shutil.copytree(resolve_location("pkg:openr_arith/models/policy"), folder)
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:5000])
    with pytest.raises(DataError, match=r"^value model '.*cut': cannot load: a .safetensors file is corrupt or cut short"):
        load_value_model(str(folder), "float32", fresh_head=True)


def test_prime_pair_accuracy_by_hand():
    from openr_rl.algorithms import pair_accuracy

    scores = torch.tensor([[0.3, -1.0, 0.5, 0.0], [1.0, 2.0, 0.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    # group 0: right {0.3, 0.0} vs wrong {-1.0, 0.5}: 0.3>-1, 0.3<0.5, 0>-1, 0<0.5 -> 2 of 4; group 1 has no pair
    assert pair_accuracy(scores, labels) == 0.5
    assert pair_accuracy(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0]])) == 1.0
    assert pair_accuracy(scores[1:], labels[1:]) == 0.5
    assert pair_accuracy(torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]])) == 0.5  # a PRM equal to its reference


@pytest.mark.slow
def test_prime_prm_learns_only_from_the_prompts_the_filter_keeps(tmp_path):
    # PRIME drops filtered prompts before both updates; a filter no group of 4 can pass (accuracy
    # 0.99) leaves the PRM exactly at its start (the policy), while the advantages are all zero
    config = write_config(tmp_path, {"type": "prime", "accuracy_filter": [0.99, 0.99], "updates": 1,
                                     "eval_every": 0, "save_every": 0}, reward_model=False)
    log = run(config, tmp_path / "out")
    assert log[-1]["kept_prompts"] == 0 and log[-1]["prm_loss"] == 0.0
    before, prm = weights(resolve_location(POLICY)), weights(tmp_path / "out" / "final" / "prm")
    assert all(torch.equal(before[k], prm[k]) for k in before)


def test_prl_keeps_the_kl_term_small_in_groups_with_equal_outcomes():
    # Group 0: both wrong, step log-ratios 0.02 apart; group 1: one right, one wrong, same log-ratios.
    # Returns: G = r - (1/eta) * sum of log-ratios (eta 10). Group 0's returns are -0.002 and 0.0: before
    # the fix they were divided by their own std (0.0014), giving +-0.71, as big as an outcome; now
    # a group with equal outcomes keeps the KL difference at its size (-+0.001), and a mixed group
    # is scaled by its outcomes' std (0.7071), as in outcome GRPO.
    from openr_rl.algorithms import PRL
    from openr_rl.config import PRLConfig
    from openr_rl.rollouts import Rollout, pack
    from openr_core.types import Problem

    problem = Problem(id="p", question="q", answer="1")
    rollouts = [Rollout(problem, g, "a", ["a"], [1], [5], [0], correct) for g, correct in
                ((0, False), (0, False), (1, True), (1, False))]
    batch = pack(rollouts, pad_id=0)
    old_logp = torch.tensor([[0.02], [0.0], [0.02], [0.0]])
    ref_logp = torch.zeros(4, 1)
    config = PRLConfig(model=POLICY, group_size=2, eta=10.0)
    adv, _ = PRL(config, {}, None).advantages(rollouts, batch, old_logp, ref_logp)
    assert adv[:, 0].tolist() == pytest.approx([-0.001, 0.001, (0.998 - 0.499) / (0.5 ** 0.5 + 1e-6),
                                                (0.0 - 0.499) / (0.5 ** 0.5 + 1e-6)], abs=1e-5)
