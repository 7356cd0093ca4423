"""`openr serve` under load: 64 concurrent clients vs the same requests sent one at a time.

Starts `openr serve CONFIG` on 127.0.0.1, sends ``--requests`` chat requests (arith test
questions, searcher and budget per request) first one at a time, then from ``--clients``
concurrent clients (the official openai client, async), and prints p50/p95 latency and
throughput for both, how many requests the server gathered into each search call, and checks
that no request was lost and every concurrent answer equals the one-at-a-time answer. Bounded:
``--requests`` in all and ``--deadline`` seconds per phase (requests not sent by then count as
not sent, never as lost).

    .venv/bin/python benchmarks/serve_load.py [--clients 64] [--requests 128] [--searcher best-of-n] [--n 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import openai

from openr_arith.task import ArithTask

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def send(client, question, args):
    t0 = time.perf_counter()
    reply = await client.chat.completions.create(
        model="openr", messages=[{"role": "user", "content": question}], extra_body={"searcher": args.searcher, "n": args.n})
    return time.perf_counter() - t0, reply


async def phase(base, questions, clients, args) -> dict:
    client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=args.deadline)
    deadline = time.perf_counter() + args.deadline
    out: dict[int, tuple] = {}
    errors: list[str] = []

    async def worker(k):
        for i in range(k, len(questions), clients):
            if time.perf_counter() > deadline:
                return
            try:
                out[i] = await send(client, questions[i], args)
            except openai.OpenAIError as e:
                errors.append(f"{type(e).__name__}: {e}")
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    wall = time.perf_counter() - t0
    await client.close()
    latencies = sorted(lat for lat, _ in out.values())
    sent = len(out) + len(errors)
    return {"sent": sent, "answered": len(out), "errors": errors, "wall": wall,
            "p50": statistics.median(latencies), "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
            "throughput": len(out) / wall, "answers": {i: r.choices[0].message.content for i, (_, r) in out.items()},
            "batched": [r.model_extra["openr"]["batched_with"] for _, r in out.values()],
            "tokens": sum(r.usage.completion_tokens for _, r in out.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "quickstart.yaml"))
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--searcher", default="best-of-n")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds per phase")
    args = parser.parse_args()
    questions = [p.question for p in ArithTask().load("test", args.requests)]
    port = free_port()
    openr = Path(sys.executable).parent / "openr"
    server = subprocess.Popen([str(openr), "serve", args.config, "--port", str(port), "--queue-size", str(2 * args.clients)])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                asyncio.run(phase(base, questions[:1], 1, args))  # also the warm-up
                break
            except (openai.APIConnectionError, statistics.StatisticsError):
                time.sleep(0.5)
        print(f"machine: {os.cpu_count()} cores, load before: {os.getloadavg()[0]:.2f} (uptime: "
              f"{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()})")
        alone = asyncio.run(phase(base, questions, 1, args))
        together = asyncio.run(phase(base, questions, args.clients, args))
        print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    finally:
        server.terminate()
        server.wait(120)
    print(f"{args.requests} requests, searcher {args.searcher} n={args.n}, config {Path(args.config).name}")
    print(f"{'':<18}{'answered':>9}{'errors':>7}{'p50 s':>8}{'p95 s':>8}{'req/s':>8}{'wall s':>8}{'per call':>9}")
    for name, r in (("one at a time", alone), (f"{args.clients} clients", together)):
        print(f"{name:<18}{r['answered']:>9}{len(r['errors']):>7}{r['p50']:>8.2f}{r['p95']:>8.2f}{r['throughput']:>8.2f}"
              f"{r['wall']:>8.1f}{statistics.mean(r['batched']):>9.1f}")
    print(f"throughput ratio: {together['throughput'] / alone['throughput']:.1f}x")
    lost = args.requests - together["answered"] - len(together["errors"])
    both = [i for i in together["answers"] if i in alone["answers"]]
    same = sum(together["answers"][i] == alone["answers"][i] for i in both)
    print(f"one at a time: {alone['answered']}/{args.requests} answered before the {args.deadline:.0f} s deadline; "
          f"concurrent: {together['answered']}/{args.requests} answered, {len(together['errors'])} errors "
          f"{together['errors'][:3]}, {lost} unanswered; concurrent answers equal to one-at-a-time: {same}/{len(both)}")


if __name__ == "__main__":
    main()
