#!/usr/bin/env bash
# Create .venv and install the project (used by every Makefile target and by .ci/run).
# A GPU machine whose system Python already has a CUDA build of torch reuses it; anywhere else
# the CPU build of the pinned torch is installed first, so pip never pulls a multi-GB CUDA wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_PIN="${TORCH_PIN:-torch==2.13.0}"

if [ ! -x "$VENV/bin/python" ]; then
  if "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.version.cuda else 1)' 2>/dev/null; then
    echo "setup_env: system torch has CUDA; creating $VENV with system site-packages"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    echo "setup_env: creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
fi
"$VENV/bin/python" -m pip install -q -U pip
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  echo "setup_env: installing $TORCH_PIN (CPU build)"
  "$VENV/bin/python" -m pip install -q "$TORCH_PIN"
fi
"$VENV/bin/python" -m pip install -q -e '.[dev]'
"$VENV/bin/python" -c 'import torch, discover_distill; print(f"setup_env: ok (torch {torch.__version__}, cuda={torch.cuda.is_available()})")'
