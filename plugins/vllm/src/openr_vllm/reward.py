"""The `vllm-prm` reward model: process reward models served by vLLM's offline engine.

Formats (``format:``) are openr-prm's head kinds (``openr_prm.heads``): the same head class
builds the text layout (one tokenisation of the whole solution, one read position per step),
resolves the label tokens and turns raw outputs into scores, so a checkpoint scores the same
under `vllm-prm` as under the matching openr-prm model:

- ``lm-head`` (Math-Shepherd; openr-prm's ``lm-head-prm``): a causal LM read at the step tag,
  score = P(good) / (P(good) + P(bad)). vLLM turns the LM head into a two-way token classifier
  whose rows are the good and bad tokens' LM-head rows (pooling runner, ``convert: classify``,
  ``method: no_post_processing``) and returns its logits at every token (``token_classify``).
- ``classifier`` (``classifier-prm``): a token-classification checkpoint vLLM can pool per token
  (``*ForTokenClassification``, ``Qwen2ForProcessRewardModel``), score = softmax[positive_index]
  at each separator.
- ``implicit`` (``implicit-prm``): beta * the sum over each step's tokens of
  log pi_model - log pi_reference, from vLLM's prompt log-probs of two causal LMs (two engines).

Outcome/sequence-classification reward models are not wired here: use openr-prm's ``outcome-rm``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from openr_core import RewardModel, ScoreRequest, StepScores
from openr_vllm.engine import EngineConfig, EngineError, import_vllm, shutdown, start_engine


@attrs.frozen(kw_only=True)
class VLLMRewardConfig(EngineConfig):
    """``format`` picks the fields that matter: lm-head (``step_tag``, ``good_token``,
    ``bad_token``, ``chat_turns``), classifier (``separator``, ``positive_index``), implicit
    (``reference``, ``beta``, ``reward``). ``prompt_template``, ``join``, ``suffix``, ``chat``,
    ``system_prompt`` and ``max_length`` as in openr-prm."""

    format: Literal["lm-head", "classifier", "implicit"] = "lm-head"
    prompt_template: str = "{question}\n"
    join: str = "\n"
    suffix: str = ""
    chat: bool = False
    system_prompt: str | None = None
    max_length: int = 4096
    step_tag: str = " ки"
    good_token: str = "+"
    bad_token: str = "-"
    chat_turns: bool = False
    separator: str = "<extra_0>"
    positive_index: int = 1
    reference: str = ""
    beta: float = 0.05
    reward: Literal["step", "cumulative"] = "step"

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        from openr_prm.layout import check_template

        check_template(self.prompt_template)
        if self.format == "implicit" and not self.reference:
            raise ValueError("format implicit needs `reference:` (the model pi_theta was trained from)")


def _head(config: VLLMRewardConfig):
    """openr-prm's head of this format, configured from the same fields."""
    try:
        from openr_prm.heads import HEADS
    except ImportError as e:
        raise EngineError(f"vllm-prm uses openr-prm's heads; install openr-prm: {e}") from None
    return HEADS[config.format].from_fields(config)


def _sequence_classification(config: VLLMRewardConfig) -> str:
    """``XForCausalLM`` -> ``XForSequenceClassification``: the class vLLM converts the LM head into."""
    from transformers import AutoConfig

    from openr_core.paths import check_model_folder, resolve_location

    check_model_folder(config.model)
    try:
        hf = AutoConfig.from_pretrained(resolve_location(config.model), revision=config.revision,
                                        trust_remote_code=config.trust_remote_code)
    except (OSError, ValueError) as e:
        raise EngineError(f"vllm-prm: cannot read the config of '{config.model}': {str(e).splitlines()[0]}") from None
    causal = [a for a in (hf.architectures or []) if a.endswith("ForCausalLM")]
    if not causal:
        raise EngineError(f"vllm-prm: format lm-head needs a *ForCausalLM checkpoint, '{config.model}' is "
                          f"{hf.architectures}")
    return causal[0].removesuffix("ForCausalLM") + "ForSequenceClassification"


