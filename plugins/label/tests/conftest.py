"""A toy task and a scripted generator whose rollouts succeed iff the prefix has no bad step."""

from __future__ import annotations

import types

import pytest

from openr_core import Completion, GenerationResult, Generator, Problem, Task


class ToyTask(Task):
    """Prompt 'Q:<id>\\n'; steps are lines; a step starting with 'bad' is wrong; answer line 'ans X', gold 1."""

    def load(self, split, limit=None):
        return [Problem(f"p{i}", f"q{i}", "1") for i in range(limit or 2)]

    def prompt(self, problem):
        return f"Q:{problem.id}\n"

    def extract_answer(self, text):
        lines = [l.strip() for l in text.split("\n") if l.strip()]
        return lines[-1][4:] if lines and lines[-1].startswith("ans ") else None

    def verify_steps(self, problem, steps):
        return [not s.startswith("bad") for s in steps]


class ScriptedGenerator(Generator):
    """Whole solutions (prompt without steps): ``solutions[problem id]`` cycled over n.
    Rollouts (prompt with steps): 'ans 1' iff no step of the prefix is bad, except that sample j
    with j % fail_every == fail_every - 1 fails anyway (so soft labels can be < 1).
    With ``continue_steps`` a rollout from a prefix of m steps first writes 'ok m', ..., 'ok
    m+continue_steps-1' (steps a solution of ``solution()`` may have too), then its answer.
    Critic prompts (starting 'Problem:'): ``verdicts`` cycled. Records the size of every call."""

    def __init__(self, solutions=None, fail_every=0, verdicts=(), continue_steps=0):
        super().__init__()
        self.solutions, self.fail_every, self.verdicts = solutions or {}, fail_every, list(verdicts)
        self.continue_steps = continue_steps
        self.calls, self.requests, self._v = [], [], 0

    def generate(self, requests):
        self.calls.append(len(requests))
        self.requests += list(requests)
        out = []
        for r in requests:
            if r.prompt.startswith("Problem:"):
                text = self.verdicts[self._v % len(self.verdicts)]
                self._v += 1
                out.append(GenerationResult([Completion(text, 3)], 1))
                continue
            head, _, rest = r.prompt.partition("\n")
            pid, steps = head[2:], [s for s in rest.split("\n") if s]
            comps = []
            for j in range(r.params.n):
                if not steps:
                    sols = self.solutions[pid]
                    comps.append(Completion("\n".join(sols[j % len(sols)]), 5))
                    continue
                ok = not any(s.startswith("bad") for s in steps)
                if self.fail_every and j % self.fail_every == self.fail_every - 1:
                    ok = False
                more = [f"ok {len(steps) + i}" for i in range(self.continue_steps)]
                comps.append(Completion("\n".join(more + ["ans 1" if ok else "ans 0"]), 2 + 3 * len(more)))
            out.append(GenerationResult(comps, 1))
        return out


def solution(n_steps, first_error):
    """A solution of ``n_steps`` lines (the last one the answer) whose first bad step is ``first_error``."""
    steps = []
    for i in range(n_steps - 1):
        steps.append(f"bad {i}" if first_error != -1 and i >= first_error else f"ok {i}")
    steps.append("ans 1" if first_error == -1 else ("bad ans 0" if first_error == n_steps - 1 else "ans 0"))
    return tuple(steps)


@pytest.fixture
def toy():
    return types.SimpleNamespace(Generator=ScriptedGenerator, task=ToyTask(), solution=solution)
