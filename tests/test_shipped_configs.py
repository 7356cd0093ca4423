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
