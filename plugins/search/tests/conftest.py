"""A scripted generator and reward model: trees whose every node is known in advance."""

from __future__ import annotations

from openr_core import Completion, GenerationResult, Generator, Problem, RewardModel, StepScores, Task


class ToyTask(Task):
    """Prompts are 'Q:<id>\\n'; steps are lines; the answer is the last line's text after 'ans '."""

    def load(self, split, limit=None):
        return [Problem(f"p{i}", f"q{i}", "1") for i in range(limit or 2)]

    def prompt(self, problem):
        return f"Q:{problem.question}\n"

    def extract_answer(self, text):
        lines = [l.strip() for l in text.split("\n") if l.strip()]
        return lines[-1][4:] if lines and lines[-1].startswith("ans ") else None


class ScriptedGenerator(Generator):
    """``tree[path]`` lists the next steps after ``path`` (a tuple of steps), cycled over the
    n samples; steps starting with 'ans ' end the solution. Records every call."""

    def __init__(self, tree):
        super().__init__()
        self.tree = tree
        self.calls = []

    def generate(self, requests):
        self.calls.append(len(requests))
        out = []
        for r in requests:
            question, _, rest = r.prompt.partition("\n")
            path = tuple(s for s in rest.split("\n") if s)
            options = self.tree.get((question,) + path, ["ans 0"])
            comps = []
            for j in range(r.params.n):
                step = options[j % len(options)]
                done = step.startswith("ans ")
                if r.params.stop:
                    comps.append(Completion(step, 2, "stop", None, None if done else "\n"))
                else:  # a whole solution: follow the first option to the end
                    steps, p = [], path
                    while True:
                        opts = self.tree.get((question,) + p, ["ans 0"])
                        s = opts[j % len(opts)]
                        steps.append(s)
                        p = p + (s,)
                        if s.startswith("ans "):
                            break
                    comps.append(Completion("\n".join(steps), 2 * len(steps), "stop"))
            out.append(GenerationResult(comps, 1))
        return out


class ScriptedRM(RewardModel):
    """Score of a step = ``values[step]`` (default 0.5); one n_token per step."""

    def __init__(self, values):
        super().__init__()
        self.values = values
        self.calls = []

    def score(self, requests):
        self.calls.append(len(requests))
        return [StepScores([self.values.get(s, 0.5) for s in r.steps], len(r.steps)) for r in requests]


import types

import pytest


@pytest.fixture
def toy():
    return types.SimpleNamespace(Generator=ScriptedGenerator, RM=ScriptedRM, task=ToyTask(), P=ToyTask().load("test", 1))


@pytest.fixture
def run_search():
    """``run_search(tmp_path, config, out, **changes)``: ``openr run`` of search ``config`` (with
    ``changes`` on top) into ``out``; asserts success and returns the printed output."""
    import json

    from click.testing import CliRunner

    from openr_core.cli import cli

    def run(tmp_path, config, out, **changes):
        path = tmp_path / "search.yaml"
        path.write_text(json.dumps({**config, **changes}))
        result = CliRunner().invoke(cli, ["run", str(path), "-o", str(out)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return run
