#!/usr/bin/env bash
# The README's run command: install the worker with its AI extras, then run the main job
# (the resume → shortlist pipeline) on the embedded Postgres+pgvector and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
EXTRAS=ml,media,faces VENV="$VENV" scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$VENV/bin/are-workers" db upgrade
exec "$VENV/bin/are-workers" demo "$@"
