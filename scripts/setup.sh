#!/usr/bin/env bash
# Idempotent set-up: a local virtualenv with the CPU torch wheel pinned first, then camworld.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, camworld" >/dev/null 2>&1 || [ pyproject.toml -nt .venv/.camworld-installed ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
  # The torch pin must come first: an unpinned torch would pull a multi-GB CUDA build.
  .venv/bin/pip install -q "torch==2.13.0"
  .venv/bin/pip install -q -e ".[dev]"
  touch .venv/.camworld-installed
fi
