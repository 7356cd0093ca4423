"""One attrs config per trainer; the fields they share live in :class:`RLConfig` (docs/rl.md)."""

from __future__ import annotations

from typing import Literal

import attrs

from openr_core.config import count, number
from openr_core.errors import ConfigError
from openr_transformers.training import TrainingConfig

Reward = Literal["outcome", "prm", "mixed"]


@attrs.frozen(kw_only=True)
class RLConfig(TrainingConfig):
    """Fields every RL trainer has (besides the shared :class:`TrainingConfig` ones).

    ``model``: the policy to train (folder, ``pkg:`` or hub name); ``reference`` (default: the
    same checkpoint, frozen) anchors the KL term. Each update samples ``group_size`` rollouts for
    each of ``prompts_per_update`` training prompts, then takes ``epochs`` passes over them in
    ``minibatches`` optimiser steps. The learning rate warms up over ``warmup_steps`` optimiser
    steps, then stays (``schedule: constant``) or decays (``linear``, ``cosine``) to
    ``min_lr_ratio`` × ``lr`` at the last update.

    ``rollout_generator``: a generator section (``{type: vllm, ...}``; ``model`` defaults to the
    policy) that samples the rollouts instead of the transformers generator around the policy; the
    policy's weights are copied into it after every update (:mod:`openr_rl.engines`).
    """

    model: str
    reference: str | None = None
    task_split: str = "train"
    problems: int | None = count(None)
    updates: int = count(200)
    prompts_per_update: int = count(32)
    group_size: int = count(8)
    temperature: float = number(1.0, above=0)
    top_p: float = number(1.0, above=0, maximum=1)
    max_tokens: int = count(96)
    epochs: int = count(1)
    minibatches: int = count(1)
    clip_eps: float = 0.2
    kl_coef: float = 0.0
    loss_aggregation: Literal["token-mean", "sequence-mean"] = "token-mean"
    eval_split: str = "test"
    eval_problems: int = count(500)
    eval_max_tokens: int = count(96)
    generation_batch_size: int = count(1024)
    rollout_generator: dict | None = None
    # shared fields (TrainingConfig) with the RL trainers' own defaults
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    eval_every: int = count(20, minimum=0)
    save_every: int = count(50, minimum=0)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        for name in ("clip_eps", "temperature"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.rollout_generator is not None:
            self._check_rollout_generator()

    def _check_rollout_generator(self) -> None:
        """Check the section like any generator section (``model`` defaults to the policy's)."""
        from openr_core.config import Where, structure_component

        section = self.rollout_generator
        if not isinstance(section, dict) or "type" not in section:
            raise ValueError(f"rollout_generator must be a generator section like {{type: vllm, ...}}, got {section!r}")
        if section["type"] != "vllm":
            raise ValueError(f"rollout_generator.type: only 'vllm' syncs weights from the policy, got {section['type']!r}")
        try:
            structure_component("generator", {"model": self.model, **section}, Where("x", ("rollout_generator",)), None)
        except ConfigError as e:
            raise ValueError(str(e).removeprefix("x: ")) from None
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.minibatches > self.prompts_per_update * self.group_size:
            raise ValueError(f"minibatches ({self.minibatches}) exceeds the rollouts per update "
                             f"({self.prompts_per_update * self.group_size})")


@attrs.frozen(kw_only=True)
class GRPOConfig(RLConfig):
    """``reward``: ``outcome`` (task grader, group-normalised), ``prm`` (the job's reward model,
    DeepSeekMath process supervision) or ``mixed`` (outcome advantage + ``process_coef`` times the
    process advantage). ``process_credit``: ``return`` gives a step's tokens the sum of the normalised
    rewards from that step on (DeepSeekMath); ``step`` gives them their own step's normalised reward
    only; ``min`` (PURE) first reweights each rollout's step rewards by ``softmax(-r / min_temperature)``,
    so that its return is about its minimum step reward, then sums like ``return``.
    ``scale_advantages: false`` is Dr. GRPO (no division by the group std), for outcome and process
    advantages alike."""

    reward: Reward = "outcome"
    process_coef: float = 1.0
    process_credit: Literal["return", "step", "min"] = "return"
    min_temperature: float = number(0.1, above=0)
    scale_advantages: bool = True

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2 for group-relative advantages, got {self.group_size}")


@attrs.frozen(kw_only=True)
class PPOConfig(RLConfig):
    """A value model (the policy's trunk with a fresh scalar head, trained alongside) and GAE.
    Rewards sit on tokens: each step's PRM score (times ``process_coef``) on its last token, the
    outcome reward on the final token. Advantages are whitened over the batch. ``process_credit:
    min`` (PURE) reweights each rollout's step scores by ``softmax(-score / min_temperature)`` first,
    so their sum, the return from the first step, is about the minimum score (``return``: as is)."""

    reward: Reward = "mixed"
    process_coef: float = 1.0
    process_credit: Literal["return", "min"] = "return"
    min_temperature: float = number(0.1, above=0)
    gamma: float = 1.0
    lam: float = 0.95
    value_lr: float | None = None
    value_clip: float = 0.2
    value_coef: float = 0.5
    value_model: str | None = None

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if not (0 <= self.gamma <= 1 and 0 <= self.lam <= 1):
            raise ValueError(f"gamma and lam must be in [0, 1], got {self.gamma}, {self.lam}")


@attrs.frozen(kw_only=True)
class PRIMEConfig(RLConfig):
    """PRIME: an implicit PRM ``beta * log(pi_psi / pi_ref)`` (initialised from ``prm_model``,
    default the policy) gives step rewards; it is updated online with cross-entropy on the
    rollouts' outcome labels after they are scored. Outcome and process rewards each get a
    leave-one-out baseline; the token advantage is ``outcome + process_coef * process return``.
    ``accuracy_filter: [low, high]`` (PRIME's online prompt filter) trains the policy only on
    prompts whose group accuracy lies in that range (the PRM still learns from every rollout);
    null keeps all prompts. ``reward_norm: batch`` (PRIME's ``batch_norm``) divides the implicit
    step rewards by the largest absolute process return in the batch; ``whiten`` (PRIME's recipe)
    whitens the summed advantages over the batch's kept tokens."""

    beta: float = 0.05
    prm_model: str | None = None
    prm_lr: float = 1e-4
    process_coef: float = 1.0
    accuracy_filter: tuple[float, float] | None = None
    reward_norm: Literal["batch", "none"] = "batch"
    whiten: bool = True

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2 for leave-one-out baselines, got {self.group_size}")
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.accuracy_filter is not None:
            low, high = self.accuracy_filter
            if not 0 <= low <= high <= 1:
                raise ValueError(f"accuracy_filter must be [low, high] with 0 <= low <= high <= 1, got {list(self.accuracy_filter)}")


@attrs.frozen(kw_only=True)
class PRLConfig(RLConfig):
    """PRL: step k's process reward is ``outcome - (1/eta) * sum_{j >= k} log(pi/pi_ref)(step j)``;
    a group baseline (mean of the rollouts' full returns, optionally divided by their std) is
    subtracted, and each step's advantage is broadcast to its tokens."""

    eta: float = 10.0
    scale_advantages: bool = True

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if self.eta <= 0:
            raise ValueError(f"eta must be > 0, got {self.eta}")
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2 for group baselines, got {self.group_size}")
