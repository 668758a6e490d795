#!/usr/bin/env bash
# One command: set up (with the browser the report tests need) and run the tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-browser
.venv/bin/python -m pytest "$@"
