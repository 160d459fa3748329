#!/usr/bin/env bash
# Quick start, step 2: build and run every test (Criterion suites under ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh "$@"
cd "${ARBOR_BUILD_DIR:-build}"
ctest --output-on-failure -j 2
