#!/usr/bin/env bash
# The GPU checks, on a machine with CUDA whose python3 already has torch:
# grades the reference with the worker allowed on the GPU (so the CUDA tests
# run instead of being skipped) and prints the suite time per category.
# Extra wheels (pydantic and its needs) may be supplied in .whl/.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 CUBLAS_WORKSPACE_CONFIG=:4096:8
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 bench/suite_time.py --gpu --repeat 2
