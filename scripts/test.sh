#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, conformance and end-to-end (real server,
# real python3 workers, the official FC Python SDK). Installs what the tests need first, so it
# works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v python3 >/dev/null || { echo "python3 is required (the python3.x runtimes run on it)" >&2; exit 1; }

# Function instances run in a sandbox: install its tools first (needs root, as CI has).
source scripts/sandbox-deps.sh

# The real clients and SDKs the end-to-end tests drive, pinned in scripts/test-requirements.txt,
# in one venv (target/test-venv); reinstalled only when the pins change.
req=scripts/test-requirements.txt
venv=target/test-venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/.requirements"; then
  python3 -m venv "$venv" || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q python3-venv && python3 -m venv "$venv"
  }
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  # Pins whose declared dependencies conflict with the ones above (see the file's comments).
  nodeps=$(sed -n 's/^# nodeps: //p' "$req")
  if [ -n "$nodeps" ]; then
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps $nodeps
  fi
  cp "$req" "$venv/.requirements"
fi
export FNBRIDGE_TEST_PYTHON="$PWD/$venv/bin/python"
# The Debian AWS CLI (`aws s3`), as users of the distribution have it.
if ! command -v aws >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q awscli || echo "awscli could not be installed; its test is skipped" >&2
fi

if [ "${FNBRIDGE_INSTALL_ONLY:-}" = 1 ]; then
  exit 0
fi

if cargo nextest --version >/dev/null 2>&1; then
  # Two test processes at a time: the end-to-end tests start servers and Python workers.
  cargo nextest run --workspace --no-fail-fast --test-threads 2 "$@"
else
  cargo test --workspace --no-fail-fast -- --test-threads 2 "$@"
fi
