"""Our GRPO (outcome reward) against TRL's GRPOTrainer: same policy, prompts, budget and settings.

Both take one optimiser step per update on ``prompts × group`` rollouts (token-mean "dapo" loss,
rewards scaled by the group std, no KL, constant learning rate, grad-norm clip 1). TRL sees the
exact prompt sequence our loop draws (its dataset is that sequence, unshuffled). Reported:
seconds per update (sampling + loss + step, evaluation excluded) and greedy test accuracy of the
final policies, measured by the same function.

    .venv/bin/python benchmarks/rl_vs_trl.py --updates 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from click.testing import CliRunner

from openr_arith.task import ArithTask
from openr_core.cli import cli
from openr_core.jsonl import read_jsonl
from openr_transformers.loading import load_causal_lm
from openr_transformers.training import batch_indices, dev_accuracy

POLICY = "pkg:openr_arith/models/policy"


def ours(args, out: Path) -> tuple[float, Path]:
    config = {"job": "train", "seed": args.seed, "task": {"type": "arith"}, "trainer": {
        "type": "grpo", "model": POLICY, "reward": "outcome", "updates": args.updates,
        "prompts_per_update": args.prompts, "group_size": args.group, "max_tokens": args.max_tokens,
        "temperature": args.temperature, "lr": args.lr, "eval_every": 0, "save_every": 0,
        "threads": args.threads}}
    path = out / "grpo.yaml"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(cli, ["run", str(path), "-o", str(out / "ours")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    log = read_jsonl(out / "ours" / "train_log.jsonl")
    per_update = [r["sample_seconds"] + r["update_seconds"] for r in log if "update_seconds" in r]
    return statistics.median(per_update), out / "ours" / "final"


def trl(args, out: Path) -> tuple[float, Path]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    task = ArithTask()
    pool = task.load("train", args.updates * args.prompts)
    order = [pool[i] for u in range(args.updates) for i in batch_indices(len(pool), u, args.prompts, args.seed)]
    by_id = {p.id: p for p in pool}
    data = Dataset.from_list([{"prompt": task.prompt(p), "problem_id": p.id} for p in order])

    def outcome(prompts, completions, problem_id, **_):
        return [float(task.grade(by_id[i], c).correct) for c, i in zip(completions, problem_id)]

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds, self.t = [], None

        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.seconds.append(time.perf_counter() - self.t)

    model, tokenizer = load_causal_lm(POLICY, device="cpu", train=True)
    rollouts = args.prompts * args.group
    config = GRPOConfig(
        output_dir=str(out / "trl"), per_device_train_batch_size=rollouts, gradient_accumulation_steps=1,
        num_generations=args.group, steps_per_generation=1, max_completion_length=args.max_tokens,
        temperature=args.temperature, top_p=1.0, top_k=0, learning_rate=args.lr, lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, beta=0.0, loss_type="dapo", scale_rewards="group",
        num_iterations=1, max_steps=args.updates, use_cpu=True, bf16=False, report_to="none",
        logging_steps=10, save_strategy="no", shuffle_dataset=False, seed=args.seed, disable_dropout=True)
    timer = StepTimer()
    trainer = GRPOTrainer(model=model, reward_funcs=outcome, args=config, train_dataset=data,
                          processing_class=tokenizer, callbacks=[timer])
    trainer.train()
    final = out / "trl" / "final"
    trainer.model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    return statistics.median(timer.seconds), final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--eval-problems", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = ArithTask()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        rows = {"start": (None, POLICY)}
        rows["openr grpo"] = ours(args, out)
        rows["trl GRPOTrainer"] = trl(args, out)
        print(f"{args.updates} updates x {args.prompts} prompts x {args.group} rollouts, lr {args.lr}, "
              f"T {args.temperature}, {args.threads} threads")
        print(f"{'run':<18}{'s/update':>10}{'test greedy':>13}")
        figures = {}
        for name, (seconds, location) in rows.items():
            model, tokenizer = load_causal_lm(str(location), device="cpu")
            acc = dev_accuracy(model, tokenizer, task, "test", args.eval_problems, max_tokens=args.max_tokens)
            figures[name] = (seconds, acc)
            print(f"{name:<18}{'' if seconds is None else f'{seconds:.2f}':>10}{acc:>13.3f}")
        ratio = figures["openr grpo"][0] / figures["trl GRPOTrainer"][0]
        print(f"seconds per update, openr / TRL: {ratio:.2f} (target <= 1.5); accuracy difference "
              f"{figures['openr grpo'][1] - figures['trl GRPOTrainer'][1]:+.3f} (target >= 0)")


if __name__ == "__main__":
    main()
