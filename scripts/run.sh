#!/usr/bin/env bash
# Runs fnbridge on the embedded defaults (API on 127.0.0.1:9000, object store on 9001, state in
# ~/.local/share/fnbridge), after installing the sandbox tools functions run in. Arguments go to
# `fnbridge serve` (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "python3 is required (the python3.x runtimes run on it)" >&2; exit 1; }
source scripts/sandbox-deps.sh
exec cargo run --release -p fnbridge -- serve "$@"
