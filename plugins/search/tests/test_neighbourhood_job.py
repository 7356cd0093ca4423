"""The neighbourhood searchers through the search job with the shipped policy: batched == one at a time."""

import json



POLICY = "pkg:openr_arith/models/policy"
CONFIG = {
    "job": "search", "split": "test", "limit": 4, "plot": False,
    "task": {"type": "arith"},
    "generator": {"type": "transformers", "model": POLICY},
    "reward_model": {"type": "arith-oracle"},
    "searchers": [
        {"type": "particle-filter", "n": 4},
        {"type": "particle-gibbs", "n": 4, "iterations": 2},
        {"type": "rstar", "n": 6, "expansions": 2, "checks": 2, "discriminator": {"type": "transformers", "model": POLICY}},
        {"type": "pav-beam", "n": 2, "width": 2, "prover": {"type": "transformers", "model": POLICY}},
        {"type": "compute-optimal", "n": 4, "probe": 1, "bins": 2, "dev_limit": 4,
         "strategies": [{"type": "greedy"}, {"type": "beam", "n": 2, "width": 1}]},
    ],
}
NAMES = ["particle-filter@4", "particle-gibbs@4", "rstar@6", "pav-beam@2", "compute-optimal@4"]


def test_neighbourhood_searchers_answer_the_same_batched_and_one_at_a_time(tmp_path, run_search):
    run_search(tmp_path, CONFIG, tmp_path / "batched", batch_size=4)
    run_search(tmp_path, CONFIG, tmp_path / "single", batch_size=1)
    for name in NAMES:
        def rows(folder):
            return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                    for line in (folder / "results" / f"{name}.jsonl").read_text().splitlines()]
        batched = rows(tmp_path / "batched")
        assert len(batched) == 4 and batched == rows(tmp_path / "single"), name
        assert all(r["generated_tokens"] > 0 for r in batched), name
    # what a searcher says about its choice is kept in the records (compute-optimal: bin, strategy)
    chosen = [json.loads(line)["meta"] for line in (tmp_path / "batched" / "results" / "compute-optimal@4.jsonl").read_text().splitlines()]
    assert all(m["bin"] in (0, 1) and m["strategy"] in (0, 1) for m in chosen), chosen  # strategy: its index
