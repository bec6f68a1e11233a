#!/usr/bin/env bash
# The test command (README, .ci/run): create or reuse .venv, then run the test suite.
#   bash tools/run_tests.sh [pytest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/install.sh
# Two pytest workers (pytest-xdist), one thread each: most tests are single-threaded, so
# this uses both cores. Tests are handed out one by one (the long training tests of one file
# run on both workers; a module fixture may then be built once per worker, except for the
# modules marked pytest.mark.xdist_group, whose tests stay on one worker: --dist loadgroup).
WORKERS="${PYTEST_WORKERS:-2}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MPLBACKEND=Agg PYTHONUNBUFFERED=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "$WORKERS" --dist loadgroup "$@" tests
