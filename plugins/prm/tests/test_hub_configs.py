"""Shipped configs name hub data sets; the tests run them on the local copies through the
documented override (issue 16, item 8)."""

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from openr_core.cli import cli
from openr_core.errors import DataError
from openr_prm.data import load_stepwise

ROOT = Path(__file__).resolve().parents[3]
ARITH_PRM = ["--set", "reward_model.model=pkg:openr_arith/models/prm", "--set", "reward_model.good_token=good",
             "--set", "reward_model.bad_token=bad", "--set", "reward_model.threads=1"]


@pytest.fixture(scope="module")
def shared_data() -> Path:
    """``$OPENR_SHARED_DATA``, else ``<repo>/../shared/data`` (our machines' local copies)."""
    env = os.environ.get("OPENR_SHARED_DATA")
    path = Path(env).expanduser() if env else ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path} (set OPENR_SHARED_DATA to its location)")
    return path


def test_no_shipped_config_points_at_our_shared_folder():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yaml") if "../shared" in p.read_text()]
    assert offenders == []


def test_processbench_config_names_the_hub_and_runs_on_local_copies(shared_data, tmp_path):
    config = ROOT / "configs" / "processbench.yaml"
    data = yaml.safe_load(config.read_text())["data"]
    assert data == [f"hub:Qwen/ProcessBench/{s}" for s in ("gsm8k", "math", "olympiadbench", "omnimath")]
    local = [str(shared_data / "processbench" / f"{Path(d).stem}.json") for d in data]
    result = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path), "--set", f"data={json.dumps(local)}",
                                      "--set", "limit=3", *ARITH_PRM], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for subset in ("gsm8k", "math", "olympiadbench", "omnimath"):
        assert subset in result.output


def test_an_unreachable_hub_data_set_is_one_line_naming_the_way_out(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match=r"hub:Qwen/ProcessBench/gsm8k: cannot load from the hub.*local copies"):
        load_stepwise("hub:Qwen/ProcessBench/gsm8k", "processbench")


def test_math500_config_loads_the_hub_task_and_runs_on_a_local_copy(shared_data, tmp_path):
    config = ROOT / "configs" / "math" / "math500-greedy.yaml"
    task = yaml.safe_load(config.read_text())["task"]
    assert task == {"type": "math500"}  # the task's default source: HuggingFaceH4/MATH-500
    result = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path), "--set",
                                      f"task.path={shared_data / 'math500' / 'test.jsonl'}", "--set", "limit=2",
                                      "--set", "generator.threads=1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "results" / "greedy.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["test/precalculus/807.json", "test/intermediate_algebra/1994.json"]
    assert rows[0]["gold"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
