"""What differs between the trainers: how scored rollouts become token advantages, and which
extra model (value model, online implicit PRM) trains alongside the policy.

The shared loop (:mod:`openr_rl.loop`) samples, packs and scores rollouts, asks the algorithm
for advantages, then runs the PPO-clip policy update; docs/rl.md has the maths.
"""

from __future__ import annotations

from pathlib import Path

import torch

from openr_transformers.loading import load_causal_lm
from openr_transformers.training import optimiser_step
from openr_rl import advantages as A
from openr_rl.losses import aggregate, clipped_value_loss, token_logprobs, token_values
from openr_rl.rollouts import Batch, Rollout, per_token


def outcome_rewards(rollouts: list[Rollout], group_size: int) -> torch.Tensor:
    return torch.tensor([float(r.correct) for r in rollouts]).view(-1, group_size)


def grouped(values: list, group_size: int) -> list[list]:
    return [values[i:i + group_size] for i in range(0, len(values), group_size)]


def step_sums(token_values: torch.Tensor, rollouts: list[Rollout]) -> list[list[float]]:
    """Sum of a per-token quantity over each step's tokens, per rollout."""
    out = []
    for i, r in enumerate(rollouts):
        sums = [0.0] * r.n_steps
        row = token_values[i].tolist()
        for t, k in enumerate(r.token_steps):
            sums[k] += row[t]
        out.append(sums)
    return out


def step_reward_stats(step_rewards: list[list[float]]) -> dict:
    flat = torch.tensor([x for r in step_rewards for x in r])
    return {"step_reward_mean": flat.mean().item(), "step_reward_std": flat.std().item() if len(flat) > 1 else 0.0,
            "step_reward_min": flat.min().item(), "steps_per_rollout": len(flat) / len(step_rewards)}


