"""Best-of-16 on arith test problems: what the `vllm` generator (and the best-of-n searcher on top
of it) costs beyond calling ``vllm.LLM.generate`` directly with the same requests.

One engine serves all three; the prefix cache is emptied before every timed run, the runs
alternate, and each figure is the best of ``--repeats``.

    .venv/bin/python benchmarks/vllm_overhead.py [--problems 300] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

from openr_arith.task import ArithTask
from openr_arith.truth import ArithOracle
from openr_core import GenerationRequest
from openr_search.common import Round, SearchConfig
from openr_search.sampling import BestOfN
from openr_vllm.generator import VLLMGenerator, sampling_params, to_completion

POLICY = "pkg:openr_arith/models/policy"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="vLLM CPU cores (CPU backend)")
    args = parser.parse_args()
    import vllm

    task = ArithTask()
    problems = task.load("test", args.problems)
    t0 = time.perf_counter()
    generator = VLLMGenerator(model=POLICY, enforce_eager=True, block_size=32,
                              cpu_threads=",".join(str(i) for i in range(args.threads)))
    print(f"engine start-up: {time.perf_counter() - t0:.1f} s")
    searcher = BestOfN(n=args.n)
    # exactly the requests best-of-n sends (Round.sample builds them), once as openr requests ...
    captured: list[list[GenerationRequest]] = []

    class Capture:
        def generate(self, requests):
            captured.append(list(requests))
            return generator.generate(requests)

    Round(problems, task, Capture(), None, SearchConfig(n=args.n)).sample(range(len(problems)), args.n, 1.0)
    requests = captured[0]
    # ... and once as vLLM's own prompts and SamplingParams
    prompts = [r.prompt for r in requests]
    params = [sampling_params(vllm, r) for r in requests]

    def direct():
        return generator.llm.generate(prompts, params, use_tqdm=False)

    def ours():
        return generator.generate(requests)

    def search():
        return searcher.search(problems, task=task, generator=generator, reward_model=ArithOracle())

    runs = {"vllm.LLM.generate": direct, "VLLMGenerator.generate": ours, "best-of-n searcher": search}
    best = dict.fromkeys(runs, float("inf"))
    outputs = {}
    direct()  # warm-up
    for _ in range(args.repeats):
        for name, fn in runs.items():
            generator.llm.reset_prefix_cache()
            t0 = time.perf_counter()
            outputs[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    tokens = sum(len(c.token_ids) for out in outputs["vllm.LLM.generate"] for c in out.outputs)
    lengths = [[len(c.token_ids) for c in sorted(o.outputs, key=lambda c: c.index)] for o in outputs["vllm.LLM.generate"]]
    same = lengths == [[c.n_tokens for c in r.completions] for r in outputs["VLLMGenerator.generate"]]
    # the framework's own work, timed alone (load on the machine barely moves it): building the
    # SamplingParams and turning vLLM's outputs into Completions (decode, stop strings)
    t0 = time.perf_counter()
    [sampling_params(vllm, r) for r in requests]
    for request, out in zip(requests, outputs["vllm.LLM.generate"]):
        [to_completion(o, generator.tokenizer, request.params.stop, request.params.logprobs) for o in out.outputs]
    own = time.perf_counter() - t0
    accuracy = sum(r.answer is not None and task.answers_match(p, r.answer)
                   for p, r in zip(problems, outputs["best-of-n searcher"])) / len(problems)
    print(f"best-of-{args.n} on {len(problems)} problems: {tokens} tokens "
          f"same sample lengths through both: {same}); best of {args.repeats}")
    base = best["vllm.LLM.generate"]
    for name, seconds in best.items():
        print(f"    {name:<24} {seconds:7.2f} s  {tokens / seconds:8.0f} tokens/s  overhead {100 * (seconds / base - 1):+5.1f} %")
    print(f"    framework work alone: {own:.2f} s = {100 * own / base:.1f} % of the direct call")
    print(f"    best-of-{args.n} accuracy with the arith oracle: {accuracy:.3f}")
    generator.close()


if __name__ == "__main__":
    main()
