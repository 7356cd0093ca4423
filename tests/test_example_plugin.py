"""The third-party example plugin, pip-installed for real into this venv and used through `openr`."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "examples" / "openr-example"
BIN = Path(sys.executable).parent


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True, text=True, timeout=300,
    )


def _openr(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENR_PLUGINS", "OPENR_DISABLE_PLUGINS", "PYTHONPATH")}
    return subprocess.run([str(BIN / "openr"), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


@pytest.mark.slow
@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="installs into the running virtual environment only")
@pytest.mark.skipif(not (BIN / "openr").exists(), reason="needs the openr console script next to this Python")
def test_example_plugin_installed_with_pip(tmp_path):
    if _pip("show", "openr-example").returncode == 0:
        pytest.skip("openr-example is already installed here; not touching someone else's install")
    # build from a copy so no build/ or *.egg-info lands in the repository
    source = tmp_path / "openr-example"
    shutil.copytree(EXAMPLE, source)
    installed = _pip("install", "--no-deps", "--no-build-isolation", "--quiet", str(source))
    if installed.returncode != 0:  # no (recent enough) setuptools in this venv: let pip fetch one
        installed = _pip("install", "--no-deps", "--quiet", str(source))
    try:
        assert installed.returncode == 0, installed.stdout + installed.stderr

        ls = _openr("ls", "generators", cwd=tmp_path)
        assert ls.returncode == 0, ls.stderr
        echo = [line for line in ls.stdout.splitlines() if line.split()[:1] == ["echo"]]
        assert echo and echo[0].endswith("[openr-example]"), ls.stdout
        assert "Returns the prompt's last line" in echo[0]

        listed = _openr("plugins", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "openr-example 0.1.0  (entry point 'example')" in listed.stdout
        assert "  generators: echo" in listed.stdout and "  tasks: countdown" in listed.stdout

        config = tmp_path / "eval.yaml"
        config.write_text("job: evaluate\ntask: {type: countdown, size: 4}\ngenerator: echo\nn: 3\n")
        valid = _openr("validate", str(config), cwd=tmp_path)
        assert valid.returncode == 0, valid.stderr
        assert valid.stdout.strip() == f"{config}: ok (evaluate)"
        shipped = _openr("validate", str(EXAMPLE / "evaluate.yaml"), cwd=tmp_path)
        assert shipped.returncode == 0, shipped.stderr
        bad = _openr("validate", str(config), "--set", "task.sise=3", cwd=tmp_path)
        assert bad.returncode == 2
        assert bad.stderr.strip().endswith(f"openr: error: {config}: task.sise: unknown key (did you mean 'size'?); valid keys: size, to")

        out = tmp_path / "out"
        ran = _openr("run", str(config), "--output", str(out), cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        for name in ("results.jsonl", "config.yaml", "summary.json"):
            assert (out / name).is_file(), name
        records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        # the echo says the prompt's last line, the countdown's start: right only for "from 0 to 0"
        assert [(r["id"], r["answer"], r["correct"]) for r in records] == [
            ("countdown-test-0", "0", True), ("countdown-test-1", "1", False),
            ("countdown-test-2", "2", False), ("countdown-test-3", "3", False)]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["problems"] == 4
        assert summary["accuracy"] == 0.25
        assert summary["pass@3"] == 0.25 and summary["majority@3"] == 0.25
        assert summary["greedy_tokens_per_problem"] == 1.0 and summary["sample_tokens_per_problem"] == 3.0
        written = yaml.safe_load((out / "config.yaml").read_text())
        assert written["generator"] == {"type": "echo", "repeat": 1}
        assert written["task"] == {"type": "countdown", "size": 4, "to": 0}

        # the same again resumes (nothing to redo, no duplicates); another config is refused
        again = _openr("run", str(config), "--output", str(out), cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert len((out / "results.jsonl").read_text().splitlines()) == 4
        other = _openr("run", str(config), "--output", str(out), "--set", "generator.repeat=2", cwd=tmp_path)
        assert other.returncode == 2
        assert "first difference: generator.repeat" in other.stderr and "Traceback" not in other.stderr
    finally:
        removed = _pip("uninstall", "--yes", "openr-example")
        assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "openr-example" not in _openr("plugins", cwd=tmp_path).stdout
