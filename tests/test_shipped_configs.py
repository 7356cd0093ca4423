"""Every config the project ships resolves and validates against the installed plugins."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from openr_core.cli import cli

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def test_there_are_configs():
    assert (ROOT / "configs" / "quickstart.yaml") in CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_config_validates(path):
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(")")


JOB_COUNTS = ("limit", "batch_size")


@pytest.mark.parametrize(
    "name", ["arith/search-oracle.yaml", "arith/label-mc.yaml", "arith/eval-prm.yaml", "arith/label-compare.yaml",
             "arith/eval-policy.yaml"]
)
@pytest.mark.parametrize("value", [0, -2])
def test_non_positive_job_counts_are_rejected_by_validate(name, value):
    """`limit: -2` once ran a label job that did nothing and exited 0; every job's counts are checked."""
    path = ROOT / "configs" / name
    for key in JOB_COUNTS:
        result = CliRunner().invoke(cli, ["validate", str(path), "--set", f"{key}={value}"])
        assert result.exit_code == 2, (key, result.output)
        assert result.stderr.strip() == f"openr: error: {path}: {key}: must be >= 1: {value}"


@pytest.mark.parametrize(
    ("name", "override", "path_in_config"),
    [
        ("arith/search-oracle.yaml", "searchers.0.max_tokens=0", "searchers.0.max_tokens"),
        ("arith/label-mc.yaml", "labeler.k=0", "labeler.k"),
        ("arith/label-mc.yaml", "labeler.n_solutions=-1", "labeler.n_solutions"),
        ("arith/prm.yaml", "trainer.steps=0", "trainer.steps"),
        ("arith/prm.yaml", "trainer.log_every=0", "trainer.log_every"),
        ("arith/eval-prm.yaml", "reward_model.batch_size=0", "reward_model.batch_size"),
    ],
)
def test_non_positive_component_counts_are_rejected_by_validate(name, override, path_in_config):
    path = ROOT / "configs" / name
    result = CliRunner().invoke(cli, ["validate", str(path), "--set", override])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith(f"openr: error: {path}: {path_in_config}: must be >= 1: ")
