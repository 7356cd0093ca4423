"""Forward passes of the reward models: all steps of many solutions per forward.

:func:`step_logits` is shared by inference and training, so the position a score is read
from is the position the loss was applied to.
"""

from __future__ import annotations

import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification

from openr_core.errors import DataError
from openr_core.paths import resolve_location
from openr_core.types import ScoreRequest, StepScores
from openr_prm.layout import Layout, build_layout
from openr_transformers.loading import load_causal_lm, load_tokenizer, pick_device, pick_dtype


def token_id(tokenizer, token: str) -> int:
    """The single id of ``token`` (as a vocabulary entry, else its last encoded piece)."""
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or tid == tokenizer.unk_token_id:
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        if not ids or ids[-1] == tokenizer.unk_token_id:
            raise DataError(f"token {token!r} is not in the tokenizer's vocabulary")
        tid = ids[-1]
    return tid


def marker(kind: str, config) -> str:
    return {"lm-head": getattr(config, "step_tag", ""), "classifier": getattr(config, "separator", "")}.get(kind, "")


def layouts_for(tokenizer, kind: str, config, requests: list[ScoreRequest]) -> list[Layout]:
    tag = marker(kind, config)
    out = []
    for r in requests:
        prompt = config.prompt_template.format(question=r.problem.question)
        try:
            out.append(build_layout(tokenizer, prompt, list(r.steps), tag=tag, join=config.join, max_length=config.max_length))
        except ValueError as e:
            raise DataError(f"problem {r.problem.id}: {e}") from None
    return out


def pad(layouts: list[Layout], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(l.input_ids) for l in layouts)
    ids = torch.full((len(layouts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(layouts), width), dtype=torch.long)
    for i, l in enumerate(layouts):
        ids[i, : len(l.input_ids)] = torch.tensor(l.input_ids)
        mask[i, : len(l.input_ids)] = 1
    return ids.to(device), mask.to(device)


def token_logprobs(model, ids, mask) -> torch.Tensor:
    """log p(token t | tokens < t) for t >= 1 (column t-1 of the result)."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    return torch.log_softmax(logits, -1).gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)


def step_logits(kind: str, models: dict, layouts: list[Layout], pad_id: int, extra: dict) -> list[torch.Tensor]:
    """Raw per-step outputs, one tensor per solution: lm-head [n, 2] (good, bad), classifier
    [n, classes], outcome [n], implicit [n] (sum of log-ratios over the step's tokens)."""
    model = models["model"]
    device = next(model.parameters()).device
    ids, mask = pad(layouts, pad_id, device)
    if kind == "implicit":
        policy = token_logprobs(model, ids, mask)
        with torch.no_grad():
            reference = token_logprobs(models["reference"], ids, mask)
        ratio = policy - reference
        return [torch.stack([ratio[i, a - 1 : b - 1].sum() for a, b in l.step_token_spans]) if l.step_token_spans
                else ratio.new_zeros(0) for i, l in enumerate(layouts)]
    if kind == "outcome":
        hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        head = getattr(model, "score", None) or getattr(model, "classifier")
        values = head(hidden).squeeze(-1).float()
        return [values[i, l.read_positions] for i, l in enumerate(layouts)]
    out = model(input_ids=ids, attention_mask=mask)
    logits = (out.logits if hasattr(out, "logits") else out[0]).float()
    if kind == "lm-head" and not extra.get("full_vocab"):
        pair = torch.tensor([extra["good"], extra["bad"]], device=device)
        return [logits[i, l.read_positions][:, pair] for i, l in enumerate(layouts)]
    return [logits[i, l.read_positions] for i, l in enumerate(layouts)]


def to_scores(kind: str, raw: torch.Tensor, config) -> list[float]:
    if kind == "lm-head":
        return torch.softmax(raw, -1)[:, 0].tolist()
    if kind == "classifier":
        return torch.softmax(raw, -1)[:, config.positive_index].tolist()
    if kind == "outcome":
        return (torch.sigmoid(raw) if config.sigmoid else raw).tolist()
    return (config.beta * raw).tolist()


def load_models(kind: str, config, train: bool = False) -> tuple[dict, object]:
    """Models and tokenizer of a reward model of ``kind`` (a config with the common fields)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    if kind in ("lm-head", "implicit"):
        model, tokenizer = load_causal_lm(config.model, tokenizer=config.tokenizer, dtype=config.dtype,
                                          device=config.device, trust_remote_code=config.trust_remote_code, train=train)
        models = {"model": model}
        if kind == "implicit":
            models["reference"], _ = load_causal_lm(config.reference, dtype=config.dtype, device=config.device,
                                                    trust_remote_code=config.trust_remote_code)
        return models, tokenizer
    device = pick_device(config.device)
    path = resolve_location(config.model)
    kwargs = {"dtype": pick_dtype(config.dtype, device), "trust_remote_code": config.trust_remote_code}
    try:
        if kind == "outcome":
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **kwargs)
        elif getattr(config, "head", "") == "remote-code":
            model = AutoModel.from_pretrained(path, **{**kwargs, "trust_remote_code": True})
        else:
            model = AutoModelForTokenClassification.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        raise DataError(f"model '{config.model}': cannot load: {str(e).splitlines()[0]}") from None
    model.to(device).train(train)
    return {"model": model}, load_tokenizer(config.tokenizer or config.model, trust_remote_code=config.trust_remote_code)


class Scorer:
    def __init__(self, kind: str, config, models: dict | None = None, tokenizer=None):
        self.kind, self.config = kind, config
        if models is None:
            models, tokenizer = load_models(kind, config)
        self.models, self.tokenizer = models, tokenizer
        self.extra = {}
        if kind == "lm-head":
            self.extra = {"good": token_id(tokenizer, config.good_token), "bad": token_id(tokenizer, config.bad_token)}
            tag_ids = tokenizer(config.step_tag, add_special_tokens=False)["input_ids"]
            if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in tag_ids:
                raise DataError(f"step tag {config.step_tag!r} is not in the tokenizer's vocabulary")

    @torch.inference_mode()
    def score(self, requests: list[ScoreRequest]) -> list[StepScores]:
        layouts = layouts_for(self.tokenizer, self.kind, self.config, requests)
        out: list[StepScores | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda i: len(layouts[i].input_ids))  # less padding
        size = self.config.batch_size
        for start in range(0, len(order), size):
            chunk = [i for i in order[start : start + size] if layouts[i].read_positions]
            if chunk:
                raw = step_logits(self.kind, self.models, [layouts[i] for i in chunk], self.tokenizer.pad_token_id, self.extra)
                for i, values in zip(chunk, raw):
                    out[i] = StepScores(tuple(to_scores(self.kind, values, self.config)), len(layouts[i].input_ids))
        return [s if s is not None else StepScores((), 0) for s in out]

    def score_per_prefix(self, requests: list[ScoreRequest]) -> list[StepScores]:
        """The slow baseline: one sequence per step prefix, reading only its last step."""
        prefixes = [ScoreRequest(r.problem, r.steps[: k + 1]) for r in requests for k in range(len(r.steps))]
        scored = iter(self.score(prefixes))
        out = []
        for r in requests:
            parts = [next(scored) for _ in r.steps]
            out.append(StepScores(tuple(p.scores[-1] for p in parts), sum(p.n_tokens for p in parts)))
        return out


def build_scorer(kind: str, config) -> Scorer:
    return Scorer(kind, config)