def pair_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of (right, wrong) rollout pairs of the same prompt that ``scores`` order correctly,
    over rows of ``(G, n)`` (PRIME's ``dpo_acc``); a tie counts half, and no pair at all gives 0.5."""
    right = labels[:, :, None] > labels[:, None, :]  # [g, i, j]: i right, j wrong
    pairs = right.sum().item()
    if not pairs:
        return 0.5
    diff = scores[:, :, None] - scores[:, None, :]
    return (((diff > 0).float() + 0.5 * (diff == 0).float()) * right).sum().item() / pairs


def load_value_model(location: str, dtype: str, *, fresh_head: bool):
    """The policy's trunk with a scalar token head (``AutoModelForTokenClassification``, 1 label);
    a fresh head starts at zero so the first values are 0 rather than noise."""
    from transformers import AutoModelForTokenClassification

    from openr_transformers.loading import DTYPES, load_pretrained

    model = load_pretrained(AutoModelForTokenClassification, location, "value model", num_labels=1, dtype=DTYPES[dtype])
    head = getattr(model, "score", None) or getattr(model, "classifier", None)
    if fresh_head and head is not None:
        torch.nn.init.zeros_(head.weight)
        if getattr(head, "bias", None) is not None:
            torch.nn.init.zeros_(head.bias)
    model.eval()  # no dropout (the token-classification head has 0.1 by default): resumable, exact
    return model


class Algorithm:
    uses_reference = False  # the loop computes reference log-probs when True (or kl_coef > 0)

    def __init__(self, config, models: dict, session):
        self.config = config
        self.models = models
        self.session = session

    def prepare(self) -> None:
        """Wrap the extra models and their optimisers with accelerate (one process or many)."""

    @classmethod
    def load_models(cls, config, resume: Path | None) -> dict:
        """Extra models to train alongside the policy, from the checkpoint ``resume`` if any."""
        return {}

    @property
    def uses_reward_model(self) -> bool:
        return getattr(self.config, "reward", "outcome") in ("prm", "mixed")

    def advantages(self, rollouts: list[Rollout], batch: Batch, old_logp, ref_logp) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def minibatch_step(self, rows, batch: Batch) -> dict:
        """Train extra models on one minibatch (PPO's value model)."""
        return {}

    def after_update(self, rollouts: list[Rollout], batch: Batch) -> dict:
        """Train extra models on the whole update's rollouts (PRIME's implicit PRM)."""
        return {}

    def extra_models(self) -> dict:
        """Models to checkpoint besides the policy: name -> (unwrapped model, optimizer)."""
        return {}

    def step(self, model, optimizer, loss) -> None:
        optimiser_step(self.session.accelerator, model, optimizer, loss, self.config.max_grad_norm)

    def token_mean(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token mean over the global batch (all processes)."""
        if self.session.world == 1:
            return aggregate(values, mask, "token-mean")
        return self.session.total((values * mask).sum().item()) / self.session.total(mask.sum().item()).clamp(min=1)

    def whiten(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean 0 and std 1 over the masked tokens of the global batch; zero off the mask."""
        mean = self.token_mean(values, mask)
        var = self.token_mean((values - mean) ** 2, mask)
        return (values - mean) / (var.sqrt() + 1e-6) * mask


class GRPO(Algorithm):
    def advantages(self, rollouts, batch, old_logp, ref_logp):
        c, n, L = self.config, self.config.group_size, batch.completion_ids.shape[1]
        token_adv = [[0.0] * len(r.completion_ids) for r in rollouts]
        stats = {}
        if c.reward in ("outcome", "mixed"):
            adv = A.group_normalised(outcome_rewards(rollouts, n), scale=c.scale_advantages).flatten().tolist()
            token_adv = [[adv[i]] * len(r.completion_ids) for i, r in enumerate(rollouts)]
        if c.reward in ("prm", "mixed"):
            weight = 1.0 if c.reward == "prm" else c.process_coef
            step_rewards = [r.step_scores for r in rollouts]
            per_step = self.process_advantages(step_rewards)
            for i, r in enumerate(rollouts):
                process = A.broadcast(per_step[i], r.token_steps)
                token_adv[i] = [a + weight * p for a, p in zip(token_adv[i], process)]
            stats.update(step_reward_stats(step_rewards))
        return per_token(rollouts, token_adv, L), stats

    def process_advantages(self, step_rewards: list[list[float]]) -> list[list[float]]:
        """Per-step process advantages of the update's rollouts (in groups of ``group_size``).
        ``min`` credit (PURE) reweights each rollout's rewards to a soft minimum first; then
        DeepSeekMath's group normalisation and returns, or each step's own normalised reward."""
        c = self.config
        if c.process_credit == "min":
            step_rewards = [A.softmin_weighted(s, c.min_temperature) for s in step_rewards]
        groups = A.process_supervision(grouped(step_rewards, c.group_size), returns=c.process_credit != "step",
                                       scale=c.scale_advantages)
        return [s for group in groups for s in group]


class PRL(Algorithm):
    uses_reference = True

    def advantages(self, rollouts, batch, old_logp, ref_logp):
        c, n, L = self.config, self.config.group_size, batch.completion_ids.shape[1]
        log_ratios = step_sums((old_logp - ref_logp) * batch.completion_mask, rollouts)
        returns = [A.prl_step_returns(float(r.correct), lr, c.eta) for r, lr in zip(rollouts, log_ratios)]
        full = torch.tensor([ret[0] for ret in returns]).view(-1, n)
        mean = full.mean(1, keepdim=True)
        std = torch.ones_like(mean)
        if c.scale_advantages:  # by the outcomes' spread: where they are all equal the returns differ only by
            # the small KL terms, and their own std (~1e-3) would blow those up to the size of an outcome
            spread = outcome_rewards(rollouts, n).std(1, keepdim=True)
            std = torch.where(spread > 0, spread + 1e-6, std)
        token_adv = []
        for i, r in enumerate(rollouts):
            g = i // n
            steps = [(x - mean[g, 0].item()) / std[g, 0].item() for x in returns[i]]
            token_adv.append(A.broadcast(steps, r.token_steps))
        process = [ret[k] - float(r.correct) for r, ret in zip(rollouts, returns) for k in range(len(ret))]
        stats = {"step_reward_mean": sum(process) / len(process), "step_reward_min": min(process)}
        return per_token(rollouts, token_adv, L), stats


class PPO(Algorithm):
    @classmethod
    def load_models(cls, config, resume):
        if resume is not None:
            return {"value": load_value_model(str(resume / "value"), config.dtype, fresh_head=False)}
        return {"value": load_value_model(config.value_model or config.model, config.dtype, fresh_head=True)}

    def __init__(self, config, models, session):
        super().__init__(config, models, session)
        self.value_model = models["value"]
        self.value_optimizer = torch.optim.AdamW(self.value_model.parameters(), lr=config.value_lr or config.lr)
        self.old_values = self.returns = None

    def prepare(self):
        self.value_model, self.value_optimizer = self.session.accelerator.prepare(self.value_model, self.value_optimizer)

    def advantages(self, rollouts, batch, old_logp, ref_logp):
        c, L = self.config, batch.completion_ids.shape[1]
        with torch.no_grad():
            values = token_values(self.value_model, batch)
        adv_rows, ret_rows, step_rewards = [], [], []
        for i, r in enumerate(rollouts):
            T = len(r.completion_ids)
            rewards = [0.0] * T
            if T and c.reward in ("prm", "mixed"):
                last = {k: t for t, k in enumerate(r.token_steps)}  # last token of each step
                scores = A.softmin_weighted(r.step_scores, c.min_temperature) if c.process_credit == "min" else r.step_scores
                for k, t in last.items():
                    rewards[t] += c.process_coef * scores[k]
                step_rewards.append(r.step_scores)
            if T and c.reward in ("outcome", "mixed"):
                rewards[-1] += float(r.correct)
            adv, ret = A.gae(rewards, values[i, :T].tolist(), gamma=c.gamma, lam=c.lam)
            adv_rows.append(adv)
            ret_rows.append(ret)
        adv = per_token(rollouts, adv_rows, L)
        mask = batch.completion_mask
        adv = self.whiten(adv, mask)
        self.old_values, self.returns = values, per_token(rollouts, ret_rows, L)
        stats = {"value_mean": aggregate(values, mask, "token-mean").item()}
        if step_rewards:
            stats.update(step_reward_stats(step_rewards))
        return adv, stats

    def minibatch_step(self, rows, batch):
        values = token_values(self.value_model, batch)
        loss = self.config.value_coef * clipped_value_loss(
            values, self.old_values[rows], self.returns[rows], batch.completion_mask, self.config.value_clip)
        loss = loss * self.session.token_weight(batch.completion_mask.sum().item())
        self.step(self.value_model, self.value_optimizer, loss)
        return {"value_loss": loss.item()}

    def extra_models(self):
        return {"value": (self.session.accelerator.unwrap_model(self.value_model), self.value_optimizer)}


class PRIME(Algorithm):
    uses_reference = True

    @classmethod
    def load_models(cls, config, resume):
        location = str(resume / "prm") if resume is not None else (config.prm_model or config.model)
        return {"prm": load_causal_lm(location, dtype=config.dtype, device="cpu", train=True)[0]}

    def __init__(self, config, models, session):
        super().__init__(config, models, session)
        self.prm = models["prm"]
        self.prm_optimizer = torch.optim.AdamW(self.prm.parameters(), lr=config.prm_lr)
        self.ref_logp = self.kept = None

    def prepare(self):
        self.prm, self.prm_optimizer = self.session.accelerator.prepare(self.prm, self.prm_optimizer)

    def advantages(self, rollouts, batch, old_logp, ref_logp):
        c, n, L = self.config, self.config.group_size, batch.completion_ids.shape[1]
        with torch.no_grad():
            prm_logp = token_logprobs(self.prm, batch)
        self.ref_logp = ref_logp
        step_rewards = [[c.beta * x for x in s] for s in step_sums(prm_logp - ref_logp, rollouts)]
        implicit = torch.tensor([sum(s) for s in step_rewards])
        labels = torch.tensor([float(r.correct) for r in rollouts])
        stats = {"prm_agreement": ((implicit > 0).float() == labels).float().mean().item(),
                 "prm_pair_accuracy": pair_accuracy(implicit.view(-1, n), labels.view(-1, n))}
        stats.update(step_reward_stats(step_rewards))
        if c.reward_norm == "batch":  # PRIME's batch_norm: the largest |return| in the batch becomes 1
            largest = max(abs(x) for s in step_rewards for x in A.suffix_sums(s))
            step_rewards = [[x / (largest + 1e-6) for x in s] for s in step_rewards]
        process = [s for group in A.prime_process_returns(grouped(step_rewards, n)) for s in group]
        outcome = A.leave_one_out(outcome_rewards(rollouts, n)).flatten().tolist()
        token_adv = [[outcome[i] + c.process_coef * p for p in A.broadcast(process[i], r.token_steps)]
                     for i, r in enumerate(rollouts)]
        kept = [True] * (len(rollouts) // n)
        if c.accuracy_filter is not None:
            low, high = c.accuracy_filter
            accuracy = outcome_rewards(rollouts, n).mean(1)
            kept = ((accuracy >= low) & (accuracy <= high)).tolist()
            stats["kept_prompts"] = sum(kept) / len(kept)
        self.kept = torch.tensor([float(kept[i // n]) for i in range(len(rollouts))])
        adv = per_token(rollouts, token_adv, L)
        mask = batch.completion_mask * self.kept[:, None]  # dropped prompts train neither model
        if c.whiten:  # PRIME's recipe whitens the summed advantages over the (kept) batch
            return self.whiten(adv, mask), stats
        return adv * mask, stats

    def after_update(self, rollouts, batch):
        """One cross-entropy step on the outcome labels: sigma(beta * sum_t log pi_psi/pi_ref), on
        the rollouts of the prompts the accuracy filter kept (all without a filter), as PRIME does."""
        if self.session.total(self.kept.sum().item()).item() == 0:
            return {"prm_loss": 0.0}  # the filter dropped every prompt: nothing to learn from
        labels = torch.tensor([float(r.correct) for r in rollouts])
        logits = self.config.beta * ((token_logprobs(self.prm, batch) - self.ref_logp) * batch.completion_mask).sum(1)
        losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        loss = (losses * self.kept).sum() / self.kept.sum().clamp(min=1)
        self.step(self.prm, self.prm_optimizer, loss)
        return {"prm_loss": loss.item()}

    def extra_models(self):
        return {"prm": (self.session.accelerator.unwrap_model(self.prm), self.prm_optimizer)}
