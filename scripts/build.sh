#!/usr/bin/env bash
# Configures and builds arbor into build/ (Release). ARBOR_WERROR=1 turns warnings into errors (CI);
# extra arguments go to cmake (e.g. -DARBOR_CUDA=OFF, -DARBOR_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${ARBOR_BUILD_DIR:-build}
werror=OFF
[ "${ARBOR_WERROR:-0}" = "1" ] && werror=ON
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DARBOR_WERROR=$werror "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
