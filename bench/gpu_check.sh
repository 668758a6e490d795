#!/usr/bin/env bash
# The GPU checks, on a machine with CUDA whose python3 already has torch:
#  1. the sandbox on the GPU (bench/sandbox_gpu_check.py): the worker sees CUDA,
#     imports the reference's files, is bounded in host memory;
#  2. the hidden suite on the reference with the worker allowed on the GPU, so the
#     CUDA tests run instead of being skipped (bench/suite_time.py --gpu);
#  3. the audit of the GPU-only corpus case and a right case of the same class;
#  4. `grader run` on the demo class, which decides on its own to use the GPU;
#  5. the project's GPU tests (pytest -m gpu), which assert what 2 and 3 print.
# Logs go to $OUT (or /tmp/gpu-check). Extra wheels (pydantic and its needs)
# may be supplied in .whl/.
set -uo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 CUBLAS_WORKSPACE_CONFIG=:4096:8
logs="${OUT:-/tmp/gpu-check}"
mkdir -p "$logs"
status=0
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  echo "=== $name"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$logs/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc in $((SECONDS - t0)) s"
  [ "$rc" = 0 ] || status=1
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
step sandbox 120 python3 bench/sandbox_gpu_check.py
step suite 240 python3 bench/suite_time.py --gpu --repeat 2
step audit 120 python3 -m grader audit --case wrong/training_gpu_timing_no_sync --case right/training_other_loop
step demo 150 python3 -m grader run submissions --out /tmp/gpu-demo
cp /tmp/gpu-demo/alice/grading.json "$logs/alice-grading.json" 2>/dev/null || true
step pytest-gpu 300 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py
exit $status
