#!/usr/bin/env bash
# device_check.sh: the GPU check of the CUDA backend, run from the repository root on a machine with an
# NVIDIA GPU. Prepare here with scripts/device_bundle.sh (binaries, their Debian libraries, and the
# small MMLU/tokenizer data the parity tests need), then (the device tool):
#   run(command="bash scripts/device_check.sh", carry=[".device_bundle"], timeout_s=540)
# Steps, each with its own time limit (they sum to 410 s, so a hung step costs only its slot):
#   test_cuda, test_cuda_parity, test_cuda_train_parity (stops early when the backend is broken);
#   arbor bench --device cuda --ceilings: qwen3-8b (batch 1, 2048-token prompt; and decode through
#   cuBLASLt beside arbor's GEMV), the depth-pruned 24-layer 8B and qwen3-4b at batch 1, 64, 256 with
#   short (128) and long (2048) contexts, where the throughput model says the 6B/4B ratio is decided;
#   bench_distill_cuda 4B -> 1.7B.
# Everything lands in one $OUT/results.tgz; a summary of at most 3,000 characters is printed last.
# Dry run (no GPU; CI does this): ARBOR_DEVICE_BIN=build ARBOR_DATA=... with a fake nvidia-smi on PATH.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/arbor_device_out}
mkdir -p "$OUT"
logs=$(mktemp -d)/results
mkdir -p "$logs"
summary="$logs/summary.txt"
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }
finish() {  # pack every log, then print the summary last
    tar -C "$(dirname "$logs")" -czf "$OUT/results.tgz" results
    echo
    echo "===== device_check summary ($(wc -c <"$summary") chars; logs in results.tgz) ====="
    head -c 3000 "$summary"
    exit "$1"
}

if [ -n "${ARBOR_DEVICE_BIN:-}" ]; then  # dry run: binaries of a local build
    bin=$ARBOR_DEVICE_BIN
    export ARBOR_DATA=${ARBOR_DATA:-$PWD/../shared/data}
