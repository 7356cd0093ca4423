"""The SFT training loop (imported only when training runs)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import AutoConfig, AutoModelForCausalLM

from openr_core.errors import ConfigError, DataError
from openr_core.paths import resolve_location
from openr_core.types import GenerationRequest, SamplingParams
from openr_core.tokenizing import encode_prompts
from openr_transformers.loading import DTYPES, load_causal_lm, load_tokenizer, pick_device


def load_pairs(config, run) -> list[tuple[str, str]]:
    """(prompt, completion) pairs from ``config.data`` or from the run's task."""
    limit = config.examples or config.steps * config.batch_size
    if config.data:
        from openr_transformers.datafiles import read_records

        records = read_records(config.data, config.data_split)
        pairs = []
        for i, r in enumerate(records[:limit]):
            if config.prompt_field not in r or config.completion_field not in r:
                raise DataError(f"{config.data}: record {i} lacks '{config.prompt_field}' or '{config.completion_field}'")
            pairs.append((str(r[config.prompt_field]), str(r[config.completion_field])))
        return pairs
    task = run.task
    if task is None:
        raise ConfigError("trainer sft: set `data:` or give the job a `task:` to draw examples from")
    pairs = []
    for p in task.load(config.task_split, limit):
        solution = task.reference_solution(p)
        if solution is None:
            raise DataError(f"task split {config.task_split}: problem {p.id} has no reference solution")
        pairs.append((task.prompt(p), solution))
    return pairs


def encode(pairs, tokenizer, max_length: int) -> list[tuple[list[int], int]]:
    """Token ids of prompt + completion + EOS, and how many of them belong to the prompt."""
    prompts = encode_prompts(tokenizer, [p for p, _ in pairs])
    completions = tokenizer([c for _, c in pairs], add_special_tokens=False)["input_ids"]
    out = []
    for p, c in zip(prompts, completions):
        ids = (p + c + [tokenizer.eos_token_id])[:max_length]
        out.append((ids, min(len(p), len(ids))))
    return out


def batch_indices(n: int, step: int, batch_size: int, seed: int) -> list[int]:
    """Example indices of ``step``: a pure function of (seed, step), so resuming is exact."""
    start = step * batch_size
    out = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        take = min(batch_size - len(out), n - offset)
        out.extend(perm[offset : offset + take].tolist())
    return out


def collate(examples, pad_id: int, completion_only: bool):
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(examples):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        mask[i, : len(ids)] = 1
        labels[i, : len(ids)] = torch.tensor(ids)
        if completion_only:
            labels[i, :n_prompt] = -100
    return input_ids, mask, labels


def lr_factor(config, step: int) -> float:
    return schedule_factor(step, total=config.steps, warmup=config.warmup_steps, schedule=config.schedule,
                           min_lr_ratio=config.min_lr_ratio)


def schedule_factor(step: int, *, total: int, warmup: int, schedule: str, min_lr_ratio: float) -> float:
    """LR multiplier at optimiser step ``step`` of ``total``: linear warm-up over ``warmup`` steps,
    then ``constant``, ``linear`` or ``cosine`` decay to ``min_lr_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    shape = 1 - progress if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
    return min_lr_ratio + (1 - min_lr_ratio) * shape


def update(accelerator, model, optimizer, scheduler, loss, max_grad_norm: float) -> None:
    """One optimiser step: backward, optional gradient clipping, step, schedule, zero grads."""
    accelerator.backward(loss)
    if max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    complete = [p for p in found if (p / "trainer_state.pt").exists()]
    return complete[-1] if complete else None


def dev_accuracy(model, tokenizer, task, split: str, n: int, max_tokens: int = 96) -> float:
    """Greedy accuracy on the first ``n`` problems of ``split``."""
    from openr_transformers.decoding import generate

    problems = task.load(split, n)
    requests = [GenerationRequest(task.prompt(p), SamplingParams(max_tokens=max_tokens)) for p in problems]
    model.eval()
    results = generate(model, tokenizer, requests)
    model.train()
    return sum(task.grade(p, r.completions[0].text).correct for p, r in zip(problems, results)) / len(problems)


def train_sft(config, run) -> str:
    out = Path(run.output_dir)
    checkpoints = out / "checkpoints"
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(run.seed)
    accelerator = Accelerator(cpu=pick_device(config.device).type == "cpu")
    resume = latest_checkpoint(checkpoints)
    if resume is not None:
        model, tokenizer = load_causal_lm(str(resume), dtype=config.dtype, device="cpu", train=True)
    elif config.from_scratch:
        location = resolve_location(config.model)
        tokenizer = load_tokenizer(config.model)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(location), dtype=DTYPES[config.dtype])
        model.train()
    else:
        model, tokenizer = load_causal_lm(config.model, dtype=config.dtype, device="cpu", train=True)
    examples = encode(load_pairs(config, run), tokenizer, config.max_length)
    if not examples:
        raise DataError("trainer sft: no training examples")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(config, s))
    start = 0
    if resume is not None:
        state = torch.load(resume / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["step"]
        print(f"resuming from {resume} at step {start}", flush=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    task = run.task if config.eval_every else None
    log = open(out / "train_log.jsonl", "a")
    t0 = time.perf_counter()
    last = config.stop_at or config.steps  # stop_at: end early on the schedule of `steps`
    for step in range(start, last):
        batch = [examples[i] for i in batch_indices(len(examples), step, config.batch_size, run.seed)]
        input_ids, mask, labels = (t.to(accelerator.device) for t in collate(batch, tokenizer.pad_token_id, config.completion_only_loss))
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        update(accelerator, model, optimizer, scheduler, loss, config.max_grad_norm)
        done = step + 1
        record = None
        if done % config.log_every == 0 or done == last:
            record = {"step": done, "loss": round(loss.item(), 5), "lr": scheduler.get_last_lr()[0],
                      "seconds": round(time.perf_counter() - t0, 2)}
        if task is not None and (done % config.eval_every == 0 or done == last):
            record = record or {"step": done}
            record[f"{config.eval_split}_accuracy"] = dev_accuracy(
                accelerator.unwrap_model(model), tokenizer, task, config.eval_split, config.eval_problems)
        if record:
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(json.dumps(record), flush=True)
        if config.save_every and done % config.save_every == 0 and done < last:
            save_checkpoint(accelerator.unwrap_model(model), tokenizer, optimizer, scheduler, done, checkpoints)
    log.close()
    final = out / "final"
    accelerator.unwrap_model(model).save_pretrained(final)
    tokenizer.save_pretrained(final)
    return str(final)


def save_checkpoint(model, tokenizer, optimizer, scheduler, step: int, folder: Path) -> None:
    path = folder / f"step-{step}"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step},
               path / "trainer_state.pt")
    for old in folder.glob("step-*"):
        if old != path:
            import shutil

            shutil.rmtree(old)
