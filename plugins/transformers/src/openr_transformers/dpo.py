"""The ``step-dpo`` trainer: DPO on step preference pairs, on the policy loop of ``sft``.

Loss (Rafailov et al. 2023, sigmoid form; Step-DPO applies it to one step given the prefix):
``-log sigmoid(beta * ((log pi(c|x) - log ref(c|x)) - (log pi(r|x) - log ref(r|x))))``, the
log-probabilities summed over the step's tokens. The reference is the starting model
(``model``); its log-probabilities are computed once before the first step (and again on
resume, from ``model``, not the checkpoint), so no second model is held during training.

Why not TRL's DPOTrainer: it is its own Trainer loop (a second loop beside ours, with its own
data order, checkpoints and resume), and it ends every completion with EOS, while a step that
does not end the solution must end with the step separator and no EOS (``chosen_ends`` /
``rejected_ends`` say which). The loss itself is the few lines below.
"""

from __future__ import annotations

from typing import Literal

import attrs

from openr_core import Trainer
from openr_core.config import count, number
from openr_transformers.sft import PolicyConfig


@attrs.frozen(kw_only=True)
class StepDPOConfig(PolicyConfig):
    """``data``: pairs (the ``tree-data`` job's ``pairs.jsonl``): ``prompt_field`` (prompt and
    prefix), ``chosen_field`` / ``rejected_field`` (the steps), and ``<field>_ends`` (true: the
    step ends the solution, EOS follows it). ``beta``: DPO's inverse temperature. ``loss_tokens``:
    ``all`` (the whole step) or ``to-divergence`` (each step up to and including the first token
    where chosen and rejected differ)."""

    data: str
    chosen_field: str = "chosen"
    rejected_field: str = "rejected"
    beta: float = number(0.1, above=0)
    loss_tokens: Literal["all", "to-divergence"] = "all"
    reference_batch_size: int = count(64)
    # shared fields with step-dpo's own defaults
    steps: int = count(200)
    batch_size: int = count(64)
    lr: float = number(1e-4, above=0)
    warmup_steps: int = count(10, minimum=0)
    log_every: int = count(10)
    save_every: int = count(100, minimum=0)


class StepDPOTrainer(Trainer):
    """DPO on step preference pairs (same prefix, Q-ranked sibling steps) on the policy loop."""

    Config = StepDPOConfig

    def train(self, run) -> str:
        from openr_transformers.dpo_loss import DPOObjective
        from openr_transformers.sft_loop import train_policy

        return train_policy(self.config, run, DPOObjective)
