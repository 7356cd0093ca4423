"""What matching stop strings on decoded text costs the transformers generator.

A Llama-3-style BPE replica (``openr_transformers.replicas``, trained here in ~10 s) samples
the same rows (same seeds, so the same tokens) without stop strings and with a stop string it
never writes but whose last character is a newline, so every token holding a newline makes its
row decode its tail: the text path's work at a ``"\\n\\n"`` step separator without the rows
ending early. Best of ``--repeats``, the two runs alternating.

    .venv/bin/python benchmarks/stop_strings.py [--rows 256] [--tokens 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from openr_core import GenerationRequest, SamplingParams
from openr_transformers import replicas
from openr_transformers.generator import TransformersGenerator


def interleaved(generator, runs: dict, repeats: int):
    """Best time of each run, the runs alternating (the machine's load drifts between them)."""
    seconds, results = {}, {}
    for _ in range(repeats):
        for name, requests in runs.items():
            t0 = time.perf_counter()
            results[name] = generator.generate(requests)
            elapsed = time.perf_counter() - t0
            seconds[name] = min(elapsed, seconds.get(name, elapsed))
    return results, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        generator = TransformersGenerator(model=str(replicas.step_policy(folder)), kv_cache_mb=0)
    prompts = [p for p, _ in replicas.solutions(args.rows // 8, seed=1)]

    def requests(stop):
        return [GenerationRequest(p, SamplingParams(n=8, temperature=1.0, max_tokens=args.tokens, seed=i, stop=stop))
                for i, p in enumerate(prompts)]

    generator.generate(requests(("#\n\n",))[:2])  # warm-up (and the tokenizer's table)
    results, seconds = interleaved(generator, {"plain": requests(()), "text": requests(("#\n\n",))}, args.repeats)
    (plain, plain_s), (text, text_s) = (results["plain"], seconds["plain"]), (results["text"], seconds["text"])
    tokens = sum(c.n_tokens for r in plain for c in r.completions)
    same = [c.text for r in plain for c in r.completions] == [c.text for r in text for c in r.completions]
    newlines = sum(c.text.count("\n") for r in plain for c in r.completions)
    print(f"{args.rows} rows x {args.tokens} tokens ({tokens} tokens, {newlines} newlines), best of {args.repeats}")
    print(f"    no stop strings:        {tokens / plain_s:9.0f} tokens/s  ({plain_s * 1000:.0f} ms)")
    print(f"    stop matched on text:   {tokens / text_s:9.0f} tokens/s  ({text_s * 1000:.0f} ms)"
          f"   cost {100 * (text_s / plain_s - 1):+.1f} %, same texts: {same}")


if __name__ == "__main__":
    main()
