"""The `sft` trainer: supervised fine-tuning with completion-only loss, on torch + accelerate.

Why not TRL's SFTTrainer: our training data is often an unbounded seeded stream from a task
(the arith sandbox), we want the data order to be a pure function of (seed, step) so that a
killed run resumes bit-for-bit, and we evaluate task accuracy during training with our own
generator. That is a 150-line loop; TRL would add a datasets materialisation step and a
Trainer subclass for the same result. Real HF models work the same way (``model: Qwen/...``).
"""

from __future__ import annotations

import attrs

from openr_core import Trainer
from openr_core.config import count, number
from openr_transformers.training import TrainingConfig


@attrs.frozen(kw_only=True)
class PolicyConfig(TrainingConfig):
    """Fields of the trainers on the policy loop (``sft``, ``step-dpo``); docs/training.md."""

    model: str
    data: str | None = None
    data_split: str = "train"
    prompt_field: str = "prompt"
    examples: int | None = count(None)
    steps: int = count(1000)
    stop_at: int | None = None
    batch_size: int = count(256)
    max_length: int = count(512)
    eval_split: str = "dev"
    eval_problems: int = count(200)
    add_tokens: tuple[str, ...] = ()  # words new to the vocabulary, added before training (docs/training.md)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if self.stop_at is not None and not 1 <= self.stop_at <= self.steps:
            raise ValueError(f"stop_at must be in 1..steps ({self.steps}), got {self.stop_at}")


@attrs.frozen(kw_only=True)
class SFTConfig(PolicyConfig):
    """See docs/training.md for every field (the shared ones: :class:`TrainingConfig`)."""

    from_scratch: bool = False
    completion_field: str = "completion"
    task_split: str = "train"
    completion_only_loss: bool = True
    # shared fields with SFT's own defaults
    lr: float = number(3e-3, above=0)
    warmup_steps: int = count(20, minimum=0)
    log_every: int = count(20)
    save_every: int = count(200, minimum=0)


class SFTTrainer(Trainer):
    """Supervised fine-tuning with completion-only loss (torch + accelerate)."""

    Config = SFTConfig

    def train(self, run) -> str:
        from openr_transformers.sft_loop import train_sft

        return train_sft(self.config, run)
