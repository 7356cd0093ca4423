"""The four RL trainers. Each is the shared loop (:mod:`openr_rl.loop`) with its own advantage
estimator (:mod:`openr_rl.algorithms`); configs are in :mod:`openr_rl.config`, docs in docs/rl.md.

Why not TRL's GRPOTrainer: its rewards are one scalar per completion, with no place for a
per-step signal, and TRL 1.16 has no PPOTrainer. We use TRL's ``selective_log_softmax`` and
benchmark our GRPO against TRL's GRPOTrainer (benchmarks/rl_vs_trl.py).
"""

from __future__ import annotations

from openr_core import Trainer
from openr_rl import config as C


class _RLTrainer(Trainer):
    algorithm = ""

    def train(self, run) -> str:
        from openr_rl import algorithms
        from openr_rl.loop import train_rl

        return train_rl(self.config, run, getattr(algorithms, self.algorithm))


class GRPOTrainer(_RLTrainer):
    """GRPO: group-relative advantages; outcome, per-step PRM (DeepSeekMath) or mixed rewards."""

    Config = C.GRPOConfig
    algorithm = "GRPO"


class PPOTrainer(_RLTrainer):
    """PPO with a value model and GAE; step rewards on each step's last token."""

    Config = C.PPOConfig
    algorithm = "PPO"


class PRIMETrainer(_RLTrainer):
    """PRIME: an implicit PRM updated online from outcome labels gives dense step rewards."""

    Config = C.PRIMEConfig
    algorithm = "PRIME"


class PRLTrainer(_RLTrainer):
    """PRL: per-step process rewards from the outcome and the KL-regularised objective."""

    Config = C.PRLConfig
    algorithm = "PRL"
