"""Fault injection for the trainers (issue 15): `sft`, `prm` and `grpo` runs are killed with SIGKILL
in a real subprocess at seeded random points (between steps, after a log line, in the middle of a
checkpoint's model or trainer-state write, or at a random moment), then resumed with the same
command; the result must equal an uninterrupted run's: identical final weights and the same log
lines, none doubled.

The kill points are injected by a small launcher (``_killer.py`` below) that wraps one function of
`openr_transformers.training` to SIGKILL its own process at the n-th call, after writing part of
its output. Tiny runs on the arith sandbox keep the module at a couple of minutes on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
import signal
from pathlib import Path

import pytest
import torch

_spec = importlib.util.spec_from_file_location("training_jobs", Path(__file__).with_name("training_jobs.py"))
jobs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jobs)

# seeded random kill points per job: (where, n-th call) or ("time", seconds)
RNG = random.Random(17)
POINTS = {
    "sft": [("state", RNG.randint(1, 2)), ("log", RNG.randint(1, 5)), ("time", RNG.uniform(4, 12))],
    "prm": [("state", RNG.randint(1, 2)), ("model", RNG.randint(1, 2)), ("log", RNG.randint(2, 6))],
    "grpo": [("state", RNG.randint(1, 3)), ("log", RNG.randint(1, 3)), ("model", RNG.randint(2, 3))],
}
POINTS["grpo"].append(("log", 1))  # killed before its first checkpoint: the fresh start must not double update 1


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs, one per job kind (made on first use)."""
    made = {}

    def get(kind: str):
        if kind not in made:
            tmp = tmp_path_factory.mktemp(f"reference-{kind}")
            config = tmp / "job.yaml"
            config.write_text(json.dumps(jobs.job(kind, tmp)))
            jobs.finish(config, tmp / "out")
            made[kind] = (config, tmp / "out")
        return made[kind]

    return get


@pytest.mark.parametrize("kind,point", [(k, p) for k, ps in POINTS.items() for p in ps],
                         ids=[f"{k}-{p[0]}-{p[1]:.0f}" for k, ps in POINTS.items() for p in ps])
def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path, reference, kind, point):
    config, full = reference(kind)
    out = tmp_path / "out"
    if point[0] == "time":
        code, output = jobs.openr(config, out, after=point[1])
    else:
        code, output = jobs.openr(config, out, kill=point)
        assert code == -signal.SIGKILL, f"the injected kill never fired: {output[-2000:]}"
    jobs.finish(config, out)
    assert jobs.log_lines(out) == jobs.log_lines(full)  # every step once, same values
    a, b = jobs.weights(full), jobs.weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list(out.glob("checkpoints/.*")) and not (out / ".final.tmp").exists()


def test_a_corrupt_newest_checkpoint_is_passed_over(tmp_path, reference):
    """A checkpoint left by an older version that wrote its state in place: truncated state, a
    good older checkpoint beside it. Resume must use the older one, not fail."""
    config, full = reference("sft")
    out = tmp_path / "out"
    code, _ = jobs.openr(config, out, kill=("log", 5))  # steps 1-5 logged; checkpoints at 2 and 4
    assert code == -signal.SIGKILL
    good = out / "checkpoints" / "step-4"
    older = out / "checkpoints" / "step-2"
    shutil.copytree(good, older)  # as the old code kept it while writing the next one
    state = torch.load(good / "trainer_state.pt", weights_only=True)
    state["step"] = 2  # (the content of step-2 is not what matters: only that it is chosen)
    torch.save(state, older / "trainer_state.pt")
    data = (good / "trainer_state.pt").read_bytes()
    (good / "trainer_state.pt").write_bytes(data[: len(data) // 3])
    code, output = jobs.openr(config, out)
    assert code == 0, output[-2000:]
    assert "skipping incomplete checkpoint" in output and "resuming from" in output and "step-2" in output
    assert [r["step"] for r in jobs.log_lines(out)] == [r["step"] for r in jobs.log_lines(full)]
