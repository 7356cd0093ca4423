"""Generator throughput on the shipped arith policy (transformers generator, CPU).

(a) 500 greedy solutions: one request at a time vs one batched call.
(b) 64 one-step continuations of one ~100-token prefix: naive (the prefix encoded once per
    child) vs prefix reuse (encoded once, KV cache shared).

    .venv/bin/python benchmarks/generation.py [--problems 500] [--children 64]
"""

from __future__ import annotations

import argparse
import time

import torch

from openr_arith.task import ArithTask
from openr_core import GenerationRequest, SamplingParams
from openr_transformers.generator import TransformersGenerator

POLICY = "pkg:openr_arith/models/policy"


def timed(generator, requests):
    t0 = time.perf_counter()
    results = generator.generate(requests)
    seconds = time.perf_counter() - t0
    tokens = sum(c.n_tokens for r in results for c in r.completions)
    return results, tokens, seconds


def long_prefix(generator, target_tokens: int = 100) -> str:
    """A prompt plus gold steps of a long problem, about ``target_tokens`` tokens long."""
    task = ArithTask(min_steps=12, max_steps=12, max_value=199)
    problem = task.load("test", 1)[0]
    text = task.prompt(problem)
    for step in problem.meta["solution"].split("\n"):
        if len(generator.tokenizer(text + step + "\n")["input_ids"]) > target_tokens:
            break
        text += step + "\n"
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--children", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = ArithTask()
    reuse = TransformersGenerator(model=POLICY, prefix_reuse=True)
    naive = TransformersGenerator(model=POLICY, prefix_reuse=False)
    problems = task.load("test", args.problems)
    greedy = SamplingParams(max_tokens=64)
    requests = [GenerationRequest(task.prompt(p), greedy) for p in problems]
    reuse.generate(requests[:8])  # warm-up

    one_results, one_tokens, one_s = [], 0, 0.0
    for request in requests:
        r, n, s = timed(reuse, [request])
        one_results += r
        one_tokens += n
        one_s += s
    batch_results, batch_tokens, batch_s = timed(reuse, requests)
    same = [r.completions[0].text for r in one_results] == [r.completions[0].text for r in batch_results]
    print(f"(a) {len(requests)} greedy solutions")
    print(f"    one at a time: {one_tokens / one_s:9.0f} tokens/s  ({one_s:.2f} s)")
    print(f"    batched:       {batch_tokens / batch_s:9.0f} tokens/s  ({batch_s:.2f} s)")
    print(f"    speed-up: {(batch_tokens / batch_s) / (one_tokens / one_s):.1f}x   same texts: {same}")

    prefix = long_prefix(reuse)
    n_prefix = len(reuse.tokenizer(prefix)["input_ids"])
    step = dict(temperature=1.0, max_tokens=16, stop=("\n",))
    children = [GenerationRequest(prefix, SamplingParams(n=1, seed=i, **step)) for i in range(args.children)]
    for generator in (naive, reuse):
        timed(generator, children[:4])  # warm-up
    runs = {}
    t0 = time.perf_counter()
    sequential = [r for child in children for r in naive.generate([child])]
    runs["naive, one call per child"] = (sequential, sum(r.completions[0].n_tokens for r in sequential), time.perf_counter() - t0)
    for name, generator in (("naive, batched", naive), ("prefix reuse", reuse)):
        best = None
        for _ in range(3):
            results, tokens, seconds = timed(generator, children)
            best = seconds if best is None else min(best, seconds)
        runs[name] = (results, tokens, best)
    print(f"(b) {args.children} one-step continuations of a {n_prefix}-token prefix (best of 3)")
    for name, (_, tokens, seconds) in runs.items():
        print(f"    {name:<26} {tokens / seconds:9.0f} tokens/s  ({seconds * 1000:.1f} ms, {tokens} tokens)")
    reused = [r.completions[0].text for r in runs["prefix reuse"][0]]
    for name in ("naive, one call per child", "naive, batched"):
        same = [r.completions[0].text for r in runs[name][0]] == reused
        print(f"    prefix reuse vs {name}: {runs[name][2] / runs['prefix reuse'][2]:.1f}x faster, same texts: {same}")


if __name__ == "__main__":
    main()
