"""Plot evaluation accuracy against rollouts for several RL runs (their train_log.jsonl).

    python -m openr_rl.curves runs/grpo-outcome runs/grpo-prm runs/ppo -o docs/rl-curves.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from openr_core.jsonl import read_jsonl


def eval_curve(run_dir: str | Path) -> tuple[str, list[tuple[int, float]]]:
    """(metric name, [(rollouts, accuracy), ...]) from a run's evaluation records."""
    points, metric = [], None
    for record in read_jsonl(Path(run_dir) / "train_log.jsonl"):
        if "loss" in record:  # an update line, not an evaluation line
            continue
        key = next((k for k in record if k.endswith("_accuracy")), None)
        if key:
            metric = key
            points.append((record["rollouts"], record[key]))
    return metric or "accuracy", points


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("-o", "--output", default="rl-curves.png")
    parser.add_argument("--title", default="greedy accuracy vs rollouts")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for run in args.runs:
        metric, points = eval_curve(run)
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=Path(run).name)
            print(f"{Path(run).name}: " + ", ".join(f"{r}:{a:.3f}" for r, a in points))
    ax.set_xlabel("rollouts")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
