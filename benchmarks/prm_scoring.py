"""Reward-model scoring: all steps in one forward pass vs one pass per step prefix.

200 arith solutions of 8 steps (7 operations + the answer line), scored by the reward model
the quickstart uses (implicit PRM: backbone over policy; two forward passes per batch).

    .venv/bin/python benchmarks/prm_scoring.py
"""

from __future__ import annotations

import argparse
import time

import torch

from openr_arith.task import ArithTask
from openr_core import ScoreRequest
from openr_prm.models import ImplicitPRM


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="pkg:openr_arith/models/backbone")
    parser.add_argument("--reference", default="pkg:openr_arith/models/policy")
    parser.add_argument("--solutions", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = ArithTask(min_steps=7, max_steps=7)
    requests = [ScoreRequest(p, p.meta["solution"].split("\n")) for p in task.load("test", args.solutions)]
    assert all(len(r.steps) == 8 for r in requests)
    rm = ImplicitPRM(model=args.model, reference=args.reference, batch_size=256)
    rm.score(requests[:8])  # warm-up
    t0 = time.perf_counter()
    one_pass = rm.score(requests)
    one_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    per_prefix = rm._scorer.score_per_prefix(requests)
    prefix_s = time.perf_counter() - t0
    diff = max(abs(a - b) for x, y in zip(one_pass, per_prefix) for a, b in zip(x.scores, y.scores))
    print(f"{len(requests)} solutions x 8 steps, implicit PRM ({args.model} over {args.reference})")
    print(f"  one pass:   {one_s:7.3f} s   {sum(s.n_tokens for s in one_pass):7d} tokens read")
    print(f"  per prefix: {prefix_s:7.3f} s   {sum(s.n_tokens for s in per_prefix):7d} tokens read")
    print(f"  speed-up: {prefix_s / one_s:.1f}x   max |score difference|: {diff:.2e}")


if __name__ == "__main__":
    main()
