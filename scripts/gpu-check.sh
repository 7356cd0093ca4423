#!/usr/bin/env bash
# Hold the reward-model presets (configs/models/) against the real checkpoints: needs a GPU, hub
# access and `scripts/setup.sh`. For each preset: the preset and its model card's reference code
# score 20 ProcessBench samples (float32; must agree to 1e-3), then ProcessBench F1 per subset
# (bfloat16), to compare with the ProcessBench paper's Table 3 (arXiv 2412.06559) and, for
# Qwen2.5-Math-PRM, arXiv 2501.07301. Never run on our CPU machines (no GPU, no hub).
#   scripts/gpu-check.sh                                   # Qwen2.5-Math-PRM-7B and Math-Shepherd, all samples
#   scripts/gpu-check.sh --limit 100 skywork-o1-open-prm-qwen-2.5-7b eurus-prm-stage2
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/gpu_check.py "$@"
