"""The training scaffold every trainer shares (``sft``, ``prm``, ``grpo``, ``ppo``, ``prime``, ``prl``).

One place for what the loops have in common, so each trainer keeps only what differs:

- :class:`TrainingConfig`: the shared config fields, declared and validated once;
- :class:`Session`: the accelerate state (one process or many), rank sharding, main-process gating;
- :class:`RunLog`: ``train_log.jsonl`` written by the main process only, cut back to the
  checkpoint on resume so no line is doubled;
- :class:`Checkpoints`: atomic checkpoints (written to a temp folder, then renamed), resume from
  the newest complete one; trainer state saved with ``torch.save`` and read with
  ``weights_only=True`` (no pickled code runs on load);
- :func:`optimiser_step`: backward, clip, step, schedule, zero through accelerate, and the
  learning-rate schedule helpers.

Imported only when training runs (torch, accelerate). Multi-process runs: docs/training.md.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import attrs

from openr_core.config import count, number

STATE = "trainer_state.pt"


@attrs.frozen(kw_only=True)
class TrainingConfig:
    """Fields every trainer has (docs/training.md). A trainer restates a field only to give it a
    different default, with the same declaration (``count(...)`` for counts, so it stays checked).

    ``lr`` warms up linearly over ``warmup_steps`` optimiser steps, then stays (``constant``) or
    decays (``linear``, ``cosine``) to ``min_lr_ratio`` x ``lr`` at the last step. Gradients are
    clipped to ``max_grad_norm`` (0: no clipping). A log line every ``log_every`` steps, a
    checkpoint every ``save_every`` (0: none), an evaluation every ``eval_every`` (0: none).
    """

    lr: float = number(1e-4, above=0)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    min_lr_ratio: float = number(0.1, minimum=0, maximum=1)
    warmup_steps: int = count(0, minimum=0)
    weight_decay: float = number(0.0, minimum=0)
    max_grad_norm: float = number(1.0, minimum=0)  # 0: no clipping
    log_every: int = count(1)
    eval_every: int = count(0, minimum=0)
    save_every: int = count(0, minimum=0)
    dtype: Literal["float32", "bfloat16"] = "float32"
    device: str = "auto"
    threads: int | None = count(None)

    def __attrs_post_init__(self):
        """Each field checks itself (``count``/``number``); trainers add their cross-field checks here."""



# --- learning-rate schedule -------------------------------------------------------------------

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


def lr_factor(config: TrainingConfig, step: int, total: int) -> float:
    return schedule_factor(step, total=total, warmup=config.warmup_steps, schedule=config.schedule,
                           min_lr_ratio=config.min_lr_ratio)


def optimiser(params, config: TrainingConfig, total: int):
    """AdamW at ``config.lr`` with the config's schedule over ``total`` optimiser steps."""
    import torch

    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(config, s, total))
    return optimizer, scheduler


def optimiser_step(accelerator, model, optimizer, loss, max_grad_norm: float, scheduler=None) -> None:
    """One optimiser step through accelerate: backward, clip (when ``max_grad_norm``), step,
    schedule, zero grads."""
    accelerator.backward(loss)
    if max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)


# --- data order -------------------------------------------------------------------------------

def batch_indices(n: int, step: int, batch_size: int, seed: int) -> list[int]:
    """Example indices of ``step``: a pure function of (seed, step), so resuming is exact."""
    import torch

    start = step * batch_size
    out = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        take = min(batch_size - len(out), n - offset)
        out.extend(perm[offset : offset + take].tolist())
    return out


# --- evaluation -------------------------------------------------------------------------------

def dev_accuracy(model, tokenizer, task, split: str, n: int, max_tokens: int = 96) -> float:
    """Greedy accuracy on the first ``n`` problems of ``split``."""
    from openr_core.types import GenerationRequest, SamplingParams
    from openr_transformers.decoding import generate

    problems = task.load(split, n)
    requests = [GenerationRequest(task.prompt(p), SamplingParams(max_tokens=max_tokens)) for p in problems]
    model.eval()
    results = generate(model, tokenizer, requests)
    model.train()
    return sum(task.grade(p, r.completions[0].text).correct for p, r in zip(problems, results)) / len(problems)


