"""The ``ray`` launcher on a real local Ray cluster (127.0.0.1, 3 CPUs, started once for this module).

search, label and eval-prm with 2 workers write the records a 1-process run writes; a worker killed
by pid mid-run is restarted and its batch retried; a killed driver resumes without duplicates."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from click.testing import CliRunner

from openr_core.cli import cli

pytestmark = pytest.mark.slow  # one Ray cluster for the module, ~2 workers' start-up per run

ARITH = {"task": {"type": "arith"}, "seed": 3,
         "generator": {"type": "transformers", "model": "pkg:openr_arith/models/policy", "threads": 1}}
SEARCH = {**ARITH, "job": "search", "split": "test", "limit": 12, "batch_size": 3, "plot": False,
          "reward_model": {"type": "arith-oracle"},
          "searchers": [{"type": "best-of-n", "n": 4}, {"type": "beam", "n": 4, "width": 2}]}
LABEL = {**ARITH, "job": "label", "split": "train", "limit": 8, "batch_size": 2,
         "labeler": {"type": "mc", "n_solutions": 2, "k": 2}}
EVAL_PRM = {**ARITH, "job": "eval-prm", "split": "test", "problems": 8, "batch_size": 4,
            "labeler": {"type": "arith-truth", "n": 2, "temperatures": [1.0]},
            "reward_model": {"type": "lm-head-prm", "model": "pkg:openr_arith/models/prm", "step_tag": " ки",
                             "good_token": "good", "bad_token": "bad", "threads": 1},
            "response_level": {"n": 2, "problems": 4}}
EVALUATE = {**ARITH, "job": "evaluate", "split": "test", "limit": 8, "batch_size": 2, "n": 2, "max_tokens": 64}
LABEL_COMPARE = {**ARITH, "job": "label-compare", "split": "test", "limit": 8, "batch_size": 2, "n_solutions": 2,
                 "labelers": [{"type": "mc", "k": 2}, {"type": "omegaprm", "k": 2}]}
JOBS = {"search": SEARCH, "label": LABEL, "eval-prm": EVAL_PRM, "evaluate": EVALUATE, "label-compare": LABEL_COMPARE}
FILES = {"search": ["results/best-of-n@4.jsonl", "results/beam@4.jsonl"],
         "label": ["labels.jsonl", "labelled_problems.jsonl"],
         "eval-prm": ["data/test/labels.jsonl", "results.jsonl", "response_results.jsonl"], "evaluate": ["results.jsonl"],
         "label-compare": ["batches.jsonl"]}
TWO_WORKERS = {"type": "ray", "workers": 2, "worker_resources": {"CPU": 1}}


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster on 127.0.0.1; the tests' in-process runs use it, subprocess drivers join it."""
    context = ray.init(num_cpus=3, include_dashboard=False, object_store_memory=100 * 2**20,
                       _node_ip_address="127.0.0.1", logging_level="warning")
    yield "127.0.0.1:" + context.address_info["gcs_address"].rsplit(":", 1)[1]  # GCS listens on every interface
    ray.shutdown()


def write(tmp_path, config, name) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(config))
    return path