else
    root=/tmp/arbor_device
    rm -rf "$root" && mkdir -p "$root"
    if [ ! -f .device_bundle/bundle.tar.gz ]; then
        echo "device_check: .device_bundle/bundle.tar.gz missing: run scripts/device_bundle.sh here and carry .device_bundle" >&2
        exit 2
    fi
    tar -C "$root" -xzf .device_bundle/bundle.tar.gz
    bin="$root/bin"
    export ARBOR_DATA="$root/data"
    # cuBLASLt: the toolkit's, else the one inside Python's nvidia-* wheels
    lt=$( (ls /usr/local/cuda*/lib64/libcublasLt.so.13* /usr/local/cuda*/targets/x86_64-linux/lib/libcublasLt.so.13* 2>/dev/null;
           python3 -c 'import site,glob
for d in site.getsitepackages(): print("\n".join(glob.glob(d + "/nvidia/**/libcublasLt.so.13*", recursive=True)))' 2>/dev/null) | head -1)
    if [ -z "$lt" ]; then say "device_check: libcublasLt.so.13 not found"; finish 1; fi
    export LD_LIBRARY_PATH="$root/lib:$(dirname "$lt")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "cuBLASLt: $lt"
fi
export ARBOR_FIXTURES="$PWD/tests/fixtures" OMP_NUM_THREADS=${OMP_NUM_THREADS:-16}
command -v nvidia-smi >/dev/null || { echo "device_check: no nvidia-smi here: not a GPU machine" >&2; exit 2; }
say "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
status=0

suite() {  # name, time limit: runs a Criterion suite, one summary line (and its first failure)
    local name=$1 limit=$2 log="$logs/$1.log"
    timeout "$limit" "$bin/$name" --verbose --jobs 1 >"$log" 2>&1
    local rc=$?
    local synth
    synth=$(grep -o "Tested: .*" "$log" | tail -1)
    local skipped
    skipped=$(grep -c "^\[SKIP\]" "$log")
    if [ "$rc" -eq 124 ]; then synth="TIMED OUT after ${limit} s; $synth"; fi
    say "$name: rc $rc; ${synth:-no synthesis}; skipped $skipped"
    if [ "$rc" -ne 0 ]; then
        say "  first failure: $(grep -m1 -A2 -E "Assertion Failed|\[FAIL\]|CRASH|Aborted|error" "$log" | tr -s ' \n' ' ' | cut -c1-300)"
        status=1
    fi
    return "$rc"
}
suite test_cuda 15
if ! suite test_cuda_parity 75; then
    tested=$(grep -o "Tested: [0-9]*" "$logs/test_cuda_parity.log" | tail -1 | grep -o "[0-9]*")
    failing=$(grep -o "Failing: [0-9]*" "$logs/test_cuda_parity.log" | tail -1 | grep -o "[0-9]*")
    if [ -z "$tested" ] || [ "${failing:-0}" -ge $(( (${tested:-0} + 1) / 2 )) ]; then
        say "stopped early: most of test_cuda_parity fails, the backend is broken; fix that before benchmarking"
        finish 1
    fi
fi
suite test_cuda_train_parity 75

bench() {  # limit, label, then arbor bench options; rows go to one CSV
    local limit=$1 label=$2
    shift 2
    timeout "$limit" "$bin/arbor" bench --device cuda --ceilings --label "$label" "$@" --csv "$logs/bench_$label.csv" \
        >>"$logs/bench.out" 2>>"$logs/bench.log"
    local rc=$?
    if [ $rc -ne 0 ]; then
        say "bench $label $*: rc $rc: $(tail -1 "$logs/bench.log" | cut -c1-200)"
        status=1
    fi
}
bench 30 qwen3-8b --arch qwen3-8b --batch 1 --prompt-len 2048 --gen-len 64
bench 20 qwen3-8b-cublas --arch qwen3-8b --batch 1 --prompt-len 128 --gen-len 64 --cublas-only
bench 30 qwen3-8b-depth24-short --arch qwen3-8b --layers 24 --batch 1,64,256 --prompt-len 128 --gen-len 32
bench 40 qwen3-8b-depth24-long --arch qwen3-8b --layers 24 --batch 1,64,256 --prompt-len 2048 --gen-len 32
bench 30 qwen3-4b-short --arch qwen3-4b --batch 1,64,256 --prompt-len 128 --gen-len 32
bench 40 qwen3-4b-long --arch qwen3-4b --batch 1,64,256 --prompt-len 2048 --gen-len 32
timeout 55 "$bin/bench_distill_cuda" qwen3-4b qwen3-1.7b --batch 4 --seq 1024 --steps 5 --csv "$logs/distill_4b_17b.csv" \
    >"$logs/distill.log" 2>&1 || { say "bench_distill_cuda 4B -> 1.7B: rc $?: $(tail -1 "$logs/distill.log" | cut -c1-200)"; status=1; }

python3 - "$logs" >>"$summary" 2>&1 <<'PY'
import csv, glob, os, sys
d = sys.argv[1]
rows = []
for f in sorted(glob.glob(d + "/bench_*.csv")):
    rows += list(csv.DictReader(open(f)))
if rows:
    r0 = rows[0]
    print(f"ceilings: copy {float(r0['copy_gbs']):.0f} GB/s, bf16 GEMM {float(r0['gemm_tflops']):.0f} TFLOP/s")
    print(f"{'model':22} {'b':>3} {'ctx':>4} | {'prefill t/s':>11} {'%gemm':>5} {'%floor':>6} | {'decode t/s':>10} {'%copy':>5} {'%floor':>6}")
    for r in rows:
        print(f"{r['model'][:22]:22} {r['batch']:>3} {r['prompt_len']:>4} | {float(r['prefill_tokens_per_s']):11.0f} "
              f"{100*float(r['prefill_fraction_of_gemm']):4.0f}% {100*float(r['prefill_fraction_of_floor']):5.0f}% | "
              f"{float(r['decode_tokens_per_s']):10.1f} {100*float(r['decode_fraction_of_copy']):4.0f}% "
              f"{100*float(r['decode_fraction_of_floor']):5.0f}%")
    key = {(r['model'].replace('-short', '').replace('-long', ''), r['batch'], r['prompt_len']): r for r in rows}
    a, c = key.get(("qwen3-8b", "1", "2048")), key.get(("qwen3-8b-cublas", "1", "128"))
    if a and c:
        print(f"8B batch-1 decode: GEMV {float(a['decode_tokens_per_s']):.1f} vs cuBLASLt {float(c['decode_tokens_per_s']):.1f} tok/s")
    print("depth-24 8B / qwen3-4b, decode (prefill):")
    for b in ("1", "64", "256"):
        for ctx in ("128", "2048"):
            x, y = key.get(("qwen3-8b-depth24", b, ctx)), key.get(("qwen3-4b", b, ctx))
            if x and y:
                print(f"  batch {b:>3} ctx {ctx:>4}: {float(x['decode_tokens_per_s'])/float(y['decode_tokens_per_s']):.2f}x "
                      f"({float(x['prefill_tokens_per_s'])/float(y['prefill_tokens_per_s']):.2f}x)")
else:
    print("bench: no rows")
for f in sorted(glob.glob(d + "/distill_*.csv")):
    for r in csv.DictReader(open(f)):
        print(f"distill {r['teacher']} -> {r['student']} {r['batch']}x{r['seq']}: {float(r['tokens_per_s']):.0f} tok/s, "
              f"MFU {100*float(r['mfu']):.0f}%, peak {float(r['peak_gb']):.0f} GB, 90B tokens = {float(r['gpu_hours_90b']):.0f} GPU-h")
PY
say "overall status $status"
finish "$status"
