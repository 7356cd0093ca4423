"""Token log-probabilities, entropies and values of packed rollouts, and the PPO-clip loss."""

from __future__ import annotations

import torch
from trl.trainer.utils import selective_log_softmax  # TRL's memory-lean log-softmax gather

from openr_rl.advantages import kl_k3
from openr_rl.rollouts import Batch


def _forward(model, batch: Batch):
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                 position_ids=batch.position_ids)


def completion_logits(model, batch: Batch) -> torch.Tensor:
    """Logits that predict each completion token: (B, Lc, vocab)."""
    w = batch.prompt_width
    return _forward(model, batch).logits[:, w - 1:-1]


def token_logprobs(model, batch: Batch) -> torch.Tensor:
    """log pi(token) of every completion token, (B, Lc); zero where the mask is zero."""
    return selective_log_softmax(completion_logits(model, batch), batch.completion_ids) * batch.completion_mask


def logprobs_and_entropy(model, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    logits = completion_logits(model, batch)
    logp = selective_log_softmax(logits, batch.completion_ids) * batch.completion_mask
    with torch.no_grad():
        probs = torch.softmax(logits.float(), dim=-1)
        entropy = -(probs * torch.log_softmax(logits.float(), dim=-1)).sum(-1) * batch.completion_mask
    return logp, entropy


def token_values(value_model, batch: Batch) -> torch.Tensor:
    """V(state before each completion token) from a scalar token head, (B, Lc)."""
    w = batch.prompt_width
    return _forward(value_model, batch).logits[:, w - 1:-1, 0] * batch.completion_mask


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """``token-mean``: every token in the batch weighs the same; ``sequence-mean``: mean per
    rollout, then over rollouts (the original GRPO)."""
    if how == "token-mean":
        return (per_token * mask).sum() / mask.sum().clamp(min=1)
    per_rollout = (per_token * mask).sum(1) / mask.sum(1).clamp(min=1)
    return per_rollout.mean()


def ppo_clip_loss(logp, old_logp, advantages, mask, *, clip_eps: float, kl_coef: float = 0.0,
                  ref_logp=None, aggregation: str = "token-mean") -> tuple[torch.Tensor, dict]:
    """``-min(rho A, clip(rho, 1-eps, 1+eps) A) + kl_coef * k3(pi, pi_ref)`` per token, aggregated."""
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    per_token = -torch.minimum(unclipped, clipped)
    stats = {"clip_fraction": aggregate((unclipped != clipped).float(), mask, "token-mean").item()}
    if ref_logp is not None:
        kl = kl_k3(logp, ref_logp)
        stats["kl"] = aggregate(kl.detach(), mask, "token-mean").item()
        if kl_coef:
            per_token = per_token + kl_coef * kl
    return aggregate(per_token, mask, aggregation), stats


def clipped_value_loss(values, old_values, returns, mask, clip: float) -> torch.Tensor:
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    per_token = 0.5 * torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)
    return aggregate(per_token, mask, "token-mean")
