"""Frozen value types for everything that crosses a plugin boundary.

They are plain attrs classes: cheap to build, hashable where their fields are, and
convertible to JSON with :func:`to_dict` for results files.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
from attrs import field, frozen


def _tuple(value) -> tuple:
    if isinstance(value, str):  # tuple("abc") would be one item per character
        raise TypeError(f"expected a list, got a string {value[:40]!r}")
    return tuple(value) if value is not None else ()


def _stops(value) -> tuple:
    return (value,) if isinstance(value, str) else _tuple(value)  # one stop string given bare


def _optional_tuple(value):
    return None if value is None else tuple(value)


def _frozen_dict(value) -> dict:
    return dict(value or {})


@frozen
class Problem:
    """One task instance: the question, its gold answer and free-form metadata."""

    id: str
    question: str
    answer: str | None = None
    meta: dict[str, Any] = field(factory=dict, converter=_frozen_dict, eq=False, hash=False)


@frozen
class Step:
    """One reasoning step of a solution, with its token count when known."""

    text: str
    n_tokens: int | None = None


@frozen
class Solution:
    """A (possibly partial) trajectory: the steps so far and what it cost to produce them."""

    problem_id: str
    steps: tuple[str, ...] = field(converter=_tuple)
    answer: str | None = None
    n_tokens: int = 0
    finished: bool = True

    @property
    def text(self) -> str:
        return "\n".join(self.steps)


@frozen
class SamplingParams:
    """How to sample: the same fields whichever Generator runs them."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = field(default=(), converter=_stops)
    logprobs: bool = False

    def __attrs_post_init__(self):
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if not 0 <= self.temperature < math.inf:  # NaN fails too
            raise ValueError(f"SamplingParams.temperature must be a finite number >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"SamplingParams.max_tokens must be >= 1, got {self.max_tokens}")
        for s in self.stop:
            if not isinstance(s, str) or not s:
                raise ValueError(f"SamplingParams.stop: every stop string must be a non-empty string, got {s!r}")


@frozen
class GenerationRequest:
    """Continue ``prompt``. Requests that share a prompt may share its encoding (prefix reuse)."""

    prompt: str
    params: SamplingParams = field(factory=SamplingParams)


@frozen
class Completion:
    """One sampled continuation (its text excludes the stop string that ended it).

    ``stop_reason``: ``"stop"`` (a stop string or end of sequence) or ``"length"`` (max tokens).
    ``matched_stop``: the stop string that ended it; None at end of sequence or length.
    """

    text: str
    n_tokens: int
    stop_reason: str = "stop"
    token_logprobs: tuple[float, ...] | None = field(default=None, converter=_optional_tuple)
    matched_stop: str | None = None

    @property
    def ended(self) -> bool:
        """True when the model ended the sequence itself (EOS), not at a stop string or length."""
        return self.stop_reason == "stop" and self.matched_stop is None


@frozen
class GenerationResult:
    """The ``n`` completions of one request, plus the prompt's token count."""

    completions: tuple[Completion, ...] = field(converter=_tuple)
    n_prompt_tokens: int = 0


@frozen
class ScoreRequest:
    """Score every step of ``steps`` as a continuation of ``problem``."""

    problem: Problem
    steps: tuple[str, ...] = field(converter=_tuple)


@frozen
class StepScores:
    """One score per step (higher = more likely correct) and the tokens the reward model read."""

    scores: tuple[float, ...] = field(converter=_tuple)
    n_tokens: int = 0


@frozen
class LabelledExample:
    """A stepwise example: a prompt, its steps and one label per step.

    ``labels`` are hard (bool); ``soft_labels`` (float in [0, 1]) are set when the labeller
    estimated them. Either may be used for training; hard labels always exist.
    """

    prompt: str
    completions: tuple[str, ...] = field(converter=_tuple)
    labels: tuple[bool, ...] = field(converter=_tuple)
    soft_labels: tuple[float, ...] | None = field(default=None, converter=_optional_tuple)
    problem_id: str | None = None
    meta: dict[str, Any] = field(factory=dict, converter=_frozen_dict, eq=False, hash=False)

    def __attrs_post_init__(self):
        if len(self.labels) != len(self.completions):
            raise ValueError(
                f"LabelledExample has {len(self.completions)} steps but {len(self.labels)} labels"
            )
        if self.soft_labels is not None:
            if len(self.soft_labels) != len(self.completions):
                raise ValueError(
                    f"LabelledExample has {len(self.completions)} steps but "
                    f"{len(self.soft_labels)} soft labels"
                )
            bad = [x for x in self.soft_labels if not 0.0 <= x <= 1.0]
            if bad:
                raise ValueError(f"soft label {bad[0]} is outside [0, 1]")

    @property
    def first_error(self) -> int:
        """Index of the first step labelled wrong, or -1 when every step is right."""
        return next((i for i, ok in enumerate(self.labels) if not ok), -1)


@frozen
class Budget:
    """What a search spent on one problem."""

    generated_tokens: int = 0
    generator_calls: int = 0
    prm_tokens: int = 0

    def __add__(self, other: Budget) -> Budget:
        return Budget(
            self.generated_tokens + other.generated_tokens,
            self.generator_calls + other.generator_calls,
            self.prm_tokens + other.prm_tokens,
        )


@frozen
class SearchResult:
    """The answer a searcher picked for one problem, the candidates it saw and what it spent."""

    problem_id: str
    answer: str | None
    solution: Solution | None = None
    candidates: tuple[Solution, ...] = field(default=(), converter=_tuple)
    budget: Budget = field(factory=Budget)
    meta: dict[str, Any] = field(factory=dict, converter=_frozen_dict, eq=False, hash=False)


@frozen
class Grade:
    """A task's verdict on one answer; ``reason`` says why when it is wrong or failed."""

    correct: bool
    predicted: str | None = None
    reason: str = ""


def to_dict(value) -> Any:
    """JSON-ready form of any openr value type (recursively)."""
    if attrs.has(type(value)):
        return {f.name: to_dict(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, (list, tuple)):
        return [to_dict(v) for v in value]
    if isinstance(value, dict):
        return {k: to_dict(v) for k, v in value.items()}
    return value
