"""Advantage estimators and the KL estimator, as small pure functions on tensors.

Shapes: ``G`` groups (prompts) of ``n`` rollouts each; per-rollout step lists have the length of
that rollout's steps. Every function here is tested on hand-computed examples
(plugins/rl/tests/test_advantages.py); the derivations are in docs/rl.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def group_normalised(rewards: torch.Tensor, *, scale: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """GRPO outcome advantages: ``(r - mean(group)) / (std(group) + eps)`` per row of ``(G, n)``.

    ``scale=False`` leaves out the division (Dr. GRPO). A group whose rewards are all equal gets
    zero advantages, so it contributes no gradient.
    """
    mean = rewards.mean(dim=1, keepdim=True)
    centred = rewards - mean
    if not scale:
        return centred
    std = rewards.std(dim=1, keepdim=True, unbiased=True) if rewards.shape[1] > 1 else torch.ones_like(mean)
    return torch.where(std > 0, centred / (std + eps), torch.zeros_like(centred))


def leave_one_out(rewards: torch.Tensor) -> torch.Tensor:
    """RLOO advantages ``r_i - mean_{j != i} r_j`` per row of ``(G, n)`` (n >= 2)."""
    n = rewards.shape[1]
    if n < 2:
        raise ValueError("leave-one-out baselines need at least 2 rollouts per prompt")
    total = rewards.sum(dim=1, keepdim=True)
    return rewards - (total - rewards) / (n - 1)


def suffix_sums(values: Sequence[float]) -> list[float]:
    """``out[k] = sum(values[k:])``: the return from step k on (gamma = 1)."""
    out, running = [0.0] * len(values), 0.0
    for k in range(len(values) - 1, -1, -1):
        running += values[k]
        out[k] = running
    return out


def process_supervision(step_rewards: Sequence[Sequence[Sequence[float]]], *, returns: bool = True,
                        scale: bool = True, eps: float = 1e-6) -> list[list[list[float]]]:
    """DeepSeekMath process supervision, per step.

    ``step_rewards[g][i][k]``: reward of step k of rollout i of group g. Within a group, every
    step reward is normalised by the mean and std of all step rewards of the group's rollouts;
    a step's advantage is the sum of the normalised rewards from that step to the end
    (``returns=False``: its own normalised reward only). Each token then takes the advantage of its
    own step (:func:`broadcast`). ``scale=False`` only subtracts the mean (Dr. GRPO): a group whose
    steps are all about equally good then gets advantages near 0 instead of its noise divided by
    a tiny std.
    """
    out = []
    for group in step_rewards:
        flat = torch.tensor([r for rollout in group for r in rollout], dtype=torch.float64)
        mean = flat.mean().item() if len(flat) else 0.0
        std = flat.std(unbiased=True).item() if scale and len(flat) > 1 else 1.0
        credit = suffix_sums if returns else list
        out.append([credit([(r - mean) / (std + eps) for r in rollout]) for rollout in group])
    return out


def softmin_weighted(rewards: Sequence[float], temperature: float) -> list[float]:
    """PURE's min-form reweighting of one rollout's step rewards: ``r_k * softmax_k(-r / T)``.

    The weights sum to 1 and concentrate on the smallest reward as ``T -> 0``, so the reweighted
    rewards sum to a soft minimum of ``r`` (exactly ``min r`` in the limit); the steps after the
    worst one then carry almost no reward. PURE (arXiv 2504.15275) uses ``T = 0.1`` on rewards in
    [-1, 1].
    """
    if not rewards:
        return []
    r = torch.tensor(rewards, dtype=torch.float64)
    return (torch.softmax(-r / temperature, dim=0) * r).tolist()


def broadcast(step_values: Sequence[float], token_steps: Sequence[int]) -> list[float]:
    """Each token takes the value of the step it belongs to (``token_steps[t]`` = its step index)."""
    return [step_values[k] for k in token_steps]


def gae(rewards: Sequence[float], values: Sequence[float], *, gamma: float = 1.0, lam: float = 0.95
        ) -> tuple[list[float], list[float]]:
    """Generalised advantage estimation over one rollout's tokens; the value after the last token is 0.

    Returns (advantages, returns) with ``returns = advantages + values``.
    """
    advantages = [0.0] * len(rewards)
    running, next_value = 0.0, 0.0
    for t in range(len(rewards) - 1, -1, -1):
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        advantages[t] = running
        next_value = values[t]
    return advantages, [a + v for a, v in zip(advantages, values)]


def prl_step_returns(outcome: float, step_log_ratios: Sequence[float], eta: float) -> list[float]:
    """PRL per-step process rewards from the outcome reward and the policy/reference log-ratios.

    For the entropy-regularised objective ``E[r] - (1/eta) KL(pi || pi_0)`` the per-step KL
    decomposes into ``l_k = log pi(s_k | x, s_<k) - log pi_0(s_k | x, s_<k)``; the return that
    step k can still influence is ``r - (1/eta) * sum_{j >= k} l_j``. See docs/rl.md.
    """
    return [outcome - tail / eta for tail in suffix_sums(step_log_ratios)]


def prime_process_returns(step_rewards: Sequence[Sequence[Sequence[float]]]) -> list[list[list[float]]]:
    """PRIME's process advantages: leave-one-out baseline on each rollout's mean step reward,
    subtracted from every step reward, then the return from each step on (gamma = 1)."""
    out = []
    for group in step_rewards:
        means = [sum(r) / len(r) if r else 0.0 for r in group]
        n = len(group)
        if n < 2:
            raise ValueError("PRIME's leave-one-out baseline needs at least 2 rollouts per prompt")
        total = sum(means)
        out.append([suffix_sums([r - (total - means[i]) / (n - 1) for r in rollout])
                    for i, rollout in enumerate(group)])
    return out


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(pi || pi_ref) per token: ``exp(d) - d - 1`` with
    ``d = log pi_ref - log pi``; unbiased, always >= 0, low variance."""
    d = ref_logprobs - logprobs
    return torch.exp(d) - d - 1
