import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from openr_core.cli import cli

DATA = Path(os.environ.get("OPENR_SHARED_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"))


@pytest.mark.skipif(not (DATA / "math500").is_dir(), reason=f"shared data not found at {DATA}")
def test_greedy_search_on_math500_writes_graded_results(tmp_path):
    config = tmp_path / "m.yaml"
    config.write_text(json.dumps({
        "job": "search", "split": "test", "limit": 3,
        "task": {"type": "math500", "path": str(DATA / "math500" / "test.jsonl")},
        "generator": {"type": "transformers", "model": "pkg:openr_arith/models/policy"},
        "searchers": [{"type": "greedy", "max_tokens": 8}]}))
    result = CliRunner().invoke(cli, ["run", str(config), "-o", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(l) for l in (tmp_path / "out" / "results" / "greedy.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["test/precalculus/807.json", "test/intermediate_algebra/1994.json",
                                       "test/algebra/2584.json"]
    assert all(r["gold"] and r["correct"] is False and r["generated_tokens"] <= 8 for r in rows)
