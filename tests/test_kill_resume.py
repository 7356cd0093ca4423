"""Fault injection for the problem-parallel jobs (search, label, eval-prm): real `openr run`
subprocesses are killed with SIGKILL at seeded random points, then resumed; what they leave must
equal an uninterrupted run's output: the same records, none twice, no line cut short.

Two kinds of kill per job, each seeded:

- at a random moment once the run has started writing results (a real SIGKILL from outside);
- inside a results write: the child's ``JsonlResults.append`` writes a random prefix of the bytes
  the append would have written (found by a dry run on a copy of the file) and SIGKILLs itself,
  the state a kill in the middle of ``write()`` leaves behind.

Sized for a 2-core machine: tiny arith sandbox configs (8 problems, batches of 2); each job runs
four times (reference, two killed runs, the resume that finishes).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

POLICY = {"type": "transformers", "model": "pkg:openr_arith/models/policy", "threads": 1}
JOBS = {
    "search": {"job": "search", "task": {"type": "arith"}, "generator": POLICY,
               "reward_model": {"type": "arith-oracle"}, "split": "test", "limit": 8, "batch_size": 2,
               "plot": False, "searchers": [{"type": "greedy"}, {"type": "best-of-n", "n": 4},
                                            {"type": "beam", "n": 4, "width": 2}]},
    "label": {"job": "label", "task": {"type": "arith"}, "generator": POLICY,
              "labeler": {"type": "mc", "n_solutions": 2, "k": 2, "rollout_max_tokens": 48},
              "split": "train", "limit": 8, "batch_size": 2},
    "eval-prm": {"job": "eval-prm", "task": {"type": "arith"}, "generator": POLICY,
                 "labeler": {"type": "arith-truth", "n": 2, "temperatures": [1.0]},
                 "reward_model": {"type": "lm-head-prm", "model": "pkg:openr_arith/models/prm", "step_tag": " ки",
                                  "good_token": "good", "bad_token": "bad", "threads": 1},
                 "split": "test", "problems": 8, "batch_size": 2, "response_level": {"n": 2, "problems": 4}},
}
VOLATILE = {"seconds"}  # wall-clock fields: differ between any two runs

KILL_IN_WRITE = r"""
import os, shutil, signal, sys, tempfile
from pathlib import Path
from openr_core import runs
from openr_core.cli import main

kill_at, fraction = int(os.environ["KILL_AT_APPEND"]), float(os.environ["KILL_FRACTION"])
calls = 0
append = runs.JsonlResults.append

def append_then_die(self, records):
    global calls
    calls += 1
    if calls < kill_at:
        return append(self, records)
    with tempfile.TemporaryDirectory() as tmp:  # the bytes this append writes, from a dry run on a copy
        copy = Path(tmp) / self.path.name
        if self.path.exists():
            shutil.copy(self.path, copy)
        before = copy.stat().st_size if copy.exists() else 0
        dry = runs.JsonlResults(copy, self.key)
        append(dry, records)
        added = copy.read_bytes()[before:]
    self.path.parent.mkdir(parents=True, exist_ok=True)
    with open(self.path, "ab") as f:
        f.write(added[: int(len(added) * fraction)])
    os.kill(os.getpid(), signal.SIGKILL)

runs.JsonlResults.append = append_then_die
sys.argv[0] = "openr"
main()
"""


def _command(config: Path, out: Path, *, kill_in_write: bool = False) -> list[str]:
    head = [sys.executable, "-c", KILL_IN_WRITE] if kill_in_write else [str(Path(sys.executable).parent / "openr")]
    return [*head, "run", str(config), "-o", str(out)]


def _env(**extra) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


def run_to_end(config: Path, out: Path) -> None:
    done = subprocess.run(_command(config, out), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def results_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*.jsonl")) if out.exists() else 0


def kill_at_random_moment(config: Path, out: Path, rng: random.Random) -> None:
    """SIGKILL from outside, a random 0-2 s after the results files next grow."""
    start = results_bytes(out)
    child = subprocess.Popen(_command(config, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while child.poll() is None and results_bytes(out) == start and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 2.0))
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)


def kill_inside_a_write(config: Path, out: Path, rng: random.Random) -> None:
    """The child cuts its own results write short at a random append and SIGKILLs itself."""
    env = _env(KILL_AT_APPEND=str(rng.randint(1, 4)), KILL_FRACTION=f"{rng.random():.3f}")
    done = subprocess.run(_command(config, out, kill_in_write=True), env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


def outputs(out: Path) -> dict[str, list[dict]]:
    """Every JSONL file's records; asserts that each file holds whole lines and no id twice."""
    found = {}
    for path in sorted(out.rglob("*.jsonl")):
        raw = path.read_bytes()
        assert raw == b"" or raw.endswith(b"\n"), f"{path}: last line cut short"
        records = [json.loads(line) for line in raw.decode().splitlines()]
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids)), f"{path}: duplicate ids"
        found[str(path.relative_to(out))] = sorted(
            ({k: v for k, v in r.items() if k not in VOLATILE} for r in records), key=lambda r: str(r["id"]))
    return found


def summary(out: Path) -> dict:
    data = json.loads((out / "summary.json").read_text())
    for row in data.get("searchers", []):
        row.pop("wall_seconds", None)
    return data


@pytest.mark.parametrize("job", JOBS)
def test_killed_anywhere_then_resumed_equals_an_uninterrupted_run(tmp_path, job):
    config = tmp_path / f"{job}.yaml"
    config.write_text(json.dumps(JOBS[job]))
    reference = tmp_path / "reference"
    run_to_end(config, reference)
    expected = outputs(reference)
    assert expected and all(expected.values())

    rng = random.Random(f"kill-resume:{job}")
    out = tmp_path / "killed"
    kill_inside_a_write(config, out, rng)
    kill_at_random_moment(config, out, rng)
    run_to_end(config, out)

    assert outputs(out) == expected
    assert summary(out) == summary(reference)
