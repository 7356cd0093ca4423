"""The `prm` trainer: LM-head, classifier, outcome and implicit PRMs on stepwise data.

TRL no longer ships PRMTrainer, so this is our own loop on torch + accelerate (see
docs/prm.md). The loss is read at exactly the positions inference reads scores from
(:func:`openr_prm.scoring.step_logits`), which removes the label/logit off-by-one.
"""

from __future__ import annotations

from typing import Literal

import attrs

from openr_core import Trainer


@attrs.frozen
class PRMTrainerConfig:
    """Data: ``data`` files in ``format``, or (when empty) the run's labeler applied to
    ``problems`` problems of the task's ``split`` with the run's generator."""

    model: str
    kind: Literal["lm-head", "classifier", "outcome", "implicit"] = "lm-head"
    reference: str | None = None
    data: tuple[str, ...] = ()
    format: str = "openr"
    split: str = "train"
    problems: int = 2000
    dev_split: str = "dev"
    dev_problems: int = 200
    steps: int = 500
    batch_size: int = 32
    lr: float = 1e-3
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    soft_labels: bool = False
    steps_after_first_error: bool = True
    prompt_template: str = "{question}\n"
    join: str = "\n"
    step_tag: str = " ки"
    good_token: str = "+"
    bad_token: str = "-"
    separator: str = "<extra_0>"
    beta: float = 0.05
    extra_layers: int = 0
    log_every: int = 20
    eval_every: int = 100
    max_length: int = 4096
    dtype: Literal["float32", "bfloat16"] = "float32"
    device: str = "auto"
    threads: int | None = None


class PRMTrainer(Trainer):
    """Train LM-head, classifier, outcome or implicit PRMs on stepwise data (torch + accelerate)."""

    Config = PRMTrainerConfig

    def train(self, run) -> str:
        from openr_prm.train_loop import train_prm

        return train_prm(self.config, run)
