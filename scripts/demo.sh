#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build, run the built-in demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
exec build/arbor demo "$@"  # results/demo
