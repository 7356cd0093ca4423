"""Hold reward-model presets against the real checkpoints (run by scripts/gpu-check.sh).

For each preset: (1) parity: the preset and its model card's reference code
(plugins/prm/tests/prm_cards.py, the same code the replica tests compare with) score the first
``--parity`` ProcessBench GSM8K samples in float32; the largest difference must stay under 1e-3.
(2) ProcessBench: ``openr run configs/models/<preset>.yaml`` (bfloat16), which prints F1 per subset.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "prm" / "tests"))

import prm_cards  # noqa: E402

CARDS = {
    "math-shepherd-mistral-7b-prm": lambda path, q, steps, rm: prm_cards.math_shepherd_card(path, q, steps)[0],
    "qwen2.5-math-prm-7b": lambda path, q, steps, rm: prm_cards.qwen_prm_card(path, q, steps),
    "qwen2.5-math-prm-72b": lambda path, q, steps, rm: prm_cards.qwen_prm_card(path, q, steps),
    "rlhflow-llama3.1-8b-prm-deepseek-data": lambda path, q, steps, rm: prm_cards.rlhflow_card(path, q, steps),
    "skywork-o1-open-prm-qwen-2.5-7b": lambda path, q, steps, rm: prm_cards.skywork_card(path, q, steps),
    "eurus-prm-stage2": lambda path, q, steps, rm: prm_cards.eurus_card(path, rm["reference"], q, steps, rm["beta"]),
}


def parity(preset: str, n: int, data: str, model: str | None = None) -> float:
    from openr_core import Problem, ScoreRequest
    from openr_prm import models
    from openr_prm.data import load_stepwise

    section = dict(yaml.safe_load((ROOT / "configs" / "models" / f"{preset}.yaml").read_text())["reward_model"])
    section.update({"model": model} if model else {})
    kind = section.pop("type")
    cls = {"lm-head-prm": models.LMHeadPRM, "classifier-prm": models.ClassifierPRM, "outcome-rm": models.OutcomeRM,
           "implicit-prm": models.ImplicitPRM}[kind]
    rm = cls(**{**section, "dtype": "float32", "batch_size": 1})
    examples = load_stepwise(data, "processbench", n)
    worst = 0.0
    for i, e in enumerate(examples):
        ours = rm.score([ScoreRequest(Problem(str(i), e.prompt), e.completions)])[0].scores
        card = CARDS[preset](section["model"], e.prompt, list(e.completions), section)
        if len(ours) != len(card):
            sys.exit(f"{preset}: sample {i}: {len(ours)} scores, the card gives {len(card)}")
        worst = max(worst, max(abs(a - b) for a, b in zip(ours, card)))
    rm.close()
    return worst


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("presets", nargs="*", default=["qwen2.5-math-prm-7b", "math-shepherd-mistral-7b-prm"])
    parser.add_argument("--parity", type=int, default=20, help="samples for the card-parity check (0: skip)")
    parser.add_argument("--parity-data", default="hub:Qwen/ProcessBench/gsm8k", help="ProcessBench file for the parity check")
    parser.add_argument("--model", help="a local copy of the (single) preset's checkpoint")
    parser.add_argument("--limit", type=int, default=None,
                        help="first N samples per subset (ProcessBench lists erroneous samples first; default: all)")
    parser.add_argument("--out", default="runs/gpu-check")
    args = parser.parse_args()
    failed = False
    for preset in args.presets:
        if args.parity and preset in CARDS:
            worst = parity(preset, args.parity, args.parity_data, args.model)
            ok = worst < 1e-3
            failed |= not ok
            print(f"{preset}: card parity on {args.parity} samples: max |difference| {worst:.2e} {'ok' if ok else 'FAIL'}",
                  flush=True)
        command = [str(Path(sys.executable).parent / "openr"), "run", f"configs/models/{preset}.yaml", "-o", f"{args.out}/{preset}"]
        if args.model:
            command += ["--set", f"reward_model.model={args.model}"]
        if args.limit:
            command += ["--set", f"limit={args.limit}"]
        failed |= subprocess.run(command, cwd=ROOT).returncode != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
