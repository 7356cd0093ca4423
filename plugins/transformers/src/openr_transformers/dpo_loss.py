"""The ``step-dpo`` objective on the policy loop (imported only when training runs)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from openr_core.errors import DataError
from openr_core.tokenizing import encode_prompts
from openr_transformers.loading import load_causal_lm
from openr_transformers.sft_loop import collate


def load_preference_pairs(config) -> list[tuple[str, str, str, bool, bool]]:
    """(prompt, chosen, rejected, chosen ends the solution, rejected ends it) from ``config.data``."""
    from openr_transformers.datafiles import read_records

    fields = (config.prompt_field, config.chosen_field, config.rejected_field)
    out = []
    for i, r in enumerate(read_records(config.data, config.data_split)[: config.examples]):
        missing = [f for f in fields if not isinstance(r.get(f), str)]
        if missing:
            raise DataError(f"{config.data}: record {i}: no text field '{missing[0]}'")
        out.append((r[fields[0]], r[fields[1]], r[fields[2]], bool(r.get(f"{fields[1]}_ends", False)),
                    bool(r.get(f"{fields[2]}_ends", False))))
    return out


def encode_pair(prompt_ids: list[int], completion_ids: list[int], ends: bool, eos: int, max_length: int):
    ids = (prompt_ids + completion_ids + ([eos] if ends else []))[:max_length]
    return ids, min(len(prompt_ids), len(ids))


def to_divergence(chosen: list[int], rejected: list[int]) -> tuple[list[int], list[int]]:
    """Both completions cut after their first differing token (the shared tokens before it
    cancel in the DPO margin; the tokens after it follow different contexts)."""
    k = next((i for i, (c, r) in enumerate(zip(chosen, rejected)) if c != r), min(len(chosen), len(rejected)))
    return chosen[: k + 1], rejected[: k + 1]


def completion_logprobs(model, input_ids, mask, labels) -> torch.Tensor:
    """Sum of log p(token) over each row's completion tokens (labels != -100)."""
    logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    keep = targets != -100
    logp = torch.log_softmax(logits, -1).gather(2, targets.clamp(min=0).unsqueeze(2)).squeeze(2)
    return (logp * keep).sum(1)


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float) -> torch.Tensor:
    """Mean of -log sigmoid(beta * ((pc - rc) - (pr - rr))) over the pairs."""
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -F.logsigmoid(beta * margin).mean()


class DPOObjective:
    """Examples: ``(chosen (ids, prompt length), rejected (ids, prompt length), reference log p
    of chosen, of rejected)``; loss: :func:`dpo_loss`."""

    name = "step-dpo"

    def __init__(self, config, run, tokenizer):
        self.beta = config.beta
        pairs = load_preference_pairs(config)
        prompts = encode_prompts(tokenizer, [p[0] for p in pairs])
        texts = [c for p in pairs for c in (p[1], p[2])]
        completions = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        encoded = []
        eos = tokenizer.eos_token_id
        for k, (prompt, pair) in enumerate(zip(prompts, pairs)):
            chosen, rejected = completions[2 * k] + [eos] * pair[3], completions[2 * k + 1] + [eos] * pair[4]
            if config.loss_tokens == "to-divergence":
                chosen, rejected = to_divergence(chosen, rejected)
            encoded.append((encode_pair(prompt, chosen, False, eos, config.max_length),
                            encode_pair(prompt, rejected, False, eos, config.max_length)))
        reference = reference_logprobs(config, tokenizer, [s for pair in encoded for s in pair])
        self.examples = [(c, r, reference[2 * k], reference[2 * k + 1]) for k, (c, r) in enumerate(encoded)]

    def loss(self, session, model, batch, tokenizer, device):
        sequences = [ex[0] for ex in batch] + [ex[1] for ex in batch]
        input_ids, mask, labels = (t.to(device) for t in collate(sequences, tokenizer.pad_token_id, True))
        logp = completion_logprobs(model, input_ids, mask, labels)
        n = len(batch)
        ref = torch.tensor([[ex[2] for ex in batch], [ex[3] for ex in batch]], device=device)
        return dpo_loss(logp[:n], logp[n:], ref[0], ref[1], self.beta)


@torch.no_grad()
def reference_logprobs(config, tokenizer, sequences: list) -> list[float]:
    """Completion log-probabilities of ``sequences`` under the starting model ``config.model``."""
    model, _ = load_causal_lm(config.model, dtype=config.dtype, device="cpu")
    model.eval()
    out = []
    for start in range(0, len(sequences), config.reference_batch_size):
        chunk = sequences[start : start + config.reference_batch_size]
        out += completion_logprobs(model, *collate(chunk, tokenizer.pad_token_id, True)).tolist()
    del model
    return out