class VLLMRewardModel(RewardModel):
    """PRMs on vLLM: lm-head (Math-Shepherd), classifier (token head) and implicit formats."""

    Config = VLLMRewardConfig

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        c = self.config
        self.head = _head(c)
        self.reference = None
        import_vllm()  # a one-line error when vLLM is missing
        if c.format in ("lm-head", "classifier"):
            from vllm.config import PoolerConfig

            # every token's output (a model's default may be STEP pooling, e.g. Qwen2ForProcessRewardModel's,
            # which returns nothing without a step tag id); the head picks the read positions
            per_token = PoolerConfig(task="token_classify", tok_pooling_type="ALL")
        if c.format == "lm-head":
            from openr_transformers.loading import load_tokenizer

            # the labels resolved as the card does (one-line errors), then passed to vLLM as the
            # vocabulary pieces themselves (e.g. Math-Shepherd's `▁+`, not the bare `+`)
            tokenizer = load_tokenizer(c.tokenizer or c.model, revision=c.revision, trust_remote_code=c.trust_remote_code)
            self.head.setup(tokenizer)
            labels = tokenizer.convert_ids_to_tokens([self.head.good, self.head.bad])
            # the LM head's good/bad rows become a two-way classifier read at every token
            self.llm = start_engine(c, runner="pooling", convert="classify", pooler_config=per_token, hf_overrides={
                "architectures": [_sequence_classification(c)],
                "classifier_from_token": labels, "method": "no_post_processing"})
        elif c.format == "classifier":
            self.llm = start_engine(c, runner="pooling", pooler_config=per_token)
        else:
            self.llm = start_engine(c)
            self.reference = start_engine(attrs.evolve(c, model=c.reference, tokenizer=c.tokenizer or c.model))
        self.tokenizer = self.llm.get_tokenizer()
        self.head.setup(self.tokenizer)

    def score(self, requests: Sequence[ScoreRequest]) -> list[StepScores]:
        layouts = self.head.layouts(self.tokenizer, list(requests))
        todo = [i for i, layout in enumerate(layouts) if layout.read_positions]
        out = [StepScores((), 0) for _ in requests]
        if not todo:
            return out
        prompts = [{"prompt_token_ids": layouts[i].input_ids} for i in todo]
        if self.reference is not None:
            values = self._implicit(prompts, [layouts[i] for i in todo])
        else:
            values = self._token_classes(prompts, [layouts[i] for i in todo])
        for i, scores in zip(todo, values):
            out[i] = StepScores(tuple(scores), len(layouts[i].input_ids))
        return out

    def _token_classes(self, prompts, layouts) -> list[list[float]]:
        from vllm import PoolingParams

        results = self.llm.encode(prompts, PoolingParams(use_activation=False), pooling_task="token_classify",
                                  use_tqdm=False)
        # lm-head: the two-way classifier's columns are (good, bad), the head's raw layout
        return [self.head.scores(result.outputs.data.float()[layout.read_positions])
                for result, layout in zip(results, layouts)]

    def _implicit(self, prompts, layouts) -> list[list[float]]:
        import torch
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        policy = self.llm.generate(prompts, params, use_tqdm=False)
        reference = self.reference.generate(prompts, params, use_tqdm=False)
        scores = []
        for layout, a, b in zip(layouts, policy, reference):
            ids = layout.input_ids
            # column t-1: log pi(token t) - log pi_ref(token t), as the head's raw() takes it
            ratio = torch.tensor([a.prompt_logprobs[t][ids[t]].logprob - b.prompt_logprobs[t][ids[t]].logprob
                                  for t in range(1, len(ids))], dtype=torch.float64)
            scores.append(self.head.scores(self.head.combine(layout, ratio)))
        return scores

    def close(self) -> None:
        for name in ("llm", "reference"):
            if getattr(self, name, None) is not None:
                shutdown(getattr(self, name))
                setattr(self, name, None)
