"""The loop every RL trainer shares: sample → grade and score → advantages → PPO-clip updates.

Determinism and resume: the prompts of update u, the rollout seeds and the minibatch order are
pure functions of (seed, u); a checkpoint holds the policy, the optimisers and any extra model,
so a killed run resumes at its last checkpoint and its log keeps no line past it.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from openr_core.errors import ConfigError
from openr_transformers.generator import TransformersGenerator
from openr_transformers.loading import load_causal_lm, pick_device
from openr_transformers.sft_loop import batch_indices, dev_accuracy, schedule_factor
from openr_rl.losses import logprobs_and_entropy, ppo_clip_loss, token_logprobs
from openr_rl.rollouts import pack, sample, score_steps, subset


def latest_checkpoint(folder: Path) -> Path | None:
    done = [p for p in folder.glob("update-*") if (p / "trainer_state.pt").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def save_checkpoint(folder: Path, update: int, model, tokenizer, optimizer, scheduler, algorithm) -> None:
    path = folder / f"update-{update}"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    state = {"update": update, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    for name, (extra, extra_optimizer) in algorithm.extra_models().items():
        extra.save_pretrained(path / name)
        state[f"{name}_optimizer"] = extra_optimizer.state_dict()
    torch.save(state, path / "trainer_state.pt")  # written last: marks the checkpoint complete
    for old in folder.glob("update-*"):
        if old != path:
            shutil.rmtree(old)


def truncate_log(path: Path, last_update: int) -> None:
    """Keep only log lines of updates the checkpoint covers (a resumed run rewrites the rest)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by the kill
        if record.get("update", 0) <= last_update:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept))


