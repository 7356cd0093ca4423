#!/usr/bin/env bash
# Set up .venv from nothing (idempotent): torch's CPU wheel first, then core and every plugin, editable.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# Re-install only when a pyproject.toml or this script changed.
want=$(cat pyproject.toml plugins/*/pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.openr-setup 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setting up .venv (torch CPU wheel first, then openr-core and plugins)" >&2
pip=".venv/bin/python -m pip"
$pip install --quiet --disable-pip-version-check torch==2.13.0
editables=(-e ".[test]")
for plugin in plugins/*/; do
  editables+=(-e "${plugin%/}")
done
$pip install --quiet --disable-pip-version-check "${editables[@]}"
echo "$want" > .venv/.openr-setup
