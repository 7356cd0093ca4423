"""The six component interfaces. A plugin implements one by subclassing it.

Every implementation declares its parameters as a nested frozen attrs class named ``Config``;
``openr validate`` checks a YAML section against it without importing anything heavy, and the
instance receives it as ``self.config``::

    class EchoGenerator(Generator):
        "Returns the prompt's last line."

        @attrs.frozen
        class Config:
            repeat: int = 1

        def generate(self, requests): ...

Methods take and return batches (lists), so an implementation can batch however it likes.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from openr_core.types import (
    GenerationRequest,
    GenerationResult,
    Grade,
    LabelledExample,
    Problem,
    ScoreRequest,
    SearchResult,
    StepScores,
)

if TYPE_CHECKING:
    from openr_core.runs import Run


@attrs.frozen
class NoConfig:
    """Configuration of a component that takes no parameters."""


class Component:
    """Shared constructor: ``Impl(config)`` or ``Impl(**config_fields)``.

    Either way the fields are checked exactly like a YAML section (types, nested component
    sections, validators): a wrong one is a :class:`~openr_core.errors.ConfigError`.
    """

    Config: ClassVar[type] = NoConfig

    def __init__(self, config: Any = None, **fields: Any):
        from openr_core.config import check_config  # config imports the registry, which imports us

        if config is not None and fields:
            raise TypeError(f"{type(self).__name__}: pass a Config or keyword fields, not both")
        self.config = check_config(self.Config, config if config is not None else fields, type(self).__name__)

    def close(self) -> None:
        """Release models, processes or connections. Safe to call twice."""


class Generator(Component, abc.ABC):
    """Turns prompts into sampled continuations."""

    @abc.abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in order, each with ``request.params.n`` completions."""


class RewardModel(Component, abc.ABC):
    """Scores every step of many partial or complete solutions."""

    @abc.abstractmethod
    def score(self, requests: Sequence[ScoreRequest]) -> list[StepScores]:
        """One :class:`StepScores` per request with one score per step (higher is better)."""


class Task(Component, abc.ABC):
    """A dataset of problems plus how to prompt for, and grade, their answers."""

    step_separator: ClassVar[str] = "\n"
    error_types: ClassVar[tuple[str, ...]] = ()  # what error_type can return (listed, n/a when absent)

    @abc.abstractmethod
    def load(self, split: str, limit: int | None = None) -> list[Problem]:
        """The problems of ``split`` (first ``limit`` of them), in a fixed order."""

    @abc.abstractmethod
    def prompt(self, problem: Problem) -> str:
        """The text a policy continues to solve ``problem``."""

    @abc.abstractmethod
    def extract_answer(self, text: str) -> str | None:
        """The final answer stated in a solution text, or None when it states none."""

    def answers_match(self, problem: Problem, predicted: str) -> bool:
        """Whether ``predicted`` equals the gold answer. Override for non-literal answers."""
        return problem.answer is not None and predicted.strip() == problem.answer.strip()

    def grade(self, problem: Problem, text: str) -> Grade:
        """Grade a full solution text. Never raises on malformed model output."""
        predicted = self.extract_answer(text)
        if predicted is None:
            return Grade(False, None, "no answer found")
        return Grade(self.answers_match(problem, predicted), predicted)

    def same_answer(self, a: str, b: str) -> bool:
        """Whether two predicted answers are the same (used by voting)."""
        return a.strip() == b.strip()

    def split_steps(self, text: str) -> list[str]:
        """Split a solution into steps on ``step_separator``, dropping empty steps."""
        return [s for s in (p.strip() for p in text.split(self.step_separator)) if s]

    def join_steps(self, steps: Sequence[str]) -> str:
        return "".join(s + self.step_separator for s in steps)

    def reference_solution(self, problem: Problem) -> str | None:
        """A gold solution text (steps joined by ``step_separator``) when the data has one."""
        return problem.meta.get("solution")

    def verify_steps(self, problem: Problem, steps: Sequence[str]) -> list[bool] | None:
        """Exact per-step correctness, for tasks that can check steps; None where they cannot."""
        return None

    def error_type(self, problem: Problem, steps: Sequence[str]) -> str | None:
        """The kind of the first wrong step (a name of the task's choosing), for tasks that
        classify errors (``eval-prm`` reports recall per kind); None where the steps have no
        error or the task does not classify them."""
        return None

    def corrupted_solution(self, problem: Problem, rng) -> list[str] | None:
        """Steps of a solution with one error whose every step is consistent with the step before
        it (a wrong start, operand or operation carried on correctly), drawn from ``rng`` (a
        ``random.Random``): the errors a verifier that checks each step on its own misses. The
        PRM trainer's ``augment_corrupt`` draws them; None where the task cannot make them."""
        return None


class Searcher(Component, abc.ABC):
    """Chooses an answer per problem by generating and scoring candidates."""

    @abc.abstractmethod
    def search(
        self,
        problems: Sequence[Problem],
        *,
        task: Task,
        generator: Generator,
        reward_model: RewardModel | None = None,
    ) -> list[SearchResult]:
        """One result per problem, in order."""


class Labeler(Component, abc.ABC):
    """Produces per-step labels for solutions of problems."""

    @abc.abstractmethod
    def label(
        self, problems: Sequence[Problem], *, task: Task, generator: Generator | None = None
    ) -> Iterator[LabelledExample]:
        """Yield labelled examples as they are finished (callers write them incrementally)."""


class Trainer(Component, abc.ABC):
    """Trains a model and writes HF-format checkpoints into the run's output folder."""

    @abc.abstractmethod
    def train(self, run: Run) -> str:
        """Train; return the path of the final checkpoint folder."""


__all__ = [
    "Component",
    "Generator",
    "Labeler",
    "NoConfig",
    "RewardModel",
    "Searcher",
    "Task",
    "Trainer",
]
