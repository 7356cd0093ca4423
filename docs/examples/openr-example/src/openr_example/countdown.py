"""The ``countdown`` task: "count down from N to 0", one number per line; the answer is the last one."""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from openr_core import Problem, Task

_INTEGER = re.compile(r"-?\d+")


class CountdownTask(Task):
    """Count down from N to ``to``, one number per line; the answer is the last number said."""

    @attrs.frozen
    class Config:
        size: int = attrs.field(default=4, validator=attrs.validators.ge(1))
        """Problems per split."""
        to: int = 0
        """Where every countdown ends (the gold answer)."""

    def load(self, split: str, limit: int | None = None) -> list[Problem]:
        # Deterministic: "test" counts down from to+0, to+1, ...; "train" from to+size, ...
        offset = {"test": 0, "train": self.config.size}.get(split)
        if offset is None:
            from openr_core import DataError

            raise DataError(f"countdown has splits 'test' and 'train', not {split!r}")
        count = self.config.size if limit is None else min(limit, self.config.size)
        problems = []
        for i in range(count):
            start = self.config.to + offset + i
            problems.append(
                Problem(
                    id=f"countdown-{split}-{i}",
                    question=f"Count down from {start} to {self.config.to}, one number per line.",
                    answer=str(self.config.to),
                    meta={"start": start},
                )
            )
        return problems

    def prompt(self, problem: Problem) -> str:
        # The policy continues after the first number, which the prompt already says.
        return f"{problem.question}\n{problem.meta['start']}"

    def extract_answer(self, text: str) -> str | None:
        steps = self.split_steps(text)
        if not steps:
            return None
        numbers = _INTEGER.findall(steps[-1])
        return numbers[-1] if numbers else None

    def verify_steps(self, problem: Problem, steps: Sequence[str]) -> list[bool] | None:
        """Step i is right when it says exactly the number after the previous one."""
        expected = problem.meta["start"]
        verdicts = []
        for step in steps:
            expected -= 1
            verdicts.append(step.strip() == str(expected) and expected >= self.config.to)
        return verdicts
