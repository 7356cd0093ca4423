"""The `rest-mcts` job on the arith sandbox, sized for 2 cores: 4 train problems, 2 iterations,
2 optimiser steps per trainer. A run killed inside iteration 2 resumes there: iteration 1 and
iteration 2's finished steps are not run again, and the curve equals the uninterrupted run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

PRM = {"type": "lm-head-prm", "model": "pkg:openr_arith/models/prm", "step_tag": " ки", "good_token": "good",
       "bad_token": "bad", "threads": 1}
CONFIG = {
    "job": "rest-mcts", "seed": 0, "iterations": 2, "task": {"type": "arith"},
    "generator": {"type": "transformers", "threads": 1}, "policy": "pkg:openr_arith/models/policy",
    "value_model": PRM, "margin": 0.5,
    "search": {"split": "train", "limit": 4, "plot": False,
               "searchers": [{"type": "mcts", "n": 6, "expansions": 3, "max_simulations": 8}]},
    "evaluate": {"split": "test", "limit": 2, "plot": False, "searchers": [{"type": "greedy"}]},
    "value_trainer": {"type": "prm", "kind": "lm-head", "soft_labels": True, "steps": 2, "batch_size": 4,
                      "log_every": 1, "eval_every": 0, "save_every": 1, "step_tag": " ки", "good_token": "good",
                      "bad_token": "bad", "threads": 1},
    "policy_trainer": {"type": "sft", "steps": 2, "batch_size": 4, "log_every": 1, "eval_every": 0, "save_every": 1,
                       "threads": 1},
}

# SIGKILLs the process when iteration 2's policy training starts (its value model is trained)
KILL = r"""
import os, signal, sys
from openr_search import rest
from openr_core.cli import main

train = rest.Loop.train
def train_then_die(self, trainer, start, data, folder, name):
    if name == "iteration 2 policy_trainer":
        os.kill(os.getpid(), signal.SIGKILL)
    return train(self, trainer, start, data, folder, name)
rest.Loop.train = train_then_die
sys.argv[0] = "openr"
main()
"""


def openr(args, cwd, script=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = script or "import sys; from openr_core.cli import main; sys.argv[0] = 'openr'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rest")
    (tmp / "rest.yaml").write_text(yaml.safe_dump(CONFIG, allow_unicode=True))
    done = openr(["run", "rest.yaml", "-o", "full"], tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp / "full"


def test_two_iterations_write_a_curve_and_each_step_in_its_folder(full: Path):
    curve = json.loads((full / "curve.json").read_text())
    assert [r["iteration"] for r in curve] == [0, 1, 2]
    assert all(set(r["accuracy"]) == {"greedy"} and r["problems"] == 2 for r in curve)
    assert curve[2]["data"]["values"] > 0 and curve[2]["data"]["solutions"] > 0  # both models were trained
    assert (full / "curve.png").stat().st_size > 0
    for k in (1, 2):
        it = full / f"iter-{k}"
        record = json.loads((it / "done.json").read_text())
        data = json.loads((it / "data" / "summary.json").read_text())
        assert record["data"] == data and data["trees"] == 4
        trees = [json.loads(l) for l in (it / "search" / "trees" / "mcts@6.jsonl").read_text().splitlines()]
        assert sorted(t["id"] for t in trees) == [f"arith-train-{i}" for i in range(4)]
        # the next iteration starts from this one's models (trained when there was data for them)
        # (paths as the run was given them: `-o full` from the test's folder)
        if data["values"]:
            assert record["value_model"] == f"full/iter-{k}/value/final" and (it / "value" / "final").is_dir()
        if data["solutions"]:
            assert record["policy"] == f"full/iter-{k}/policy/final" and (it / "policy" / "final").is_dir()
    second = yaml.safe_load((full / "iter-2" / "search" / "config.yaml").read_text())
    assert second["generator"]["model"] == json.loads((full / "iter-1" / "done.json").read_text())["policy"]
    assert second["reward_model"]["model"] == json.loads((full / "iter-1" / "done.json").read_text())["value_model"]


def test_a_run_killed_in_iteration_two_resumes_there_without_redoing_finished_steps(full: Path):
    tmp = full.parent
    killed = openr(["run", "rest.yaml", "-o", "killed"], tmp, KILL)
    assert killed.returncode == -9, killed.stderr[-3000:]
    out = tmp / "killed"
    assert (out / "iter-1" / "done.json").exists() and not (out / "iter-2" / "done.json").exists()
    kept = {p: p.stat().st_mtime_ns for p in [out / "iter-1" / "done.json", out / "iter-2" / "search" / "results" / "mcts@6.jsonl",
                                             *(out / "iter-1").rglob("final/*"), *(out / "iter-2" / "value").rglob("final/*")]}
    done = openr(["run", "rest.yaml", "-o", "killed"], tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # nothing finished was written again
    assert (out / "iter-2" / "done.json").exists()
    strip = lambda c: [{k: v for k, v in r.items() if k not in ("seconds", "policy", "value_model")} for r in c]  # noqa: E731
    assert strip(json.loads((out / "curve.json").read_text())) == strip(json.loads((full / "curve.json").read_text()))
