import json

from click.testing import CliRunner

from openr_core.cli import cli

CONFIG = {
    "job": "label", "split": "test", "limit": 4, "batch_size": 2,
    "task": {"type": "arith"},
    "generator": {"type": "transformers", "model": "pkg:openr_arith/models/policy", "threads": 1},
    "labeler": {"type": "consensus", "first": {"type": "mc", "n_solutions": 1, "k": 1, "rollout_max_tokens": 48},
                "second": {"type": "omegaprm", "k": 1, "rollout_max_tokens": 48}},
}


MC = {"type": "mc", "n_solutions": 2, "k": 1, "rollout_max_tokens": 48}


def run(tmp_path, out, **changes):
    path = tmp_path / "label.yaml"
    path.write_text(json.dumps({**CONFIG, **changes}))
    result = CliRunner().invoke(cli, ["run", str(path), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def rows(folder):
    return [json.loads(l) for l in (folder / "labels.jsonl").read_text().splitlines()]


def test_label_job_resumes_without_duplicates(tmp_path):
    full = tmp_path / "full"
    run(tmp_path, full)
    assert rows(full) and all(r["meta"]["labeler"] == "consensus" for r in rows(full))
    killed = tmp_path / "killed"
    run(tmp_path, killed, labeler=MC)
    mc_full = rows(killed)
    # kill after the first batch: its problems are recorded, a second batch's line is cut short
    done = (killed / "labelled_problems.jsonl").read_text().splitlines(keepends=True)
    (killed / "labelled_problems.jsonl").write_text("".join(done[:2]))
    first_batch = [l for l in (killed / "labels.jsonl").read_text().splitlines(keepends=True)
                   if json.loads(l)["problem_id"] in {json.loads(d)["id"] for d in done[:2]}]
    (killed / "labels.jsonl").write_text("".join(first_batch) + '{"id": "arith-test-2/0", "pro')
    run(tmp_path, killed, labeler=MC)
    assert rows(killed) == mc_full
    ids = [r["id"] for r in rows(killed)]
    assert len(ids) == len(set(ids))
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["problems"] == 4 and summary["examples"] == len(mc_full)