class Log:
    """JSONL training log, echoed to stdout and to TensorBoard when it is installed."""

    def __init__(self, folder: Path):
        self.file = open(folder / "train_log.jsonl", "a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.board = SummaryWriter(str(folder / "tensorboard"))
        except ImportError:
            self.board = None

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        print(json.dumps(record), flush=True)
        if self.board is not None:
            for key, value in record.items():
                if key != "update" and isinstance(value, (int, float)):
                    self.board.add_scalar(key, value, record["update"])

    def close(self) -> None:
        self.file.close()
        if self.board is not None:
            self.board.close()


def train_rl(config, run, algorithm_class) -> str:
    out = Path(run.output_dir)
    checkpoints = out / "checkpoints"
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(run.seed)
    task = run.task
    if task is None:
        raise ConfigError("RL trainers need a `task:` (prompts and the outcome grader)")
    if run.config.generator is not None:
        raise ConfigError("generator: RL trainers sample from the policy they train; drop the job's "
                          "`generator:` section (sampling settings live in the trainer config)")
    accelerator = Accelerator(cpu=pick_device(config.device).type == "cpu")
    resume = latest_checkpoint(checkpoints)
    source = str(resume) if resume else config.model
    model, tokenizer = load_causal_lm(source, dtype=config.dtype, device="cpu", train=True)

    needs_ref = algorithm_class.uses_reference or config.kl_coef > 0
    reference = None
    if needs_ref:
        reference, _ = load_causal_lm(config.reference or config.model, dtype=config.dtype, device="cpu")
        reference.requires_grad_(False)
    algorithm = algorithm_class(config, algorithm_class.load_models(config, resume))
    reward_model = run.reward_model if algorithm.uses_reward_model else None
    if algorithm.uses_reward_model and reward_model is None:
        raise ConfigError(f"reward: '{config.reward}' needs the job's `reward_model:` section")

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.updates * config.epochs * config.minibatches
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule_factor(
        s, total=total_steps, warmup=config.warmup_steps, schedule=config.schedule, min_lr_ratio=config.min_lr_ratio))
    start = 0
    if resume is not None:
        state = torch.load(resume / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        for name, (_, extra_optimizer) in algorithm.extra_models().items():
            extra_optimizer.load_state_dict(state[f"{name}_optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["update"]
        truncate_log(out / "train_log.jsonl", start)
        print(f"resuming from {resume} at update {start}", flush=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    policy = accelerator.unwrap_model(model)
    generator = TransformersGenerator.around(policy, tokenizer, batch_size=config.generation_batch_size)

    pool = task.load(config.task_split, config.problems or config.updates * config.prompts_per_update)
    if not pool:
        raise ConfigError(f"task split '{config.task_split}': no problems")
    log = Log(out)
    per_update = config.prompts_per_update * config.group_size

    def evaluate(update: int, seconds: float) -> None:
        if config.eval_every and accelerator.is_main_process:
            acc = dev_accuracy(policy, tokenizer, task, config.eval_split, config.eval_problems,
                               max_tokens=config.eval_max_tokens)
            log.write({"update": update, "rollouts": update * per_update,
                       f"{config.eval_split}_accuracy": round(acc, 4), "seconds": round(seconds, 2)})

    t0 = time.perf_counter()
    if start == 0:
        evaluate(0, 0.0)
    for update in range(start, config.updates):
        mine = batch_indices(len(pool), update, config.prompts_per_update, run.seed)
        mine = mine[accelerator.process_index::accelerator.num_processes]
        problems = [pool[i] for i in mine]
        t_start = time.perf_counter()
        rollouts = sample(generator, task, problems, tokenizer, n=config.group_size,
                          temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_tokens,
                          seed=run.seed, update=update)
        if reward_model is not None:
            score_steps(reward_model, rollouts)
        t_sampled = time.perf_counter()
        batch = pack(rollouts, tokenizer.pad_token_id)
        with torch.no_grad():
            old_logp, entropy = logprobs_and_entropy(policy, batch)
            ref_logp = token_logprobs(reference, batch) if reference is not None else None
        advantages, stats = algorithm.advantages(rollouts, batch, old_logp, ref_logp)
        order = torch.randperm(len(rollouts), generator=torch.Generator().manual_seed(run.seed * 7919 + update))
        for _ in range(config.epochs):
            for rows in order.chunk(config.minibatches):
                mb = subset(batch, rows)
                logp = token_logprobs(model, mb)
                loss, step_stats = ppo_clip_loss(
                    logp, old_logp[rows], advantages[rows], mb.completion_mask, clip_eps=config.clip_eps,
                    kl_coef=config.kl_coef, ref_logp=ref_logp[rows] if ref_logp is not None else None,
                    aggregation=config.loss_aggregation)
                accelerator.backward(loss)
                if config.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                stats.update(step_stats, loss=loss.item())
                stats.update(algorithm.minibatch_step(rows, mb))
        stats.update(algorithm.after_update(rollouts, batch))
        stats.update(sample_seconds=t_sampled - t_start,
                     update_seconds=time.perf_counter() - t_sampled)
        done = update + 1
        if done % config.log_every == 0 or done == config.updates:
            mask = batch.completion_mask
            log.write({"update": done, "rollouts": done * per_update,
                       "reward": round(sum(r.correct for r in rollouts) / len(rollouts), 4),
                       "entropy": round((entropy.sum() / mask.sum()).item(), 4),
                       "tokens": round(mask.sum().item() / len(rollouts), 2),
                       **{k: round(v, 5) for k, v in stats.items()},
                       "seconds": round(time.perf_counter() - t0, 2)})
        if config.eval_every and (done % config.eval_every == 0 or done == config.updates):
            evaluate(done, time.perf_counter() - t0)
        if config.save_every and done % config.save_every == 0 and done < config.updates:
            save_checkpoint(checkpoints, done, policy, tokenizer, optimizer, scheduler, algorithm)
    log.close()
    final = out / "final"
    policy.save_pretrained(final)
    tokenizer.save_pretrained(final)
    for name, (extra, _) in algorithm.extra_models().items():
        extra.save_pretrained(final / name)
    return str(final)