# --- processes --------------------------------------------------------------------------------

class Session:
    """The accelerate state of one training run: one process, or one of several started by
    ``torchrun`` / ``accelerate launch`` (gloo on CPU, NCCL on GPUs). Each process takes its share
    of every global batch (:meth:`share`); only the main process writes files."""

    def __init__(self, config: TrainingConfig, seed: int):
        import torch
        from accelerate import Accelerator

        from openr_transformers.loading import pick_device

        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(seed)
        self.accelerator = Accelerator(cpu=pick_device(config.device).type == "cpu")
        self.rank = self.accelerator.process_index
        self.world = self.accelerator.num_processes

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def require_divisible(self, name: str, value: int) -> None:
        if value % self.world:
            from openr_core.errors import ConfigError

            raise ConfigError(f"trainer: {name} ({value}) must be a multiple of the number of processes ({self.world})")

    def share(self, items: list) -> list:
        """This process's share of a global batch (every ``world``-th item from ``rank``)."""
        return items[self.rank :: self.world]

    def total(self, value: float):
        """Sum of ``value`` over the processes (a float tensor; ``value`` itself with one process)."""
        import torch

        tensor = torch.as_tensor(value, dtype=torch.float32, device=self.accelerator.device)
        return self.accelerator.reduce(tensor, "sum") if self.world > 1 else tensor

    def mean(self, value: float) -> float:
        """Mean of a per-process scalar over the processes (the value itself with one process)."""
        return value if self.world == 1 else self.total(value).item() / self.world

    def token_weight(self, local_tokens: float) -> float:
        """Factor that turns this process's token mean into its share of the global token mean:
        DDP averages the processes' gradients, so each divides its token sum by (global tokens /
        processes). 1 with one process."""
        if self.world == 1:
            return 1.0
        return local_tokens * self.world / max(1.0, self.total(local_tokens).item())

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def end(self) -> None:
        """After the last collective: wait for every process, then keep the process group alive
        until the process exits. Destroying a gloo group (``destroy_process_group``, or the last
        reference going away with the DDP model or at interpreter exit) joins gloo's worker
        threads while holding the GIL, and a worker that is releasing a tensor waits for the GIL:
        the process hangs, or aborts at exit ("terminate called without an active exception")
        after its work is done. One reference that is never released leaves the group to the
        operating system, which ends its threads with the process."""
        import ctypes

        import torch.distributed as dist

        self.barrier()
        if self.world > 1 and dist.is_available() and dist.is_initialized():
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(dist.group.WORLD))

    @property
    def sharded(self) -> str | None:
        """``deepspeed`` or ``fsdp`` when accelerate shards the parameters or optimiser state."""
        from accelerate.utils import DistributedType

        kind = self.accelerator.distributed_type
        return {DistributedType.DEEPSPEED: "deepspeed", DistributedType.FSDP: "fsdp"}.get(kind)

    def full_weights(self, model) -> dict | None:
        """The whole state dict of a prepared model whose parameters are sharded (DeepSpeed ZeRO,
        FSDP): a collective, so every process calls it before the main one saves. None when each
        process holds the whole model (``save_pretrained`` reads it directly)."""
        return self.accelerator.get_state_dict(model) if self.sharded else None


# --- run log ----------------------------------------------------------------------------------

class RunLog:
    """``train_log.jsonl`` (echoed to stdout, and to TensorBoard when installed), written by the
    main process only. Records carry the step counter ``key`` (``step`` or ``update``). Opening it
    cuts the file back to the lines of steps ``<= resumed`` (none for a fresh start; lines a kill
    cut short are dropped), so a resumed run writes every step once."""

    def __init__(self, folder: Path, key: str, resumed: int, enabled: bool, board: bool = False):
        self.key, self.enabled, self.board = key, enabled, None
        self.path = folder / "train_log.jsonl"
        if not enabled:
            return
        self._cut(resumed)
        self.file = open(self.path, "a")
        if board:
            try:
                from torch.utils.tensorboard import SummaryWriter

                # drop the events of steps the run is about to redo (all of them on a fresh start)
                self.board = SummaryWriter(str(folder / "tensorboard"), purge_step=resumed + 1 if resumed else 0)
            except ImportError:
                pass

    def _cut(self, resumed: int) -> None:
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the kill
            if resumed and isinstance(record, dict) and record.get(self.key, 0) <= resumed:
                kept.append(line)
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(self.path)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        print(json.dumps(record), flush=True)
        if self.board is not None and self.key in record:
            for name, value in record.items():
                if name != self.key and isinstance(value, (int, float)):
                    self.board.add_scalar(name, value, record[self.key])

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.board is not None:
                self.board.close()


