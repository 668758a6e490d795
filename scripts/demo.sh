#!/usr/bin/env bash
# One command: set up, grade the demo class into out/, and write the class report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/grader run submissions/* --out out
.venv/bin/grader report out
echo "demo: open out/class-report.html (one report.html per student in out/<student>/)"
