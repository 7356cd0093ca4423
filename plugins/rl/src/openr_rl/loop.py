"""The loop every RL trainer shares: sample → grade and score → advantages → PPO-clip updates.

Determinism and resume: the prompts of update u, the rollout seeds and the minibatch order are
pure functions of (seed, u); a checkpoint holds the policy, the optimisers and any extra model,
so a killed run resumes at its last checkpoint and its log keeps no line past it.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from openr_core.errors import ConfigError
from openr_transformers.generator import TransformersGenerator
from openr_transformers.loading import load_causal_lm
from openr_transformers.training import (Checkpoints, Clock, RunLog, Session, batch_indices, dev_accuracy,
                                         optimiser, optimiser_step, save_final, save_model)
from openr_rl import engines
from openr_rl.losses import logprobs_and_entropy, ppo_clip_loss, token_logprobs
from openr_rl.rollouts import pack, sample, score_steps, subset


def train_rl(config, run, algorithm_class) -> str:
    out = Path(run.output_dir)
    task = run.task
    if task is None:
        raise ConfigError("RL trainers need a `task:` (prompts and the outcome grader)")
    if run.config.generator is not None:
        raise ConfigError("generator: RL trainers sample from the policy they train; drop the job's "
                          "`generator:` section (sampling settings live in the trainer config)")
    session = Session(config, run.seed)
    session.require_divisible("prompts_per_update", config.prompts_per_update)
    accelerator = session.accelerator
    if session.sharded:  # rollouts need the whole policy on every process (TRL gathers ZeRO-3 weights; we do not yet)
        raise ConfigError(f"RL trainers run data-parallel (DDP) only, not under {session.sharded}; see docs/rl.md")
    checkpoints = Checkpoints(out / "checkpoints", "update", session)
    resume = checkpoints.latest()
    folder = resume[0] if resume else None
    model, tokenizer = load_causal_lm(str(folder) if folder else config.model, dtype=config.dtype, device="cpu", train=True)

    needs_ref = algorithm_class.uses_reference or config.kl_coef > 0
    reference = None
    if needs_ref:
        reference, _ = load_causal_lm(config.reference or config.model, dtype=config.dtype, device="cpu")
        reference.requires_grad_(False)
    algorithm = algorithm_class(config, algorithm_class.load_models(config, folder), session)
    reward_model = run.reward_model if algorithm.uses_reward_model else None
    if algorithm.uses_reward_model and reward_model is None:
        raise ConfigError(f"reward: '{config.reward}' needs the job's `reward_model:` section")

    optimizer, scheduler = optimiser(model.parameters(), config, config.updates * config.epochs * config.minibatches)
    start = 0
    if resume is not None:
        state = resume[1]
        optimizer.load_state_dict(state["optimizer"])
        for name, (_, extra_optimizer) in algorithm.extra_models().items():
            extra_optimizer.load_state_dict(state[f"{name}_optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["update"]
        if session.is_main:
            print(f"resuming from {folder} at update {start}", flush=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    algorithm.prepare()
    policy = accelerator.unwrap_model(model)
    if config.rollout_generator is not None:
        if session.world > 1:  # each process would start its own engine inside torch.distributed (untested)
            raise ConfigError("trainer.rollout_generator: vLLM rollouts run with one training process only (for now)")
        generator = engines.build(config.rollout_generator, str(folder) if folder else config.model)
        engines.sync_weights(generator, policy)  # a resumed policy, or one whose weights differ from the folder's
    else:
        generator = TransformersGenerator.around(policy, tokenizer, batch_size=config.generation_batch_size)

    pool = task.load(config.task_split, config.problems or config.updates * config.prompts_per_update)
    if not pool:
        raise ConfigError(f"task split '{config.task_split}': no problems")
    log = RunLog(out, "update", start, session.is_main, board=True)
    per_update = config.prompts_per_update * config.group_size

    def evaluate(update: int, seconds: float) -> None:
        if config.eval_every and session.is_main:
            acc = dev_accuracy(policy, tokenizer, task, config.eval_split, config.eval_problems,
                               max_tokens=config.eval_max_tokens)
            log.write({"update": update, "rollouts": update * per_update,
                       f"{config.eval_split}_accuracy": round(acc, 4), "seconds": round(seconds, 2)})

    clock = Clock()
    if start == 0:
        evaluate(0, 0.0)
    for update in range(start, config.updates):
        problems = session.share([pool[i] for i in batch_indices(len(pool), update, config.prompts_per_update, run.seed)])
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
                if config.loss_aggregation == "token-mean":
                    loss = loss * session.token_weight(mb.completion_mask.sum().item())
                optimiser_step(accelerator, model, optimizer, loss, config.max_grad_norm, scheduler)
                stats.update(step_stats, loss=loss.item())
                stats.update(algorithm.minibatch_step(rows, mb))
        stats.update(algorithm.after_update(rollouts, batch))
        if config.rollout_generator is not None:
            engines.sync_weights(generator, policy)
        stats.update(sample_seconds=t_sampled - t_start,
                     update_seconds=time.perf_counter() - t_sampled)
        done = update + 1
        if done % config.log_every == 0 or done == config.updates:
            mask = batch.completion_mask
            tokens = session.total(mask.sum().item()).item()
            log.write({"update": done, "rollouts": done * per_update,
                       "reward": round(session.total(sum(r.correct for r in rollouts)).item() / per_update, 4),
                       "entropy": round(session.total((entropy.sum()).item()).item() / tokens, 4),
                       "tokens": round(tokens / per_update, 2),
                       **{k: round(session.mean(v), 5) for k, v in stats.items()},
                       "seconds": clock()})
        if config.eval_every and (done % config.eval_every == 0 or done == config.updates):
            evaluate(done, clock())
        if config.save_every and done % config.save_every == 0 and done < config.updates:
            state = {"update": done, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
            for name, (_, extra_optimizer) in algorithm.extra_models().items():
                state[f"{name}_optimizer"] = extra_optimizer.state_dict()
            checkpoints.save(done, lambda folder: save_models(folder, policy, tokenizer, algorithm), state)
    log.close()
    if config.rollout_generator is not None:
        generator.close()
    return save_final(session, out, lambda folder: save_models(folder, policy, tokenizer, algorithm))


def save_models(folder: Path, policy, tokenizer, algorithm) -> None:
    save_model(folder, policy, tokenizer)
    for name, (extra, _) in algorithm.extra_models().items():
        extra.save_pretrained(folder / name)