class Clock:
    """Seconds since the run (or its resumption) started."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self, digits: int = 2) -> float:
        return round(time.perf_counter() - self.t0, digits)


# --- checkpoints ------------------------------------------------------------------------------

class Checkpoints:
    """``FOLDER/<prefix>-N/`` checkpoints, newest kept. A checkpoint is written into
    ``.<prefix>-N.tmp`` and renamed into place when complete, so a kill mid-write leaves the
    previous one intact; resume takes the newest checkpoint whose state loads (an incomplete or
    corrupt one, e.g. from an older version that wrote in place, is passed over)."""

    def __init__(self, folder: Path, prefix: str, session: Session):
        self.folder, self.prefix, self.session = folder, prefix, session

    def _found(self) -> list[tuple[int, Path]]:
        out = []
        for path in self.folder.glob(f"{self.prefix}-*"):
            number = path.name[len(self.prefix) + 1 :]
            if number.isdigit() and path.is_dir():
                out.append((int(number), path))
        return sorted(out, reverse=True)

    def latest(self) -> tuple[Path, dict] | None:
        """(folder, trainer state) of the newest complete checkpoint, or None."""
        found = self._found()
        if found and self.session.sharded:
            from openr_core.errors import ConfigError

            raise ConfigError(f"{self.folder}: resuming under {self.session.sharded} is not supported (the optimiser "
                              "state is sharded across processes); start a new output folder or resume without it")
        if self.session.is_main:  # half-written checkpoints of a killed run (ours: they never count)
            for stale in self.folder.glob(f".{self.prefix}-*.tmp"):
                shutil.rmtree(stale)
        for _, path in found:
            state = read_state(path)
            if state is not None:
                return path, state
            if self.session.is_main:
                print(f"skipping incomplete checkpoint {path}", flush=True)
        return None

    def save(self, number: int, write: Callable[[Path], None], state: dict) -> None:
        """Write checkpoint ``number``: ``write(folder)`` saves the models, ``state`` (tensors,
        numbers, lists, dicts) goes to ``trainer_state.pt``. Main process only; all wait."""
        if self.session.is_main:
            final = self.folder / f"{self.prefix}-{number}"
            tmp = self.folder / f".{self.prefix}-{number}.tmp"
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            write(tmp)
            write_state(tmp, state)
            _fsync_tree(tmp)
            if final.exists():  # a leftover of a run that died before cleaning up
                shutil.rmtree(final)
            os.replace(tmp, final)
            for n, old in self._found():
                if n != number:
                    shutil.rmtree(old)
        self.session.barrier()


def write_state(folder: Path, state: dict) -> None:
    import torch

    torch.save(state, folder / STATE)


def read_state(folder: Path) -> dict | None:
    """The checkpoint's trainer state (loaded with ``weights_only=True``), or None when it is
    missing or unreadable."""
    import torch

    path = folder / STATE
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception:  # truncated zip, bad pickle: an incomplete checkpoint
        return None


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def save_model(folder: Path, model, tokenizer=None, weights: dict | None = None) -> None:
    """An HF model folder; ``weights``: the gathered state dict of a sharded model."""
    if weights is not None:
        model.save_pretrained(folder, state_dict=weights)
    else:
        model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)


def save_final(session: Session, out: Path, write: Callable[[Path], None]) -> str:
    """Write ``OUTPUT/final`` (main process) atomically, like a checkpoint; return its path."""
    final = out / "final"
    if session.is_main:
        tmp = out / ".final.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        write(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    session.end()
    return str(final)