def run_here(tmp_path, config, out) -> str:
    result = CliRunner().invoke(cli, ["run", str(write(tmp_path, config, out.name)), "-o", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def timeless(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("seconds", "wall_seconds")}


def lines(folder: Path, name: str) -> list[dict]:
    """The file's records in file order, without the wall-clock fields."""
    return [json.loads(line, object_hook=timeless) for line in (folder / name).read_text().splitlines()]


def assert_same_records(folder: Path, reference: Path, job: str) -> None:
    for name in FILES[job]:
        got, want = lines(folder, name), lines(reference, name)
        assert len({r["id"] for r in got}) == len(got), f"{name}: duplicate records"
        assert got == want, name


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """1-process runs (no launcher) of each job: what every Ray run must reproduce."""
    tmp = tmp_path_factory.mktemp("reference")
    out = {}
    for job, config in JOBS.items():
        out[job] = tmp / job
        run_here(tmp, config, out[job])
    return out


@pytest.mark.parametrize("job", list(JOBS))
def test_two_workers_write_the_records_of_one_process(cluster, references, tmp_path, job):
    assert "ray: 2 workers ready" in run_here(tmp_path, {**JOBS[job], "launcher": TWO_WORKERS}, tmp_path / job)
    assert_same_records(tmp_path / job, references[job], job)
    assert len(lines(tmp_path / job, FILES[job][-1])) >= 4
    summary, reference = (json.loads((f / "summary.json").read_text(), object_hook=timeless)
                          for f in (tmp_path / job, references[job]))
    assert summary == reference


def test_a_shared_reward_model_actor_serves_both_workers_with_the_same_records(cluster, references, tmp_path):
    launcher = {**TWO_WORKERS, "shared_reward_model": {"CPU": 1}}
    output = run_here(tmp_path, {**SEARCH, "launcher": launcher}, tmp_path / "search")
    assert "ray: 2 workers ready" in output
    served = re.search(r"the shared reward model scored (\d+) requests", output)
    assert served and int(served[1]) >= 12 * 4  # best-of-n alone scores 4 solutions of each of 12 problems
    assert_same_records(tmp_path / "search", references["search"], "search")


# -- failures: a driver in a subprocess, killed or with a worker killed ---------------------------


def start_driver(tmp_path, config, out, address, **launcher) -> subprocess.Popen:
    path = write(tmp_path, {**config, "launcher": {**TWO_WORKERS, "address": address, **launcher}}, out.name)
    code = "import sys; from openr_core.cli import main; sys.argv[0] = 'openr'; main()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENR_") and k != "RAY_ADDRESS"}
    return subprocess.Popen([sys.executable, "-c", code, "run", str(path), "-o", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def shard_workers(title: bytes = b"ray::ShardWorker") -> list[int]:
    """Pids of the launcher's actors: processes Ray titled ``ray::ShardWorker`` (``.compute`` while busy)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(title):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def wait_for(condition, driver: subprocess.Popen | None, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert driver is None or driver.poll() is None, driver.communicate()
        time.sleep(0.05)
    raise AssertionError("timed out")


def records_written(out: Path, name: str) -> int:
    path = out / name
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.parametrize("retries", [3, 0])
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(cluster, references, tmp_path, retries):
    """retries 3: Ray restarts the worker and reruns its batch there; 0: the batch goes to the other worker."""
    out = tmp_path / "search"
    driver = start_driver(tmp_path, SEARCH, out, cluster, retries=retries)
    first = FILES["search"][0]
    busy = wait_for(lambda: records_written(out, first) >= 1 and shard_workers(b"ray::ShardWorker.compute"), driver)
    os.kill(busy[0], signal.SIGKILL)  # mid-batch
    assert records_written(out, FILES["search"][-1]) < 12  # mid-run
    if retries:
        wait_for(lambda: len(shard_workers()) == 2 and busy[0] not in shard_workers(), driver)  # restarted
    stdout, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 0, stderr
    assert ("its batch goes to another" in stderr) == (retries == 0), stderr
    assert_same_records(out, references["search"], "search")


def test_a_killed_driver_resumes_without_duplicates(cluster, references, tmp_path):
    out = tmp_path / "label"
    driver = start_driver(tmp_path, LABEL, out, cluster)
    wait_for(lambda: records_written(out, "labelled_problems.jsonl") >= 2, driver)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert records_written(out, "labelled_problems.jsonl") < 8
    wait_for(lambda: not shard_workers(), None, timeout=60)  # its actors die with it
    rerun = start_driver(tmp_path, LABEL, out, cluster)
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert_same_records(out, references["label"], "label")


# -- errors: one line, nothing lost ------------------------------------------------------------


def test_workers_that_do_not_fit_the_cluster_are_one_line_error(cluster, tmp_path):
    config = {**LABEL, "launcher": {"type": "ray", "workers": 2, "worker_resources": {"CPU": 2}}}
    result = CliRunner().invoke(cli, ["run", str(write(tmp_path, config, "big")), "-o", str(tmp_path / "big")])
    assert result.exit_code == 1
    assert "launcher ray: 2 workers x CPU=2 do not fit the cluster's CPU=3" in result.stderr.splitlines()[-1]


def test_a_worker_that_cannot_build_its_components_stops_the_job_with_that_error(cluster, tmp_path):
    config = {**EVAL_PRM, "launcher": TWO_WORKERS}
    config["reward_model"] = {**EVAL_PRM["reward_model"], "model": str(tmp_path / "no-such-model")}
    result = CliRunner().invoke(cli, ["run", str(write(tmp_path, config, "bad")), "-o", str(tmp_path / "bad")])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1].startswith(f"openr: error: model '{tmp_path / 'no-such-model'}'")
    assert not (tmp_path / "bad" / "results.jsonl").exists()
