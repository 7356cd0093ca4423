"""The quickstart's six searchers on arith test problems with 1 vs 2 Ray workers at 1 thread each.

Both runs use the same config (configs/quickstart.yaml with ``threads: 1`` for the generator and
the reward model and ``batch_size`` problems per batch, so 2 workers get equal shares) on one
local Ray cluster started here; the records must be identical. Prints the wall time of each, the
speed-up, and each worker's start-up cost (process start, imports and building the components,
measured in the worker) and the time until all workers were ready. ``--local`` adds the same job
in this process without Ray (the launcher's own overhead).

    .venv/bin/python benchmarks/ray_scaling.py [--problems 300] [--batch-size 50] [--local]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_search(overrides: list[str], output: Path) -> tuple[float, list[dict], list[dict]]:
    """Run the quickstart with ``overrides`` into ``output``: wall seconds, and per worker its
    start-up and its CPU seconds at the end."""
    import click

    from openr_core.cli import cli
    from openr_core.jobs import load_job_config
    from openr_core.launchers import launcher_of
    from openr_core.runs import Run

    with click.Context(cli) as ctx:
        job, config = load_job_config(str(REPO / "configs" / "quickstart.yaml"), tuple(overrides), None, ctx)
    t0 = time.perf_counter()
    run = Run.start(config, output, fresh=True)
    try:
        job.runner(config, run)
        launcher = launcher_of(run)
        startup = list(getattr(launcher, "startup", []))
        end = launcher.worker_stats() if hasattr(launcher, "worker_stats") else []
    finally:
        run.close()
    return time.perf_counter() - t0, startup, end


def records(output: Path) -> dict[str, list[dict]]:
    return {path.name: [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                        for line in path.read_text().splitlines()]
            for path in sorted((output / "results").glob("*.jsonl"))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--local", action="store_true", help="also run without Ray, in this process")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray

    print(f"load before: {os.getloadavg()[0]:.2f} (1-minute average, {os.cpu_count()} CPUs)")
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", object_store_memory=200 * 2**20)
    print(f"local Ray cluster started in {time.perf_counter() - t0:.1f} s")
    common = [f"limit={args.problems}", f"batch_size={args.batch_size}", "plot=false",
              "generator.threads=1", "reward_model.threads=1"]
    walls, outputs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("local", [])] if args.local else []
        runs += [(f"{w} worker{'s' * (w > 1)}", [f"launcher={{type: ray, workers: {w}, worker_resources: {{CPU: 1}}}}"])
                 for w in (1, 2)]
        for name, launcher in runs:
            outputs[name] = Path(tmp) / name.replace(" ", "-")
            c0 = time.process_time()
            walls[name], startup, end = run_search(common + launcher, outputs[name])
            cpu = sum(e["cpu_seconds"] for e in end) if end else time.process_time() - c0
            print(f"{name:>10}: {walls[name]:7.1f} s wall, {cpu:7.1f} CPU s in the workers "
                  f"(load {os.getloadavg()[0]:.2f} after)")
            for i, (s, e) in enumerate(zip(startup, end)):
                print(f"{'':>12}worker {i}: started and built its components in {s['build_seconds']:.1f} s "
                      f"({s['cpu_seconds']:.1f} CPU s; all workers ready after {s['ready_seconds']:.1f} s), "
                      f"{e['cpu_seconds']:.1f} CPU s in all")
        same = all(records(outputs[name]) == records(outputs["1 worker"]) for name in outputs)
    ray.shutdown()
    print(f"speed-up, 2 vs 1 worker: {walls['1 worker'] / walls['2 workers']:.2f}x   identical records: {same}")
    if args.local:
        print(f"speed-up, 2 workers vs local: {walls['local'] / walls['2 workers']:.2f}x")


if __name__ == "__main__":
    main()
