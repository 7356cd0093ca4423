"""An `openr serve` process on 127.0.0.1 over the arith sandbox (shipped policy, exact oracle PRM)."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx  # what the openai client uses
import pytest

CONFIG = {
    "job": "search", "task": {"type": "arith"},
    "generator": {"type": "transformers", "model": "pkg:openr_arith/models/policy", "threads": 1},
    "reward_model": {"type": "arith-oracle"},
    "searchers": [{"type": "best-of-n", "n": 4}, {"type": "beam", "n": 4, "width": 2}, {"type": "greedy"}],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tmp_path, *options, config=CONFIG):
    path = tmp_path / "serve.yaml"
    path.write_text(json.dumps(config))
    port = free_port()
    openr = Path(sys.executable).parent / "openr"
    proc = subprocess.Popen([str(openr), "serve", str(path), "--port", str(port), *options],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"openr serve exited {proc.returncode}: {proc.stdout.read()}")
        try:
            if httpx.get(f"{base}/v1/models", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("openr serve did not start in 120 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, base = launch(tmp_path_factory.mktemp("serve"), "--queue-size", "3", "--window-ms", "50", "--max-n", "256")
    yield proc, base
    if proc.poll() is None:
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def start_server():
    procs = []

    def start(tmp_path, *options):
        proc, base = launch(tmp_path, *options)
        procs.append(proc)
        return proc, base
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def direct():
    """``direct(i, questions)``: searcher ``i`` of CONFIG run in this process, the reference the
    server's answers must equal (a question's problem id, hence its seeds, is the server's)."""
    from openr_core.config import Where, structure
    from openr_core.plugins import get_plugins
    from openr_search.job import SearchJob
    from openr_serve.engine import problem

    config = structure(SearchJob, CONFIG, Where("test"), get_plugins())
    task, generator, reward_model = config.task.build(), config.generator.build(), config.reward_model.build()
    yield lambda i, questions: config.searchers[i].build().search(
        [problem(q) for q in questions], task=task, generator=generator, reward_model=reward_model)
    generator.close()
