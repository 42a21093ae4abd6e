#!/usr/bin/env bash
# Set up (idempotent), lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
# one worker per CPU core; tests that share a module fixture stay together where they say so (xdist_group)
.venv/bin/python -m pytest -q -p no:cacheprovider -n auto --dist loadgroup "$@"
