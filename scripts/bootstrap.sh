#!/usr/bin/env bash
# Creates (or reuses) a virtual environment and installs the project with the given extras,
# plus "embedded" (the embedded Postgres and Redis the demo and the tests run on; set
# EMBEDDED=0 to leave it out, as production images do).
# Every pip call goes through constraints.txt, which pins torch to the CPU build: an
# unpinned torch (or one pulled in by a dependency) would bring several GB of CUDA wheels.
# An extra with a file requirements-nodeps/EXTRA.txt also gets that file installed with
# --no-deps (a package whose declared dependencies clash with ours: MediaPipe for "faces").
#   VENV=.venv EXTRAS=ml,media,faces,dashboard,dev,tracing scripts/bootstrap.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
EXTRAS="${EXTRAS:-ml,media,faces}"
if [ "${EMBEDDED:-1}" != 0 ] && [[ ",${EXTRAS}," != *,embedded,* ]]; then
  EXTRAS="embedded,${EXTRAS}"
fi
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip -c constraints.txt
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[${EXTRAS}]"
IFS=, read -ra WANTED <<< "$EXTRAS"
for extra in "${WANTED[@]}"; do
  if [ -f "requirements-nodeps/${extra}.txt" ]; then
    "$VENV/bin/python" -m pip install --quiet --no-deps -c constraints.txt \
      -r "requirements-nodeps/${extra}.txt"
  fi
done
echo "installed are-workers[${EXTRAS}] into ${VENV}"
