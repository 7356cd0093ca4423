"""Beam search (n 16, width 4, arith-oracle) on arith test problems with the `vllm` generator vs
the `transformers` generator: same searcher config and seeds; time excludes engine/model start-up.
Also the prefix-cache hit rate of vLLM during the search (prompt tokens served from cached
blocks / prompt tokens looked up, from the engine's own counters).

    .venv/bin/python benchmarks/vllm_beam.py [--problems 300] [--repeats 2] [--threads 2]

On a machine shared with other jobs use --threads 1: two OpenMP threads on two busy cores run
the transformers generator 6-10x slower (measured), which would flatter vLLM.
"""

from __future__ import annotations

import argparse
import time

import torch

from openr_arith.task import ArithTask
from openr_arith.truth import ArithOracle
from openr_search.tree import Beam
from openr_transformers.generator import TransformersGenerator
from openr_vllm.generator import VLLMGenerator

POLICY = "pkg:openr_arith/models/policy"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch threads / vLLM CPU cores, for both")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = ArithTask()
    problems = task.load("test", args.problems)
    beam = Beam(n=16, width=4, prune_below=0.5)
    # transformers first, with no vLLM engine alive (its idle worker threads would compete for the cores)
    starts, best, results, hit_rate = {}, {}, {}, None
    for name in ("transformers", "vllm"):
        t0 = time.perf_counter()
        if name == "transformers":
            generator = TransformersGenerator(model=POLICY, batch_size=1024, threads=args.threads)
        else:
            generator = VLLMGenerator(model=POLICY, enforce_eager=True, block_size=32,
                                      cpu_threads=",".join(str(i) for i in range(args.threads)))
        starts[name] = time.perf_counter() - t0
        beam.search(problems[:8], task=task, generator=generator, reward_model=ArithOracle())  # warm-up
        for _ in range(args.repeats):
            if name == "vllm":
                generator.llm.reset_prefix_cache()
                before = generator.prefix_cache_counters()
            t0 = time.perf_counter()
            results[name] = beam.search(problems, task=task, generator=generator, reward_model=ArithOracle())
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
            if name == "vllm":
                hit_rate = [a - b for a, b in zip(generator.prefix_cache_counters(), before)]
        generator.close()
    print(f"start-up (not in the times below): transformers {starts['transformers']:.1f} s, vllm {starts['vllm']:.1f} s")
    print(f"beam (n 16, width 4, arith-oracle) on {len(problems)} problems, best of {args.repeats}:")
    for name, seconds in best.items():
        r = results[name]
        accuracy = sum(x.answer is not None and task.answers_match(p, x.answer) for p, x in zip(problems, r)) / len(r)
        tokens = sum(x.budget.generated_tokens for x in r)
        print(f"    {name:<13} {seconds:7.2f} s  {tokens / seconds:8.0f} tokens/s  accuracy {accuracy:.3f}  "
              f"{tokens / len(r):.0f} tokens/problem  {sum(x.budget.generator_calls for x in r) / len(r):.1f} calls/problem")
    print(f"    vllm vs transformers: {best['transformers'] / best['vllm']:.2f}x the speed")
    queried, hit = hit_rate
    print(f"    vLLM prefix-cache hit rate during the search: {hit / max(queried, 1):.1%} ({hit} of {queried} prompt tokens)")


if __name__ == "__main__":
    main()
