"""The `sft` trainer: supervised fine-tuning with completion-only loss, on torch + accelerate.

Why not TRL's SFTTrainer: our training data is often an unbounded seeded stream from a task
(the arith sandbox), we want the data order to be a pure function of (seed, step) so that a
killed run resumes bit-for-bit, and we evaluate task accuracy during training with our own
generator. That is a 150-line loop; TRL would add a datasets materialisation step and a
Trainer subclass for the same result. Real HF models work the same way (``model: Qwen/...``).
"""

from __future__ import annotations

from typing import Literal

import attrs

from openr_core import Trainer
from openr_core.config import count, number


@attrs.frozen
class SFTConfig:
    """See docs/training.md for every field."""

    model: str
    from_scratch: bool = False
    data: str | None = None
    data_split: str = "train"
    prompt_field: str = "prompt"
    completion_field: str = "completion"
    task_split: str = "train"
    examples: int | None = count(None)
    steps: int = 1000
    stop_at: int | None = None
    batch_size: int = 256
    lr: float = number(3e-3, above=0)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    min_lr_ratio: float = 0.1
    warmup_steps: int = count(20, minimum=0)
    weight_decay: float = number(0.0, minimum=0)
    max_grad_norm: float = number(1.0, minimum=0)  # 0: no clipping
    completion_only_loss: bool = True
    max_length: int = 512
    log_every: int = 20
    eval_every: int = count(0, minimum=0)
    eval_split: str = "dev"
    eval_problems: int = count(200)
    save_every: int = count(200, minimum=0)
    dtype: Literal["float32", "bfloat16"] = "float32"
    device: str = "auto"
    threads: int | None = count(None)

    def __attrs_post_init__(self):
        for name in ("steps", "batch_size", "log_every", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.stop_at is not None and not 1 <= self.stop_at <= self.steps:
            raise ValueError(f"stop_at must be in 1..steps ({self.steps}), got {self.stop_at}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


class SFTTrainer(Trainer):
    """Supervised fine-tuning with completion-only loss (torch + accelerate)."""

    Config = SFTConfig

    def train(self, run) -> str:
        from openr_transformers.sft_loop import train_sft

        return train_sft(self.config, run)
