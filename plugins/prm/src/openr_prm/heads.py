"""One class per reward-model head kind: its text layout, loading, raw outputs -> step scores,
training loss and vocabulary set-up. ``lm-head-prm``, ``classifier-prm``, ``outcome-rm``,
``implicit-prm``, the ``prm`` trainer and ``vllm-prm`` all go through these classes, so a new
family is one :class:`Head` subclass (plus its ``Config`` in :mod:`openr_prm.models`).

Raw outputs (one tensor per solution, one row per step): lm-head ``[n, 2]`` (good, bad logits),
classifier ``[n, classes]``, outcome ``[n]`` (the scalar head), implicit ``[n]`` (sums of
log pi_theta - log pi_ref).
"""

from __future__ import annotations

import attrs
import torch

from openr_core.errors import ConfigError, DataError
from openr_core.types import LabelledExample, ScoreRequest
from openr_prm.layout import Layout, build_layout, build_piecewise_layout, build_turns_layout, chat_frame, fill
from openr_transformers.loading import load_causal_lm, load_pretrained, load_tokenizer, pick_device, pick_dtype


def label_id(tokenizer, label: str) -> int:
    """The id of ``label`` as the model cards take it: ``tokenizer.encode(label)`` without special
    tokens (Math-Shepherd's ``encode("+ -")[1:]`` gives the same ``▁+`` / ``▁-`` pieces of its
    SentencePiece vocabulary; RLHFlow's ``encode("+")[-1]`` the same ``+`` of Llama-3's). Anything
    but exactly one known piece is an error."""
    ids = tokenizer(label, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or (tokenizer.unk_token_id is not None and ids[0] == tokenizer.unk_token_id):
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise DataError(f"label token {label!r} is {len(ids)} pieces {pieces} in this tokenizer, not one vocabulary piece")
    return ids[0]


def pad(layouts: list[Layout], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(l.input_ids) for l in layouts)
    ids = torch.full((len(layouts), width), pad_id if pad_id is not None else 0, dtype=torch.long)
    mask = torch.zeros((len(layouts), width), dtype=torch.long)
    for i, l in enumerate(layouts):
        ids[i, : len(l.input_ids)] = torch.tensor(l.input_ids)
        mask[i, : len(l.input_ids)] = 1
    return ids.to(device), mask.to(device)


def token_logprobs(model, ids, mask) -> torch.Tensor:
    """log p(token t | tokens < t) for t >= 1 (column t-1 of the result)."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    return torch.log_softmax(logits, -1).gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)


def load_checked(auto_class, config, allowed_unused: tuple[str, ...] = (), new_head: bool = False, **kwargs):
    """``auto_class.from_pretrained`` that refuses a checkpoint whose weights do not match the
    class (transformers would initialise the missing ones at random and drop the unexpected).
    ``new_head`` (training from a base model): the head may be missing, and the LM head unused."""
    device = pick_device(config.device)
    kwargs = {"dtype": pick_dtype(config.dtype, device), "trust_remote_code": config.trust_remote_code, **kwargs}
    model, info = load_pretrained(auto_class, config.model, output_loading_info=True, **kwargs)
    missing = sorted(info.get("missing_keys") or ())
    if new_head:
        trunk = getattr(model, "base_model_prefix", "") + "."
        missing = [k for k in missing if k.startswith(trunk)]
        allowed_unused = (*allowed_unused, "lm_head.")
    unexpected = sorted(k for k in info.get("unexpected_keys") or () if not k.startswith(allowed_unused))
    if missing or unexpected:
        raise DataError(f"model '{config.model}': its weights do not match head {getattr(config, 'head', '')!r} "
                        f"({type(model).__name__}): missing {', '.join(missing) or 'none'}; "
                        f"unexpected {', '.join(unexpected) or 'none'}")
    return model.to(device)


class Head:
    """What one kind of reward model does; ``config`` is its reward-model config."""

    kind = ""
    Config: type = None  # the reward-model config class (openr_prm.models)
    special_marker = False  # add a missing marker to the vocabulary as a special token

    def __init__(self, config):
        self.config = config

    @classmethod
    def from_fields(cls, other) -> Head:
        """The head configured from any config with the same field names (the ``prm`` trainer's,
        so training and inference read the same positions; ``vllm-prm``'s)."""
        names = {f.name for f in attrs.fields(cls.Config)}
        return cls(cls.Config(**{n: getattr(other, n) for n in names if hasattr(other, n)}))

    # -- text layout --------------------------------------------------------------------------
    @property
    def marker(self) -> str:
        """The text after every step (step tag / separator), '' for none."""
        return ""

    def layout(self, tokenizer, request: ScoreRequest) -> Layout:
        c = self.config
        if c.chat:
            prompt, suffix = chat_frame(tokenizer, request.problem.question, c.system_prompt)
            special = False  # the rendered template holds every special token it wants
        else:
            prompt, suffix = fill(c.prompt_template, request.problem.question, tokenizer.bos_token), c.suffix
            special = True
        return build_layout(tokenizer, prompt, list(request.steps), tag=self.marker, join=c.join,
                            max_length=c.max_length, suffix=suffix, add_special_tokens=special)

    def layouts(self, tokenizer, requests: list[ScoreRequest]) -> list[Layout]:
        out = []
        for r in requests:
            try:
                out.append(self.layout(tokenizer, r))
            except ValueError as e:
                raise DataError(f"problem {r.problem.id}: {e}") from None
        return out

    # -- loading ------------------------------------------------------------------------------
    def load(self, train: bool = False) -> tuple[dict, object]:
        c = self.config
        model, tokenizer = load_causal_lm(c.model, tokenizer=c.tokenizer, dtype=c.dtype, device=c.device,
                                          trust_remote_code=c.trust_remote_code, train=train)
        return {"model": model}, tokenizer

    def load_head_model(self, auto_class, train: bool, **kwargs) -> tuple[dict, object]:
        c = self.config
        model = load_checked(auto_class, c, new_head=train, **kwargs)
        model.train(train)
        return {"model": model}, load_tokenizer(c.tokenizer or c.model, trust_remote_code=c.trust_remote_code)

    def setup(self, tokenizer) -> None:
        """Check (and resolve) the tokens this head reads, once the tokenizer is known."""
        tag = self.marker
        if tag:
            ids = tokenizer(tag, add_special_tokens=False)["input_ids"]
            if not ids or (tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids):
                raise DataError(f"step tag {tag!r} is not in the tokenizer's vocabulary")

    # -- forward, scores, loss ----------------------------------------------------------------
    def raw(self, models: dict, layouts: list[Layout], pad_id: int) -> list[torch.Tensor]:
        raise NotImplementedError

    def scores(self, raw: torch.Tensor) -> list[float]:
        raise NotImplementedError

    def loss(self, raw: torch.Tensor, example: LabelledExample, soft_labels: bool) -> torch.Tensor:
        """Cross-entropy of the step labels against two columns (good, bad) of ``raw``."""
        good_col, bad_col = self.label_columns
        good = torch.tensor([float(x) for x in (example.soft_labels if soft_labels and example.soft_labels
                                                 else example.labels)][: raw.shape[0]])
        logp = torch.log_softmax(raw, -1)
        return -(good * logp[:, good_col] + (1 - good) * logp[:, bad_col]).mean()

    label_columns = (1, 0)

    # -- training set-up ----------------------------------------------------------------------
    def tokens_to_learn(self) -> list[str]:
        """Texts that must be single known tokens before training (added when missing)."""
        return [self.marker.strip()]

    def init_new_tokens(self, model, tokenizer, missing: list[str], old: torch.Tensor) -> None:
        """Embeddings of newly added tokens other than the marker (default: transformers' mean)."""


def _logits(out) -> torch.Tensor:
    return (out.logits if hasattr(out, "logits") else out[0]).float()


class LMHead(Head):
    """Math-Shepherd / RLHFlow: P(good) / (P(good) + P(bad)) of the LM head at the read position."""

    kind = "lm-head"
    label_columns = (0, 1)  # raw columns: (good, bad)

    @property
    def marker(self) -> str:
        return "" if self.config.chat_turns else self.config.step_tag

    def layout(self, tokenizer, request):
        c = self.config
        if c.chat_turns:
            return build_turns_layout(tokenizer, request.problem.question, list(request.steps), c.good_token,
                                      c.system_prompt, c.max_length)
        return super().layout(tokenizer, request)

    def setup(self, tokenizer):
        super().setup(tokenizer)
        self.good, self.bad = label_id(tokenizer, self.config.good_token), label_id(tokenizer, self.config.bad_token)

    def raw(self, models, layouts, pad_id, full_vocab: bool = False):
        model = models["model"]
        ids, mask = pad(layouts, pad_id, next(model.parameters()).device)
        logits = _logits(model(input_ids=ids, attention_mask=mask))
        rows = [logits[i, l.read_positions] for i, l in enumerate(layouts)]
        return rows if full_vocab else [r[:, [self.good, self.bad]] for r in rows]

    def scores(self, raw):
        return torch.softmax(raw, -1)[:, 0].tolist()

    def tokens_to_learn(self):
        return [self.marker.strip(), self.config.good_token.strip(), self.config.bad_token.strip()]

    def init_new_tokens(self, model, tokenizer, missing, old):
        # transformers' mean resizing gives every new row the old mean plus noise of 1e-9 times the
        # old covariance: `good` and `bad` come out identical (|e_good - e_bad| ~ 1e-4), so their
        # logits are equal whatever the hidden state and the loss has almost no gradient except
        # through those two rows. Draw the label tokens like ordinary, distinct tokens.
        labels = {tokenizer.convert_tokens_to_ids(t) for t in missing if t != self.marker.strip()}
        with torch.no_grad():
            weight = model.get_input_embeddings().weight
            for tid in sorted(labels):
                weight[tid] = old.mean(0) + old.std(0) * torch.randn(old.shape[1], dtype=old.dtype)
            out = model.get_output_embeddings()
            if out is not None and out.weight is not weight:
                for tid in sorted(labels):
                    out.weight[tid] = weight[tid]


class ClassifierHead(Head):
    """A token-classification head read at every separator (Qwen2.5-Math-PRM)."""

    kind = "classifier"
    special_marker = True

    @property
    def marker(self):
        return self.config.separator

    @property
    def label_columns(self):
        return self.config.positive_index, 1 - self.config.positive_index

    def load(self, train=False):
        from transformers import AutoModel, AutoModelForTokenClassification

        if self.config.head == "remote-code":
            return self.load_head_model(AutoModel, train, trust_remote_code=True)
        return self.load_head_model(AutoModelForTokenClassification, train)

    def raw(self, models, layouts, pad_id):
        model = models["model"]
        ids, mask = pad(layouts, pad_id, next(model.parameters()).device)
        logits = _logits(model(input_ids=ids, attention_mask=mask))
        return [logits[i, l.read_positions] for i, l in enumerate(layouts)]

    def scores(self, raw):
        return torch.softmax(raw, -1)[:, self.config.positive_index].tolist()


class OutcomeHead(Head):
    """A scalar head read at the end of every step; with a ``suffix`` the last step is read at
    the end of the whole text, where an outcome RM's card reads its reward."""

    kind = "outcome"

    @property
    def marker(self):
        return self.config.step_tag

    def layout(self, tokenizer, request):
        c = self.config
        if c.tokenize == "per-step":
            if c.chat:
                raise ConfigError("outcome-rm: tokenize per-step takes prompt_template, not chat")
            prompt = fill(c.prompt_template, request.problem.question, tokenizer.bos_token)
            return build_piecewise_layout(tokenizer, prompt, list(request.steps), c.step_tag, c.max_length)
        layout = super().layout(tokenizer, request)
        if layout.read_positions and len(layout.input_ids) - 1 > layout.read_positions[-1] and (c.suffix or c.chat):
            layout = attrs.evolve(layout, read_positions=[*layout.read_positions[:-1], len(layout.input_ids) - 1])
        return layout

    def load(self, train=False):
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification

        head = self.config.head
        if head == "remote-code":
            return self.load_head_model(AutoModel, train, trust_remote_code=True)
        if head == "value-head":  # Skywork: a causal LM trunk and v_head.summary = Linear(hidden, 1)
            return self.load_head_model(AutoModelForTokenClassification, train, num_labels=1, allowed_unused=("lm_head.",),
                                        key_mapping={r"^v_head\.summary\.": "score."})
        return self.load_head_model(AutoModelForSequenceClassification, train, num_labels=1)

    def raw(self, models, layouts, pad_id):
        model = models["model"]
        ids, mask = pad(layouts, pad_id, next(model.parameters()).device)
        if self.config.head == "value-head":
            values = _logits(model(input_ids=ids, attention_mask=mask))[..., 0]
        else:  # sequence heads pool one position: apply the head to every position's state
            hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
            values = model.score(hidden).squeeze(-1).float()
        return [values[i, l.read_positions] for i, l in enumerate(layouts)]

    def scores(self, raw):
        return (torch.sigmoid(raw) if self.config.sigmoid else raw).tolist()

    def loss(self, raw, example, soft_labels):
        outcome = float(example.meta.get("outcome", all(example.labels)))
        return torch.nn.functional.binary_cross_entropy_with_logits(raw[-1], torch.tensor(outcome))


class ImplicitHead(Head):
    """PRIME's implicit PRM: beta * log(pi_theta / pi_ref), summed over each step's tokens
    (``reward: step``) or accumulated from the response start (``reward: cumulative``)."""

    kind = "implicit"

    @classmethod
    def from_fields(cls, other):
        return super().from_fields(attrs.evolve(other, reference=other.reference or other.model))

    def layout(self, tokenizer, request):
        layout = super().layout(tokenizer, request)
        if self.config.reward != "cumulative" or not layout.step_ends:
            return layout
        # EurusPRM's card: step k's reward sums log-ratios from the last prompt token through index
        # len(tokens of the text up to step k) (+1 for every step but the last), re-tokenising prefixes
        special = not self.config.chat
        n, last = len(layout.step_ends), len(layout.input_ids) - 1
        ends = [min(last, len(tokenizer(layout.text[:e], add_special_tokens=special)["input_ids"]) + (k < n - 1))
                for k, e in enumerate(layout.step_ends)]
        return attrs.evolve(layout, read_positions=ends)

    def load(self, train=False):
        c = self.config
        models, tokenizer = super().load(train)
        models["reference"], _ = load_causal_lm(c.reference, dtype=c.dtype, device=c.device,
                                                trust_remote_code=c.trust_remote_code)
        for p in models["reference"].parameters():
            p.requires_grad_(False)
        return models, tokenizer

    def raw(self, models, layouts, pad_id):
        model = models["model"]
        ids, mask = pad(layouts, pad_id, next(model.parameters()).device)
        policy = token_logprobs(model, ids, mask)
        with torch.no_grad():
            reference = token_logprobs(models["reference"], ids, mask)
        ratio = policy - reference
        return [self.combine(l, ratio[i]) for i, l in enumerate(layouts)]

    def combine(self, layout: Layout, ratio: torch.Tensor) -> torch.Tensor:
        """Per-step values from one solution's log-ratios (column t-1: token t)."""
        if not layout.step_token_spans:
            return ratio.new_zeros(0)
        if self.config.reward == "cumulative":  # tokens [response_start - 1, end_k]: columns from response_start - 2
            first = layout.response_start - 1
            running = ratio[first - 1 :].cumsum(0)
            return running[[e - first for e in layout.read_positions]]
        return torch.stack([ratio[a - 1 : b - 1].sum() for a, b in layout.step_token_spans])

    def scores(self, raw):
        return (self.config.beta * raw).tolist()

    def loss(self, raw, example, soft_labels):
        outcome = float(example.meta.get("outcome", all(example.labels)))
        total = raw[-1] if self.config.reward == "cumulative" else raw.sum()
        return torch.nn.functional.binary_cross_entropy_with_logits(self.config.beta * total, torch.tensor(outcome))


def _bind():
    from openr_prm import models as M

    pairs = ((LMHead, M.LMHeadConfig), (ClassifierHead, M.ClassifierConfig), (OutcomeHead, M.OutcomeConfig),
             (ImplicitHead, M.ImplicitConfig))
    for head, config in pairs:
        head.Config = config
    return {head.kind: head for head, _ in pairs}


HEADS: dict[str, type[Head]] = _bind()
