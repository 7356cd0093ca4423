"""Ground truth from the sandbox verifier: the `arith-truth` labeller and `arith-oracle` reward model."""

from __future__ import annotations

import random
from collections.abc import Iterator

import attrs

from openr_core import DataError, GenerationRequest, LabelledExample, Labeler, RewardModel, SamplingParams, StepScores
from openr_core.config import Bounds, count
from openr_core.evaluation import stable_seed
from openr_core.labelling import first_error_labels
from openr_arith import problems as P


@attrs.frozen
class ArithTruthConfig:
    """Sample ``n`` solutions per problem at each temperature, label each step exactly; add the
    reference solution (``include_reference``) and ``corrupted`` copies of it with one consistent
    error each (a wrong start, carried value, operand or operator, a skipped operation or an early
    answer: :func:`problems.corrupted_solution`), the errors a PRM misses when it only checks each
    step's arithmetic."""

    n: int = count(4)
    temperatures: tuple[float, ...] = attrs.field(default=(0.7, 1.0),
                                                  validator=attrs.validators.deep_iterable(Bounds(minimum=0)))
    max_tokens: int = count(96)
    include_reference: bool = False
    corrupted: int = count(0, minimum=0)
    dedupe: bool = True
    seed: int = 0

    def __attrs_post_init__(self):
        if not self.temperatures and not self.include_reference and not self.corrupted:
            raise ValueError("temperatures is empty and include_reference is false (and corrupted is 0): nothing would be labelled")


class ArithTruthLabeler(Labeler):
    """Exact step labels from the task's verifier for the policy's own sampled solutions."""

    Config = ArithTruthConfig

    def label(self, problems, *, task, generator=None) -> Iterator[LabelledExample]:
        c = self.config
        requests = []
        if generator is not None and c.n:
            requests = [GenerationRequest(task.prompt(p), SamplingParams(
                n=c.n, temperature=t, max_tokens=c.max_tokens, seed=stable_seed(c.seed, f"{p.id}@{t}")))
                for p in problems for t in c.temperatures]
        results = generator.generate(requests) if requests else []
        per_problem = len(c.temperatures)
        for i, problem in enumerate(problems):
            texts = [comp.text for r in results[i * per_problem : (i + 1) * per_problem] for comp in r.completions]
            if c.include_reference and task.reference_solution(problem):
                texts.append(task.reference_solution(problem))
            texts += corrupted_texts(problem, c.corrupted, c.seed)
            seen = set()
            for text in texts:
                steps = task.split_steps(text)
                verdicts = task.verify_steps(problem, steps) if steps else None
                if verdicts is None or (c.dedupe and tuple(steps) in seen):
                    continue
                seen.add(tuple(steps))
                yield LabelledExample(problem.question, steps, first_error_labels(verdicts), None, problem.id,
                                      {"labeler": "arith-truth", "outcome": task.grade(problem, text).correct})


def corrupted_texts(problem, n: int, seed: int) -> list[str]:
    """``n`` corrupted reference solutions of ``problem`` (kinds drawn uniformly; fewer when a kind
    does not apply), seeded by (seed, problem id)."""
    parsed = P.parse_question(problem.question) if n else None
    if parsed is None:
        return []
    rng = random.Random(stable_seed(seed, f"{problem.id}@corrupted"))
    drawn = [P.corrupted_solution(parsed, rng, rng.choice(P.CORRUPTIONS)) for _ in range(n)]
    return ["\n".join(steps) for steps in drawn if steps is not None]


class ArithOracle(RewardModel):
    """Exact step correctness from the sandbox verifier (1 until the first wrong step, then 0)."""

    def score(self, requests) -> list[StepScores]:
        out = []
        for r in requests:
            parsed = P.parse_question(r.problem.question)
            if parsed is None:
                raise DataError(f"arith-oracle: problem {r.problem.id} is not an arith question")
            labels = first_error_labels(P.check_steps(parsed, list(r.steps)))
            out.append(StepScores(tuple(float(x) for x in labels), 0))
        return out
