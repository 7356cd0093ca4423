"""Reward-model scoring: all steps in one forward pass vs one pass per step prefix.

200 arith solutions of 8 steps (7 operations + the answer line), scored by the implicit PRM the
quickstart uses (backbone over policy: two forward passes per batch) or by the shipped LM-head
PRM (``--reward-model lm-head``). Each way is timed ``--repeats`` times, interleaved, in this one
process; the medians are compared, so a burst of load on a shared machine moves one sample, not
the figure.

    .venv/bin/python benchmarks/prm_scoring.py
    .venv/bin/python benchmarks/prm_scoring.py --reward-model lm-head --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from openr_arith.task import ArithTask
from openr_core import ScoreRequest
from openr_prm.models import ImplicitPRM, LMHeadPRM


def build(kind: str):
    if kind == "implicit":
        return ImplicitPRM(model="pkg:openr_arith/models/backbone", reference="pkg:openr_arith/models/policy",
                           batch_size=256)
    return LMHeadPRM(model="pkg:openr_arith/models/prm", step_tag=" ки", good_token="good", bad_token="bad",
                     batch_size=256)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reward-model", choices=["implicit", "lm-head"], default="implicit")
    parser.add_argument("--solutions", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = ArithTask(min_steps=7, max_steps=7)
    requests = [ScoreRequest(p, p.meta["solution"].split("\n")) for p in task.load("test", args.solutions)]
    assert all(len(r.steps) == 8 for r in requests)
    rm = build(args.reward_model)
    rm.score(requests[:8])  # warm-up
    ways = {"one pass": rm.score, "per prefix": rm._scorer.score_per_prefix}
    seconds = {name: [] for name in ways}
    results = {}
    for _ in range(args.repeats):
        for name, score in ways.items():
            t0 = time.perf_counter()
            results[name] = score(requests)
            seconds[name].append(time.perf_counter() - t0)
    one, prefix = results["one pass"], results["per prefix"]
    diff = max(abs(a - b) for x, y in zip(one, prefix) for a, b in zip(x.scores, y.scores))
    print(f"{len(requests)} solutions x 8 steps, {args.reward_model} PRM, {args.threads} thread(s), "
          f"median of {args.repeats}")
    for name, result in results.items():
        runs = " ".join(f"{s:.3f}" for s in seconds[name])
        print(f"  {name:10s} {statistics.median(seconds[name]):7.3f} s  ({runs})  "
              f"{sum(s.n_tokens for s in result):7d} tokens read")
    ratio = statistics.median(seconds["per prefix"]) / statistics.median(seconds["one pass"])
    print(f"  speed-up: {ratio:.1f}x   max |score difference|: {diff:.2e}")


if __name__ == "__main__":
    main()
