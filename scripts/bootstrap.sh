#!/usr/bin/env bash
# Creates (or reuses) a virtual environment and installs the project with the given extras.
# Every pip call goes through constraints.txt, which pins torch to the CPU build: an
# unpinned torch (or one pulled in by a dependency) would bring several GB of CUDA wheels.
#   VENV=.venv EXTRAS=ml,media,dev scripts/bootstrap.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
EXTRAS="${EXTRAS:-ml,media}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip -c constraints.txt
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[${EXTRAS}]"
echo "installed are-workers[${EXTRAS}] into ${VENV}"
