#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, conformance and end-to-end (real server,
# real python3 workers, the official FC Python SDK). Installs what the tests need first, so it
# works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v python3 >/dev/null || { echo "python3 is required (the python3.x runtimes run on it)" >&2; exit 1; }

# The FC SDK and its dependencies, pinned, in a venv of the repository (gitignored). Reinstalled
# only when the pins change.
req=scripts/python-test-requirements.txt
if [ ! -x .venv/bin/python ] || ! cmp -s "$req" .venv/.installed-requirements; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
  cp "$req" .venv/.installed-requirements
fi
export FNBRIDGE_TEST_PYTHON="$PWD/.venv/bin/python"

if [ "${FNBRIDGE_INSTALL_ONLY:-}" = 1 ]; then
  exit 0
fi

if cargo nextest --version >/dev/null 2>&1; then
  # Two test processes at a time: the end-to-end tests start servers and Python workers.
  cargo nextest run --workspace --no-fail-fast --test-threads 2 "$@"
else
  cargo test --workspace --no-fail-fast -- --test-threads 2 "$@"
fi
