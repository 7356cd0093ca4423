"""The reward models. Configs are light; weights load when a model is built.

The format (tag, tokens, separator, head) is always chosen by config, never guessed from a
model's name. Every model scores all steps of a solution in one forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from openr_core import RewardModel, ScoreRequest, StepScores
from openr_core.config import count


@attrs.frozen
class CommonConfig:
    """Fields every transformers-based reward model has."""

    model: str
    tokenizer: str | None = None
    prompt_template: str = "{question}\n"
    join: str = "\n"
    batch_size: int = count(64)
    max_length: int = count(4096)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    threads: int | None = None


@attrs.frozen
class LMHeadConfig(CommonConfig):
    """``step_tag`` follows every step; score = P(good) / (P(good) + P(bad)) at the tag's last token."""

    step_tag: str = " ки"
    good_token: str = "+"
    bad_token: str = "-"


@attrs.frozen
class ClassifierConfig(CommonConfig):
    """``separator`` follows every step; score = softmax(head logits)[positive_index] there.

    ``head``: ``token-classification`` loads AutoModelForTokenClassification (what our trainer
    writes); ``remote-code`` loads AutoModel with trust_remote_code and reads ``outputs[0]``
    (the Qwen2.5-Math-PRM checkpoints)."""

    separator: str = "<extra_0>"
    head: Literal["token-classification", "remote-code"] = "token-classification"
    positive_index: int = 1


@attrs.frozen
class OutcomeConfig(CommonConfig):
    """A sequence-classification checkpoint whose scalar head is read at the end of every step;
    the last step's score is the outcome score (``sigmoid``: map logits to [0, 1])."""

    sigmoid: bool = True


@attrs.frozen
class ImplicitConfig(CommonConfig):
    """``model`` is pi_theta, ``reference`` pi_ref (default: same tokenizer); step score =
    beta * sum over the step's tokens of log pi_theta - log pi_ref."""

    reference: str = ""
    beta: float = 0.05

    def __attrs_post_init__(self):
        if not self.reference:
            raise ValueError("implicit-prm needs `reference:` (the model pi_theta was trained from)")


class _TransformersRM(RewardModel):
    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        from openr_prm import scoring

        self._scorer = scoring.build_scorer(type(self).kind, self.config)

    def score(self, requests: Sequence[ScoreRequest]) -> list[StepScores]:
        return self._scorer.score(list(requests))

    def close(self) -> None:
        self._scorer = None


class LMHeadPRM(_TransformersRM):
    """Math-Shepherd style: P(good token) vs P(bad token) read at a step tag."""

    Config = LMHeadConfig
    kind = "lm-head"


class ClassifierPRM(_TransformersRM):
    """Two-class token head read at step separators (Qwen2.5-Math-PRM layout)."""

    Config = ClassifierConfig
    kind = "classifier"


class OutcomeRM(_TransformersRM):
    """Outcome RM: a scalar head read at the end of each step (the last is the outcome score)."""

    Config = OutcomeConfig
    kind = "outcome"


class ImplicitPRM(_TransformersRM):
    """PRIME implicit PRM: beta * sum of log(pi/pi_ref) over each step's tokens."""

    Config = ImplicitConfig
    kind = "implicit"
