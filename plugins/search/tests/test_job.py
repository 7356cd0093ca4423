import json

import pytest


CONFIG = {
    "job": "search", "split": "test", "limit": 6, "batch_size": 4,
    "task": {"type": "arith"},
    "generator": {"type": "transformers", "model": "pkg:openr_arith/models/policy"},
    "reward_model": {"type": "arith-oracle"},
    "searchers": [{"type": "greedy"}, {"type": "best-of-n", "n": 4}, {"type": "beam", "n": 4, "width": 2},
                  {"type": "mcts", "n": 4, "expansions": 2}],
}


def test_search_job_writes_results_summary_plot_and_resumes(tmp_path, run_search):
    out = tmp_path / "full"
    table = run_search(tmp_path, CONFIG, out)
    assert "beam@4" in table and "mcts@4" in table
    summary = json.loads((out / "summary.json").read_text())
    assert [r["searcher"] for r in summary["searchers"]] == ["greedy", "best-of-n@4", "beam@4", "mcts@4"]
    assert (out / "accuracy_vs_tokens.png").stat().st_size > 1000
    assert (out / "config.yaml").exists()
    greedy = summary["searchers"][0]
    assert greedy["generator_calls_per_problem"] == 1 and greedy["prm_tokens_per_problem"] == 0
    # interrupted run: half of beam's records and a line cut short by the kill
    killed = tmp_path / "killed"
    run_search(tmp_path, CONFIG, killed)
    beam = killed / "results" / "beam@4.jsonl"
    lines = beam.read_text().splitlines(keepends=True)
    beam.write_text("".join(lines[:3]) + lines[3][:20])
    for later in ("mcts@4.jsonl",):
        (killed / "results" / later).unlink()
    run_search(tmp_path, CONFIG, killed)
    for name in ("greedy", "best-of-n@4", "beam@4", "mcts@4"):
        def rows(folder):
            return [{k: v for k, v in json.loads(l).items() if k != "seconds"}
                    for l in (folder / "results" / f"{name}.jsonl").read_text().splitlines()]
        assert rows(killed) == rows(out), name
        assert len(rows(killed)) == 6


def test_batched_and_one_problem_at_a_time_give_identical_answers(tmp_path, run_search):
    run_search(tmp_path, CONFIG, tmp_path / "batched", batch_size=6)
    run_search(tmp_path, CONFIG, tmp_path / "single", batch_size=1)
    for name in ("best-of-n@4", "beam@4", "mcts@4"):
        a = [json.loads(l)["answer"] for l in (tmp_path / "batched" / "results" / f"{name}.jsonl").read_text().splitlines()]
        b = [json.loads(l)["answer"] for l in (tmp_path / "single" / "results" / f"{name}.jsonl").read_text().splitlines()]
        assert a == b, name


@pytest.mark.parametrize(("section", "message"), [
    ({"type": "mcts", "n": 4, "expansions": 2, "c_puct": -1}, "searchers.0.c_puct: must be >= 0: -1.0"),
    ({"type": "particle-filter", "n": 4, "ess_threshold": 5}, "searchers.0.ess_threshold: must be <= 1: 5.0"),
    ({"type": "pav-beam", "n": 4, "width": 2, "alpha": -1}, "searchers.0.alpha: must be >= 0: -1.0"),
    ({"type": "best-of-n", "n": 4, "temperature": -1}, "searchers.0.temperature: must be >= 0: -1.0"),
    ({"type": "best-of-n", "n": 4, "top_p": 0}, "searchers.0.top_p: must be > 0: 0.0"),
    ({"type": "best-of-n", "n": 4, "temperature": float("nan")}, "searchers.0.temperature: expected a finite number, got nan"),
])
def test_searcher_numbers_out_of_range_fail_validate(section, message):
    """Each ran to exit 0 (a negative exploration constant, an ESS threshold above 1, PAV's
    advantage turned around) or crashed after the first batch (temperature -1, top_p 0)."""
    from openr_core import ConfigError
    from openr_core.config import Where, structure
    from openr_search.job import SearchJob

    data = {"job": "search", "task": "arith", "generator": {"type": "transformers", "model": "m"}, "searchers": [section]}
    with pytest.raises(ConfigError) as info:
        structure(SearchJob, data, Where("s.yaml"), None)
    assert str(info.value) == f"s.yaml: {message}"
