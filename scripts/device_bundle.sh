#!/usr/bin/env bash
# device_bundle.sh: builds, on this machine, what scripts/device_check.sh runs on a GPU machine, and
# packs it into .device_bundle/bundle.tar.gz (git-ignored; pass `carry: [".device_bundle"]` to the
# device tool). The GPU machine has the CUDA driver, nvcc and cuBLASLt (inside Python's nvidia-*
# wheels) but none of the Debian libraries arbor links (OpenBLAS, Criterion, cJSON, PCRE2, ...), and
# nothing can be installed there: so the binaries travel with those libraries beside them.
# Built for a generic x86-64 CPU (-DARBOR_NATIVE=OFF) and Hopper SASS only (sm_90).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-device
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DARBOR_CUDA=ON -DARBOR_NATIVE=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
cmake --build "$build" --target arbor test_cuda test_cuda_parity test_cuda_train_parity bench_distill_cuda
rm -rf .device_bundle && mkdir -p .device_bundle/pack/bin .device_bundle/pack/lib
cp "$build"/arbor "$build"/test_cuda "$build"/test_cuda_parity "$build"/test_cuda_train_parity "$build"/bench_distill_cuda \
    .device_bundle/pack/bin/
# every shared library the binaries load, except glibc's own, the C++ runtime and the CUDA ones
# (the GPU machine has newer glibc/libstdc++ and its own cuBLASLt and NCCL, in Python's nvidia-* wheels;
# libnccl is 218 MB, past what a device call carries)
for bin in .device_bundle/pack/bin/*; do ldd "$bin"; done | awk '/=> \// {print $3}' | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
        libc.so.*|libm.so.*|libdl.so.*|librt.so.*|libpthread.so.*|libresolv.so.*|ld-linux*|libstdc++.so.*|libgcc_s.so.*) ;;
        libcublas*|libcudart*|libcuda.so*|libnccl*) ;;
        *) cp -L "$lib" .device_bundle/pack/lib/ ;;
    esac
done
# the data the parity tests read (they must not skip there): the Qwen3 tokenizer, and MMLU cut to its dev
# split plus the first 3 test questions of each subject (whole CSV records: fields may hold newlines)
data=${ARBOR_DATA:-$(cd .. && pwd)/shared/data}
if [ -d "$data/mmlu" ] && [ -d "$data/qwen3-tokenizer" ]; then
    mkdir -p .device_bundle/pack/data/mmlu/test
    cp -r "$data/qwen3-tokenizer" .device_bundle/pack/data/
    cp -r "$data/mmlu/dev" .device_bundle/pack/data/mmlu/
    python3 - "$data/mmlu/test" .device_bundle/pack/data/mmlu/test <<'PY'
import csv, glob, os, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.csv")):
    with open(f, newline="") as src:
        rows = [r for _, r in zip(range(3), csv.reader(src))]
    with open(os.path.join(sys.argv[2], os.path.basename(f)), "w", newline="") as dst:
        csv.writer(dst).writerows(rows)
PY
else
    echo "device_bundle: no MMLU/tokenizer data at $data (set ARBOR_DATA): the MMLU parity test will skip there" >&2
fi
tar -C .device_bundle/pack -czf .device_bundle/bundle.tar.gz bin lib $( [ -d .device_bundle/pack/data ] && echo data)
rm -rf .device_bundle/pack
ls -la .device_bundle/bundle.tar.gz
