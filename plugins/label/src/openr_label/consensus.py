"""Consensus filtering: two labellers label the same solutions; keep those they agree on."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from openr_core import LabelledExample, Labeler
from openr_core.config import component
from openr_label.common import first_error_of


def agree(first: LabelledExample, second: LabelledExample) -> bool:
    """Both put the first wrong step at the same index (-1: both say all steps are right)."""
    return first_error_of(first.labels) == first_error_of(second.labels)


@attrs.frozen
class ConsensusConfig:
    """``first`` samples and labels solutions; ``second`` (which must have ``label_solutions``)
    labels the same solutions; an example is kept when both put the first error at the same step.
    Both are labeller sections, checked like any component section (so ``openr validate`` checks
    them). ``keep``: which labeller's labels (and soft labels) the kept example carries."""

    first: Any = component("labeler", default="mc")
    second: Any = component("labeler", default="omegaprm")
    keep: Literal["first", "second"] = "first"

    @second.validator
    def _labels_given_solutions(self, attribute, spec):
        if not hasattr(spec.entry.load(), "label_solutions"):
            raise ValueError(f"'second' must be a labeler that labels given solutions; {spec.type!r} cannot")


class ConsensusLabeler(Labeler):
    """Consensus: keep only solutions whose first wrong step two labellers agree on."""

    Config = ConsensusConfig

    def __init__(self, config=None, **fields):
        super().__init__(config, **fields)
        self.first = self.config.first.build()
        self.second = self.config.second.build()
        self.stats = {"candidates": 0, "kept": 0}

    def close(self) -> None:
        self.first.close()
        self.second.close()

    def combine(self, firsts, seconds) -> list[LabelledExample]:
        """Keep-or-drop by first-error agreement, matching examples by (problem id, steps)."""
        by_key = {(e.problem_id, tuple(e.completions)): e for e in seconds}
        pairs = [(a, by_key.get((a.problem_id, tuple(a.completions)))) for a in firsts]
        kept = [(a, b) for a, b in pairs if b is not None and agree(a, b)]
        self.stats["candidates"] += len(pairs)
        self.stats["kept"] += len(kept)
        fraction = len(kept) / len(pairs) if pairs else 0.0
        out = []
        for a, b in kept:
            base = a if self.config.keep == "first" else b
            meta = {**base.meta, "labeler": "consensus",
                    "rollouts": a.meta.get("rollouts", 0) + b.meta.get("rollouts", 0),
                    "tokens": a.meta.get("tokens", 0) + b.meta.get("tokens", 0),
                    "kept_fraction": fraction, "batch_kept": len(kept), "batch_candidates": len(pairs)}
            out.append(attrs.evolve(base, meta=meta))
        return out

    def label_solutions(self, problems, solutions, *, task, generator):
        firsts = self.first.label_solutions(problems, solutions, task=task, generator=generator)
        return self._second(problems, firsts, task, generator)

    def _second(self, problems, firsts, task, generator):
        by_problem: dict[str, list] = {}
        for e in firsts:
            by_problem.setdefault(e.problem_id, []).append(tuple(e.completions))
        solutions = [by_problem.get(p.id, []) for p in problems]
        seconds = self.second.label_solutions(problems, solutions, task=task, generator=generator)
        return self.combine(firsts, seconds)

    def label(self, problems, *, task, generator=None):
        problems = list(problems)
        firsts = list(self.first.label(problems, task=task, generator=generator))
        yield from self._second(problems, firsts, task, generator)
