import json

from click.testing import CliRunner

from openr_core.cli import cli

CONFIG = {
    "job": "label-compare", "split": "test", "limit": 4, "batch_size": 2, "n_solutions": 2,
    "task": {"type": "arith"},
    "generator": {"type": "transformers", "model": "pkg:openr_arith/models/policy", "threads": 1},
    "labelers": [{"type": "mc", "k": 2, "rollout_max_tokens": 48},
                 {"type": "omegaprm", "k": 2, "rollout_max_tokens": 48}],
}


def run(tmp_path, out, *options):
    path = tmp_path / "compare.yaml"
    path.write_text(json.dumps(CONFIG))
    result = CliRunner().invoke(cli, ["run", str(path), "-o", str(out), *options], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    for row in summary["labelers"]:
        row.pop("seconds")
    return summary


def test_label_compare_resumes_after_a_kill_without_duplicating_or_dropping_batches(tmp_path):
    out = tmp_path / "out"
    full = run(tmp_path, out)
    assert [r["labeler"] for r in full["labelers"]] == ["mc(k=2)", "omegaprm(k=2)"]
    assert full["problems"] == 4 and full["solutions"] > 0
    assert all(r["examples"] == full["solutions"] and r["rollouts"] > 0 for r in full["labelers"])
    lines = (out / "batches.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) == 2
    # killed while writing the second batch's record: one whole record and a cut line remain
    (out / "batches.jsonl").write_text(lines[0] + lines[1][:20])
    (out / "summary.json").unlink()
    assert run(tmp_path, out) == full
    again = (out / "batches.jsonl").read_text().splitlines()
    assert [json.loads(l)["id"] for l in again] == ["arith-test-0..arith-test-1#2", "arith-test-2..arith-test-3#2"]
    assert run(tmp_path, out) == full  # all done: nothing is relabelled, the summary is the same
    # resumed with another limit, a batch whose problems changed is counted again, never reused
    part = tmp_path / "part"
    three = run(tmp_path, part, "--set", "limit=3")
    assert three["problems"] == 3 and three["solutions"] < full["solutions"]
    assert run(tmp_path, part) == full


def test_label_compare_refuses_to_resume_records_of_other_labeller_names(tmp_path):
    """Same config, records written under other names (an older openr named labellers
    differently): a one-line error naming the file, not a KeyError."""
    out = tmp_path / "out"
    run(tmp_path, out)
    first = (out / "batches.jsonl").read_text().splitlines()[0].replace("omegaprm(k=2)", "omegaprm(k=2,old)")
    (out / "batches.jsonl").write_text(first + "\n")
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "compare.yaml"), "-o", str(out)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "batches.jsonl: written for labellers ['mc(k=2)', 'omegaprm(k=2,old)']" in result.output
