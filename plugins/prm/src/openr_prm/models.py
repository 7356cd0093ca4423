"""The reward models. Configs are light; weights load when a model is built.

The format (text layout, tokens, head) is always chosen by config, never guessed from a
model's name; ``configs/models/`` has each published checkpoint's settings (docs/models.md).
Every model scores all steps of a solution in one forward pass. What differs between kinds
lives in one class per kind, :mod:`openr_prm.heads`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from openr_core import RewardModel, ScoreRequest, StepScores
from openr_core.config import count


def _template(instance, attribute, value):
    from openr_prm.layout import check_template

    check_template(value, attribute.name)


@attrs.frozen
class CommonConfig:
    """Fields every transformers-based reward model has.

    The text scored is ``prompt_template`` (``{question}`` replaced literally; ``{bos_token}``
    by the tokenizer's BOS text; every other brace kept as written), the steps, and ``suffix``.
    With ``chat: true`` the prompt and suffix come from the tokenizer's chat template instead:
    ``[system: system_prompt], user: question, assistant: the steps``."""

    model: str
    tokenizer: str | None = None
    prompt_template: str = attrs.field(default="{question}\n", validator=_template)
    join: str = "\n"
    suffix: str = ""
    chat: bool = False
    system_prompt: str | None = None
    batch_size: int = count(64)
    max_length: int = count(4096)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    threads: int | None = count(None)


@attrs.frozen
class LMHeadConfig(CommonConfig):
    """``step_tag`` follows every step; score = P(good) / (P(good) + P(bad)) at the tag's last token.

    ``good_token`` / ``bad_token`` are resolved as the model cards do (``tokenizer.encode(label)``
    without special tokens, e.g. ``▁+`` in a SentencePiece vocabulary that has both ``+`` and
    ``▁+``); a label that is not exactly one vocabulary piece is an error. ``chat_turns``: each
    step is a user turn of the tokenizer's chat template (the first prefixed by the question and a
    space) answered by an assistant turn ``good_token``, read just before that answer (RLHFlow)."""

    step_tag: str = " ки"
    good_token: str = "+"
    bad_token: str = "-"
    chat_turns: bool = False


@attrs.frozen
class ClassifierConfig(CommonConfig):
    """``separator`` follows every step; score = softmax(head logits)[positive_index] there.

    ``head``: ``token-classification`` loads AutoModelForTokenClassification (what our trainer
    writes); ``remote-code`` loads AutoModel with trust_remote_code and reads ``outputs[0]``
    (the Qwen2.5-Math-PRM checkpoints). A checkpoint whose head weights do not match is an error."""

    separator: str = "<extra_0>"
    head: Literal["token-classification", "remote-code"] = "token-classification"
    positive_index: int = 1


@attrs.frozen
class OutcomeConfig(CommonConfig):
    """A scalar head read at the end of every step (after ``step_tag`` when set); the last
    step's score is the outcome score (``sigmoid``: map logits to [0, 1]).

    ``head``: ``sequence-classification`` (AutoModelForSequenceClassification, 1 label),
    ``remote-code`` (AutoModel with trust_remote_code: the model's ``score`` module on its trunk,
    e.g. Qwen2.5-Math-RM's two-layer MLP) or ``value-head`` (a causal LM trunk with
    ``v_head.summary``, Skywork's PRMs). ``tokenize: per-step``: each step tokenised on its own
    and followed by the last token of ``step_tag`` (Skywork's reference code)."""

    sigmoid: bool = True
    head: Literal["sequence-classification", "remote-code", "value-head"] = "sequence-classification"
    step_tag: str = ""
    tokenize: Literal["whole", "per-step"] = "whole"


@attrs.frozen
class ImplicitConfig(CommonConfig):
    """``model`` is pi_theta, ``reference`` pi_ref (default: same tokenizer); step score =
    beta * sum over the step's tokens of log pi_theta - log pi_ref.

    ``reward: cumulative``: the running sum instead (EurusPRM's card: from the last prompt token
    to the card's ``step_last_tokens`` position of each step)."""

    reference: str = ""
    beta: float = 0.05
    reward: Literal["step", "cumulative"] = "step"

    def __attrs_post_init__(self):
        if not self.reference:
            raise ValueError("implicit-prm needs `reference:` (the model pi_theta was trained from)")


class _TransformersRM(RewardModel):
    head = ""  # the kind in openr_prm.heads.HEADS

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        from openr_prm import scoring

        self._scorer = scoring.Scorer(scoring.head_for(type(self).head, self.config))

    def score(self, requests: Sequence[ScoreRequest]) -> list[StepScores]:
        return self._scorer.score(list(requests))

    def close(self) -> None:
        self._scorer = None


class LMHeadPRM(_TransformersRM):
    """Math-Shepherd style: P(good token) vs P(bad token) read at a step tag."""

    Config = LMHeadConfig
    head = "lm-head"


class ClassifierPRM(_TransformersRM):
    """Two-class token head read at step separators (Qwen2.5-Math-PRM layout)."""

    Config = ClassifierConfig
    head = "classifier"


class OutcomeRM(_TransformersRM):
    """Scalar head read at the end of each step: outcome RMs (the last is the outcome score) and
    value-head PRMs (Skywork)."""

    Config = OutcomeConfig
    head = "outcome"


class ImplicitPRM(_TransformersRM):
    """PRIME implicit PRM: beta * sum of log(pi/pi_ref) over each step's tokens."""

    Config = ImplicitConfig
    head = "implicit"
