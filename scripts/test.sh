#!/usr/bin/env bash
# The README's test command: install everything, then run the whole test suite on a real
# (embedded) Postgres+pgvector and a real Redis. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
EXTRAS=ml,media,faces,dashboard,dev,tracing VENV="$VENV" scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
