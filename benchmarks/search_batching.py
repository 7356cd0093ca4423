"""Beam search on arith test problems: all problems batched into each round vs one problem at a time.

The generator keeps its cross-call KV store (``kv_cache_mb``) in both runs, so each round's
children encode only the newline after their parent's step.

Same generator, reward model, config and seeds; the answers must be identical.

    .venv/bin/python benchmarks/search_batching.py [--problems 300] [--reward-model prm|oracle]
"""

from __future__ import annotations

import argparse
import time

import torch

from openr_arith.task import ArithTask
from openr_arith.truth import ArithOracle
from openr_prm.models import LMHeadPRM
from openr_search.tree import Beam
from openr_transformers.generator import TransformersGenerator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument("--reward-model", choices=["prm", "oracle"], default="prm")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = ArithTask()
    problems = task.load("test", args.problems)
    generator = TransformersGenerator(model="pkg:openr_arith/models/policy")
    rm = (LMHeadPRM(model="pkg:openr_arith/models/prm", step_tag=" ки", good_token="good", bad_token="bad")
          if args.reward_model == "prm" else ArithOracle())
    beam = Beam(n=16, width=4, prune_below=0.5)
    beam.search(problems[:4], task=task, generator=generator, reward_model=rm)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    batched = beam.search(problems, task=task, generator=generator, reward_model=rm)
    batched_s, batched_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    single = [beam.search([p], task=task, generator=generator, reward_model=rm)[0] for p in problems]
    single_s, single_cpu = time.perf_counter() - t0, time.process_time() - c0
    same = [r.answer for r in batched] == [r.answer for r in single]
    acc = sum(r.answer is not None and task.answers_match(p, r.answer) for p, r in zip(problems, batched)) / len(problems)
    print(f"beam n=16 width=4 on {len(problems)} arith test problems ({args.reward_model}); accuracy {acc:.3f}")
    # CPU seconds of this process: steadier than wall time on a machine shared with other jobs
    print(f"  batched across problems: {batched_s:7.1f} s  ({batched_cpu:.1f} CPU s)")
    print(f"  one problem at a time:   {single_s:7.1f} s  ({single_cpu:.1f} CPU s)")
    print(f"  speed-up: {single_s / batched_s:.1f}x (CPU time: {single_cpu / batched_cpu:.1f}x)   identical answers: {same}")
    store = generator.kv_store
    if store is not None and store.prompt_tokens:
        print(f"  prompt tokens served from the cross-call KV store: {store.reused_tokens / store.prompt_tokens:.1%}")


if __name__ == "__main__":
    main()
