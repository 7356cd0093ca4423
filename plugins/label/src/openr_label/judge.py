"""LLM-as-judge labelling: a prompted critic names the first wrong step of each solution."""

from __future__ import annotations

import re
from typing import Any

import attrs

from openr_core import GenerationRequest, LabelledExample, SamplingParams
from openr_core.config import component, count, number
from openr_label.common import SolutionLabeler, labels_from_first_error

DEFAULT_TEMPLATE = (
    "Problem: {question}\n"
    "Solution:\n{steps}\n"
    "Which step is the first wrong one? Answer with its number, or -1 if every step is correct.\n"
    "First wrong step:"
)

STEP_TEMPLATE = (
    "Problem: {question}\n"
    "Solution:\n{steps}\n"
    "Check every step: a short critique, then 'Verdict: correct' or 'Verdict: incorrect'.\n"
)

_NONE = re.compile(r"(?<![\w-])-1(?!\d)|\bnone\b|\ball (?:steps |of them |the steps )?(?:are )?correct\b|"
                   r"\bno (?:wrong step|error|mistake|incorrect step)s?\b|\bevery step is correct\b")
_BOXED = re.compile(r"\\boxed\{\s*(-?\d+)\s*\}")
_STEP = re.compile(r"\bstep\s*#?\s*(-?\d+)")
_LEAD = re.compile(r"^\s*(?:first (?:wrong|incorrect|erroneous) step|first error|answer|verdict)?\s*[:=]?\s*"
                   r"(-?\d+)\s*[.)]?\s*(?:$|\n)")


def parse_verdict(text: str, n_steps: int) -> int | None:
    """0-based index of the first wrong step named in ``text`` (which numbers steps from 1),
    -1 for "no wrong step", None when unparseable or out of range (never guessed)."""
    if text is None:
        return None
    t = text.strip().lower()
    if not t:
        return None
    m = _BOXED.search(t)
    if m is None:
        m = _STEP.search(t)
    if m is None:
        m = _LEAD.match(t)
    if m is None:
        return -1 if _NONE.search(t) else None
    number = int(m.group(1))
    if number == -1:
        return -1
    if 1 <= number <= n_steps:
        return number - 1
    return None


_SECTION = re.compile(r"(?im)^\s*step\s*#?\s*(\d+)\s*[:.)]")
_VERDICT = re.compile(r"verdict\s*[:=]?\s*\**\s*(correct|incorrect|right|wrong)\b|\\boxed\{\s*(correct|incorrect)\s*\}",
                      re.IGNORECASE)


def parse_step_verdicts(text: str | None, n_steps: int) -> list[bool | None]:
    """Per step (1-based ``Step i:`` sections in ``text``), True / False for a correct /
    incorrect verdict, None where no verdict can be read."""
    verdicts: list[bool | None] = [None] * n_steps
    if not text:
        return verdicts
    heads = list(_SECTION.finditer(text))
    seen = set()
    for h, nxt in zip(heads, [*heads[1:], None]):
        i = int(h.group(1)) - 1
        if not 0 <= i < n_steps or i in seen:
            continue
        seen.add(i)
        found = list(_VERDICT.finditer(text, h.end(), nxt.start() if nxt else len(text)))
        if found:
            word = (found[-1].group(1) or found[-1].group(2)).lower()
            verdicts[i] = word in ("correct", "right")
    return verdicts


def first_wrong_step(verdicts: list[bool | None]) -> int | None:
    """The first step judged incorrect (-1: all correct); None when a step before it has no verdict."""
    for i, v in enumerate(verdicts):
        if v is None:
            return None
        if not v:
            return i
    return -1


def numbered(steps) -> str:
    """``Step i: ...`` lines (1-based), the way judges and generative PRMs see a solution."""
    return "\n".join(f"Step {i + 1}: {s}" for i, s in enumerate(steps))


@attrs.frozen
class JudgeConfig:
    """``n_solutions`` sampled at ``temperature`` per problem are judged; the critic sees
    ``template`` (fields ``{question}``, ``{steps}`` = "Step i: ..." lines) and answers greedily
    within ``judge_max_tokens``. ``critic``: an optional generator section (``{type: ..., ...}``,
    checked like the job's) used instead of the job's generator.

    ``per_step``: the critic writes a short critique and a verdict for every step (the
    generative-PRM format, :func:`parse_step_verdicts`; ``template`` left at its default becomes
    :data:`STEP_TEMPLATE`, and ``judge_max_tokens`` is per step); the first error is the first
    step judged incorrect, and a solution with a step before it that has no verdict is
    unparseable."""

    n_solutions: int = count(4)
    temperature: float = number(1.0, minimum=0)
    max_tokens: int = count(96)
    template: str = DEFAULT_TEMPLATE
    judge_max_tokens: int = count(24)
    judge_temperature: float = number(0.0, minimum=0)
    critic: Any = component("generator", optional=True)
    per_step: bool = False
    seed: int = 0


class JudgeLabeler(SolutionLabeler):
    """LLM judge: the critic names the first wrong step; unparseable verdicts are counted and dropped."""

    Config = JudgeConfig

    def critic(self, generator):
        return self.own_generator(self.config.critic, generator)

    def prompt(self, problem, steps) -> str:
        c = self.config
        template = STEP_TEMPLATE if c.per_step and c.template == DEFAULT_TEMPLATE else c.template
        return template.replace("{question}", problem.question).replace("{steps}", numbered(steps))

    def verdict(self, text: str, n_steps: int) -> int | None:
        if not self.config.per_step:
            return parse_verdict(text, n_steps)
        return first_wrong_step(parse_step_verdicts(text, n_steps))

    def label_solutions(self, problems, solutions, *, task, generator):
        from openr_core.evaluation import stable_seed

        c = self.config
        items = [(p, tuple(s)) for p, sols in zip(problems, solutions) for s in sols]
        if not items:
            return []
        critic = self.critic(generator)
        requests = [GenerationRequest(self.prompt(p, s), SamplingParams(
            n=1, temperature=c.judge_temperature, max_tokens=c.judge_max_tokens * (len(s) if c.per_step else 1),
            seed=stable_seed(c.seed, p.id + "\x00judge\x00" + "\x00".join(s)))) for p, s in items]
        results = critic.generate(requests)  # ONE call for every solution in the batch
        out = []
        for (problem, steps), result in zip(items, results):
            completion = result.completions[0]
            verdict = self.verdict(completion.text, len(steps))
            self.stats.update(tokens=completion.n_tokens, solutions=1)
            if verdict is None:
                self.stats["unparseable"] += 1
                continue
            self.stats["examples"] += 1
            out.append(LabelledExample(problem.question, steps, labels_from_first_error(len(steps), verdict), None,
                                       problem.id, {"labeler": "llm-judge", "rollouts": 0,
                                                    "tokens": completion.n_tokens, "verdict": completion.text,
                                                    "unparseable_so_far": self.stats["unparseable"]}))
        return out
