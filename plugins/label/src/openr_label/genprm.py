"""Generative PRM (GenPRM, ThinkPRM): a verifier writes a short critique, then a verdict, per step.

The verifier (any generator) sees the problem and the numbered steps (``llm-judge``'s prompt,
:func:`openr_label.judge.numbered`) and writes, for every step, one section::

    Step 1: 3 + 4 is 7. Verdict: correct
    Step 2: 7 * 2 is 14, not 15. Verdict: incorrect

:func:`openr_label.judge.parse_step_verdicts` reads the sections back with regular expressions only (model
text is never evaluated). A section is ``Step <i>:`` up to the next ``Step <j>:``; its verdict
is the last ``verdict: correct|incorrect`` (or ThinkPRM's ``\\boxed{correct}`` /
``\\boxed{incorrect}``) in it. A step without a readable verdict (no section, no verdict, a
number out of range or repeated: the first section wins) is ``None``.

As a reward model (``generative-prm``) a step's score is the mean over ``samples`` critiques
of 1 (correct), 0 (incorrect) or ``missing_score`` (no verdict: 0.5 by default, "unknown",
like GenPRM's score without a verdict token).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from openr_core import GenerationRequest, RewardModel, SamplingParams, StepScores
from openr_core.config import component, count, number
from openr_core.evaluation import stable_seed
from openr_label.judge import STEP_TEMPLATE, numbered, parse_step_verdicts

DEFAULT_TEMPLATE = STEP_TEMPLATE

def prompt_text(template: str, question: str, steps: Sequence[str]) -> str:
    """``template`` with ``{question}`` and ``{steps}`` ("Step i: ..." lines) filled in literally."""
    return template.replace("{question}", question).replace("{steps}", numbered(steps))


def verdict_text(critiques: Sequence[str], verdicts: Sequence[bool]) -> str:
    """The text a verifier is trained to write: one ``Step i: critique Verdict: ...`` line per step."""
    return "".join(f"Step {i + 1}: {c} Verdict: {'correct' if ok else 'incorrect'}\n"
                   for i, (c, ok) in enumerate(zip(critiques, verdicts)))


@attrs.frozen
class GenerativePRMConfig:
    """``verifier``: the generator that writes the critiques (a generator section). It sees
    ``template`` (``{question}``, ``{steps}`` = "Step i: ..." lines) and writes up to
    ``max_tokens_per_step`` × steps tokens; ``samples`` critiques per solution at
    ``temperature`` are averaged. ``missing_score``: the score of a step no critique gives a
    verdict."""

    verifier: Any = component("generator")
    template: str = DEFAULT_TEMPLATE
    samples: int = count(1)
    temperature: float = number(0.0, minimum=0)
    max_tokens_per_step: int = count(32)
    missing_score: float = number(0.5, minimum=0, maximum=1)
    seed: int = 0


class GenerativePRM(RewardModel):
    """A generative verifier's per-step verdicts as step scores (critique, then verdict)."""

    Config = GenerativePRMConfig

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        self._verifier = None

    @property
    def verifier(self):
        if self._verifier is None:
            self._verifier = self.config.verifier.build()
        return self._verifier

    def prompt(self, question: str, steps: Sequence[str]) -> str:
        return prompt_text(self.config.template, question, steps)

    def score(self, requests):
        c = self.config
        requests = list(requests)
        asks = [GenerationRequest(self.prompt(r.problem.question, r.steps), SamplingParams(
            n=c.samples, temperature=c.temperature, max_tokens=c.max_tokens_per_step * max(1, len(r.steps)),
            seed=stable_seed(c.seed, r.problem.id + "\x00genprm\x00" + "\x00".join(r.steps)))) for r in requests]
        results = self.verifier.generate(asks) if asks else []  # ONE call for the batch
        out = []
        for r, result in zip(requests, results):
            totals = [0.0] * len(r.steps)
            for completion in result.completions:
                for i, v in enumerate(parse_step_verdicts(completion.text, len(r.steps))):
                    totals[i] += c.missing_score if v is None else float(v)
            k = max(1, len(result.completions))
            out.append(StepScores([t / k for t in totals], sum(x.n_tokens for x in result.completions)))
        return out

    def close(self) -> None:
        if self._verifier is not None:
            self._verifier.close()
            self._verifier = None
