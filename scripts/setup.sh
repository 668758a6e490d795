#!/usr/bin/env bash
# Set up this project on a fresh machine: system packages (bubblewrap for the
# sandbox; Chromium for the report tests when --with-browser), then .venv/ with
# the grader and its dependencies. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

with_browser=0
for arg in "$@"; do
  case "$arg" in
    --with-browser) with_browser=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
# libseccomp compiles the sandbox's seccomp filter (through the pyseccomp binding in .venv)
{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -q 'libseccomp\.so\.2' || need+=(libseccomp2)
if [ "$with_browser" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
fi
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]})" >&2
    if [[ " ${need[*]} " == *" bubblewrap "* ]]; then
      echo "setup: without bubblewrap the grader runs student code with process isolation only, and says so in every result" >&2
    fi
    [ "$with_browser" = 1 ] && exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
extras="test"
[ "${GRADER_CLUSTER:-1}" = 1 ] && extras="test,cluster"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e ".[${extras}]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, torchvision, grader" || { echo "setup: the install failed" >&2; exit 1; }
echo "setup: ready (.venv/bin/grader)"
