"""The policy training loop of ``sft`` and ``step-dpo`` (imported only when training runs)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from openr_core.errors import ConfigError, DataError
from openr_core.paths import resolve_location
from openr_core.stepwise import check_text, need
from openr_core.tokenizing import encode_prompts
from openr_transformers.loading import DTYPES, load_causal_lm, load_tokenizer
from openr_transformers.training import (Checkpoints, Clock, RunLog, Session, batch_indices, dev_accuracy,
                                         optimiser, optimiser_step, save_final, save_model)


def load_pairs(config, run) -> list[tuple[str, str]]:
    """(prompt, completion) pairs from ``config.data`` or from the run's task."""
    limit = config.examples or config.steps * config.batch_size
    if config.data:
        from openr_transformers.datafiles import read_records

        records = read_records(config.data, config.data_split)
        pairs = []
        for i, r in enumerate(records[:limit]):
            where = f"{config.data}: record {i}"
            need(r, (config.prompt_field, config.completion_field), where)
            pairs.append((check_text(r[config.prompt_field], where, config.prompt_field),
                          check_text(r[config.completion_field], where, config.completion_field)))
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


class SFTObjective:
    """What the ``sft`` trainer trains on and minimises; :func:`train_policy` runs the loop. Another
    objective on the same loop (``step-dpo``) has the same members."""

    name = "sft"

    def __init__(self, config, run, tokenizer):
        self.examples = encode(load_pairs(config, run), tokenizer, config.max_length)
        self.completion_only = config.completion_only_loss

    def loss(self, session, model, batch, tokenizer, device):
        input_ids, mask, labels = (t.to(device) for t in collate(batch, tokenizer.pad_token_id, self.completion_only))
        return sft_loss(session, model, input_ids, mask, labels)


def train_sft(config, run) -> str:
    return train_policy(config, run, SFTObjective)


def train_policy(config, run, objective_class) -> str:
    """The policy training loop: batches of ``objective.examples`` by (seed, step), the objective's
    loss, logs, dev accuracy, checkpoints and resume."""
    out = Path(run.output_dir)
    session = Session(config, run.seed)
    session.require_divisible("batch_size", config.batch_size)
    checkpoints = Checkpoints(out / "checkpoints", "step", session)
    resume = checkpoints.latest()
    if resume is not None:
        model, tokenizer = load_causal_lm(str(resume[0]), dtype=config.dtype, device="cpu", train=True)
    elif getattr(config, "from_scratch", False):
        location = resolve_location(config.model)
        tokenizer = load_tokenizer(config.model)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(location), dtype=DTYPES[config.dtype])
        model.train()
    else:
        model, tokenizer = load_causal_lm(config.model, dtype=config.dtype, device="cpu", train=True)
    if tokenizer.add_tokens(list(config.add_tokens)):  # a resumed checkpoint has them already
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # drawn like the other rows
    objective = objective_class(config, run, tokenizer)
    examples = objective.examples
    if not examples:
        raise DataError(f"trainer {objective.name}: no training examples")
    optimizer, scheduler = optimiser(model.parameters(), config, config.steps)
    start = 0
    if resume is not None:
        path, state = resume
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["step"]
        if session.is_main:
            print(f"resuming from {path} at step {start}", flush=True)
    accelerator = session.accelerator
    model, optimizer = accelerator.prepare(model, optimizer)
    task = run.task if config.eval_every else None
    log = RunLog(out, "step", start, session.is_main)
    clock = Clock()
    last = config.stop_at or config.steps  # stop_at: end early on the schedule of `steps`
    for step in range(start, last):
        batch = session.share([examples[i] for i in batch_indices(len(examples), step, config.batch_size, run.seed)])
        loss = objective.loss(session, model, batch, tokenizer, accelerator.device)
        optimiser_step(accelerator, model, optimizer, loss, config.max_grad_norm, scheduler)
        done = step + 1
        record = None
        if done % config.log_every == 0 or done == last:
            record = {"step": done, "loss": round(session.mean(loss.item()), 5), "lr": scheduler.get_last_lr()[0],
                      "seconds": clock()}
        if task is not None and (done % config.eval_every == 0 or done == last):
            record = record or {"step": done}
            if session.is_main:
                record[f"{config.eval_split}_accuracy"] = dev_accuracy(
                    accelerator.unwrap_model(model), tokenizer, task, config.eval_split, config.eval_problems)
        if record:
            log.write(record)
        if config.save_every and done % config.save_every == 0 and done < last:
            weights = session.full_weights(model)
            checkpoints.save(done, lambda folder: save_model(folder, accelerator.unwrap_model(model), tokenizer, weights),
                             {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": done})
    log.close()
    weights = session.full_weights(model)
    return save_final(session, out, lambda folder: save_model(folder, accelerator.unwrap_model(model), tokenizer, weights))


def sft_loss(session, model, input_ids, mask, labels):
    """Mean cross-entropy over the completion tokens of the global batch. With several processes
    each one divides its own token sum by the global count over the processes, so the gradient
    DDP averages equals the one-process gradient of the whole batch."""
    if session.world == 1:
        return model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
    tokens = session.total((labels[:, 1:] != -100).sum().item())
    return model(input_ids=input_ids, attention_mask=mask, labels=labels,
                 num_items_in_batch=tokens / session.world).loss
