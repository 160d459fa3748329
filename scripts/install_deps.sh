#!/usr/bin/env bash
# Installs the Debian packages arbor needs to build and test. Idempotent: installs only what is
# missing. CUDA is optional and not installed here (the build uses nvcc when it finds one).
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config libopenblas-openmp-dev libcjson-dev libcriterion-dev
  libpcre2-dev libutf8proc-dev libcsv-dev libinih-dev libxxhash-dev libglpk-dev gnuplot-nox
  texlive-latex-base clang libclang-rt-14-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
