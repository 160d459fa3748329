#!/usr/bin/env bash
# Quick start, step 2: build and run every test (Criterion suites under ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh "$@"
data=${ARBOR_DATA:-$(cd .. && pwd)/shared/data}
if [ -d "$data/mmlu" ] && [ -d "$data/qwen3-tokenizer" ]; then
  echo "test data: $data"
else
  echo "test data: not found at $data (set ARBOR_DATA): tokenizer, MMLU and corpus tests will skip"
fi
# every parser under libFuzzer for a few seconds each (skipped, saying why, without clang)
scripts/fuzz_smoke.sh "${ARBOR_FUZZ_SECONDS:-12}"
cd "${ARBOR_BUILD_DIR:-build}"
ctest --output-on-failure -j 2
