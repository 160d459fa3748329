#!/usr/bin/env bash
# device_check.sh PART: the GPU check of the CUDA backend in two parts that each stand alone, run from the
# repository root on a machine with an NVIDIA GPU. Prepare here with scripts/device_bundle.sh (binaries,
# their Debian libraries, and the small MMLU/tokenizer data the parity tests need), then (the device tool):
#   run(command="bash scripts/device_check.sh correctness", carry=[".device_bundle"], timeout_s=240)
#   run(command="bash scripts/device_check.sh bench", carry=[".device_bundle"], timeout_s=300)
# correctness: test_cuda, test_cuda_parity, test_cuda_train_parity, with CUDA_LAUNCH_BLOCKING=1 (a fault
#   is reported at its own launch); per-step limits sum to 165 s.
# bench: arbor bench --device cuda --ceilings: qwen3-8b at batch 1 with a 2,048-token prompt, through
#   arbor's GEMV and through cuBLASLt with the same settings; the depth-pruned 24-layer 8B and qwen3-4b
#   over the grid the GPU found allows (H100 80 GB: batch 1, 64, 128; H200 141 GB: 1, 64, 256) at
#   contexts 128 and 2,048 (where the throughput model says the 6B/4B ratio is decided), each prefill in
#   bounded chunks, a cell that does not fit skipped with a row saying why, every row on disk as it is
#   measured; bench_distill_cuda 4B -> 1.7B. Per-step limits sum to 240 s.
# Each part packs its logs into $OUT/results-PART.tgz (also when killed: a trap packs what there is) and
# prints a summary of at most 3,000 characters last.
# Dry run (no GPU; CI does this): ARBOR_DEVICE_BIN=build ARBOR_DATA=... with a fake nvidia-smi on PATH.
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:-}
case "$part" in
    correctness|bench) ;;
    *) echo "usage: scripts/device_check.sh correctness|bench" >&2; exit 2 ;;
esac
OUT=${OUT:-/tmp/arbor_device_out}
mkdir -p "$OUT"
logs=$(mktemp -d)/results
mkdir -p "$logs"
summary="$logs/summary.txt"
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }
pack() {  # the logs so far into $OUT/results-PART.tgz, replaced whole (after every step: even a SIGKILL
          # leaves the archive of the steps before it)
    tar -C "$(dirname "$logs")" -czf "$OUT/.results-$part.tgz.tmp" results && mv "$OUT/.results-$part.tgz.tmp" "$OUT/results-$part.tgz"
}
finish() {  # pack every log, then print the summary last
    trap - TERM INT HUP
    pack
    echo
    echo "===== device_check $part summary ($(wc -c <"$summary") chars; logs in results-$part.tgz) ====="
    head -c 3000 "$summary"
    exit "$1"
}
# the device tool kills a command that runs past its limit: the logs so far still come back. Each step
# runs in the background under `wait`, which a signal interrupts at once (a foreground child would
# delay the trap until it ended), and the trap stops the step (its `timeout`, in its own process group).
child=""
step=setup
run_step() {
    "$@" &
    child=$!
    wait "$child"
    local rc=$?
    child=""
    return "$rc"
}
exec 3>&1 4>&2  # the script's own stdout and stderr: a trap fires inside a step's redirections
on_signal() {
    exec 1>&3 2>&4
    if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; fi
    say "killed (signal) during: $step"
    finish 3
}
trap on_signal TERM INT HUP

# arbor's processes, and only they, see the libraries the bundle ships (python3, tar and grep keep the
# machine's own)
arbor_libs=""
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
           timeout -k 2 20 python3 -c 'import site,glob
for d in site.getsitepackages(): print("\n".join(glob.glob(d + "/nvidia/**/libcublasLt.so.13*", recursive=True)))' 2>/dev/null) | head -1)
    if [ -z "$lt" ]; then say "device_check: libcublasLt.so.13 not found"; finish 1; fi
    # NCCL (linked for data parallel; one GPU here): the toolkit's, else the nvidia-nccl wheel's
    nccl=$( (ls /usr/local/cuda*/lib64/libnccl.so.2* /usr/local/cuda*/lib/libnccl.so.2* 2>/dev/null;
             timeout -k 2 20 python3 -c 'import site,glob
for d in site.getsitepackages(): print("\n".join(glob.glob(d + "/nvidia/nccl/lib/libnccl.so.2*")))' 2>/dev/null) | head -1)
    if [ -z "$nccl" ]; then say "device_check: libnccl.so.2 not found"; finish 1; fi
    arbor_libs="$root/lib:$(dirname "$lt"):$(dirname "$nccl")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "cuBLASLt: $lt; NCCL: $nccl"
fi
run_env=()
if [ -n "$arbor_libs" ]; then run_env=(env "LD_LIBRARY_PATH=$arbor_libs"); fi
export ARBOR_FIXTURES="$PWD/tests/fixtures" OMP_NUM_THREADS=${OMP_NUM_THREADS:-16}
command -v nvidia-smi >/dev/null || { echo "device_check: no nvidia-smi here: not a GPU machine" >&2; exit 2; }
gpu=$(timeout -k 2 15 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)
say "gpu: ${gpu:-nvidia-smi gave nothing in 15 s}"
# the grid by the memory found: 80 GB cannot hold Qwen3-4B's KV cache at batch 256 x 2,048 (78.6 GB)
mib=$(echo "$gpu" | awk -F, '{gsub(/[^0-9]/, "", $2); print $2 + 0}')
if [ "${mib:-0}" -ge 100000 ]; then batches=1,64,256; else batches=1,64,128; fi
say "grid: batch $batches, contexts 128 and 2048 (${mib:-0} MiB)"
status=0

suite() {  # name, time limit: runs a Criterion suite, one summary line (and its first failure)
    local name=$1 limit=$2 log="$logs/$1.log"
    step=$name
    CUDA_LAUNCH_BLOCKING=1 run_step timeout -k 5 "$limit" ${run_env[@]+"${run_env[@]}"} "$bin/$name" --verbose --jobs 1 >"$log" 2>&1
    local rc=$?
    local synth
    synth=$(grep -o "Tested: .*" "$log" | tail -1)
    local skipped
    skipped=$(grep -c "^\[SKIP\]" "$log")
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then synth="TIMED OUT after ${limit} s; $synth"; fi
    say "$name: rc $rc; ${synth:-no synthesis}; skipped $skipped"
    if [ "$rc" -ne 0 ]; then
        say "  first failure: $(grep -m1 -A2 -E "Assertion Failed|\[FAIL\]|CRASH|Aborted|error" "$log" | tr -s ' \n' ' ' | cut -c1-300)"
        status=1
    fi
    pack
    return "$rc"
}

bench() {  # limit, label, then arbor bench options; each label's rows go to its own CSV, row by row
    local limit=$1 label=$2
    shift 2
    step="bench $label"
    run_step timeout -k 5 "$limit" ${run_env[@]+"${run_env[@]}"} "$bin/arbor" bench --device cuda --ceilings --label "$label" "$@" \
        --csv "$logs/bench_$label.csv" >>"$logs/bench.out" 2>>"$logs/bench.log"
    local rc=$?
    if [ $rc -ne 0 ]; then
        say "bench $label $*: rc $rc: $(tail -1 "$logs/bench.log" | cut -c1-200)"
        status=1
    fi
    pack
}

if [ "$part" = correctness ]; then
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
say "overall status $status"
finish "$status"
fi

# bench: short contexts get 3 timed prefills; long ones 1 (a batch-128 x 2,048 prefill of the 24-layer
# 8B is ~2.7 PFLOP, seconds even at the GEMM ceiling), after a warm-up of the first chunk
bench 25 qwen3-8b --arch qwen3-8b --batch 1 --prompt-len 2048 --gen-len 64 --repeats 3
bench 25 qwen3-8b-cublas --arch qwen3-8b --batch 1 --prompt-len 2048 --gen-len 64 --repeats 3 --cublas-only
bench 25 qwen3-8b-depth24-short --arch qwen3-8b --layers 24 --batch "$batches" --prompt-len 128 --gen-len 32 --repeats 3
bench 45 qwen3-8b-depth24-long --arch qwen3-8b --layers 24 --batch "$batches" --prompt-len 2048 --gen-len 32 --repeats 1
bench 25 qwen3-4b-short --arch qwen3-4b --batch "$batches" --prompt-len 128 --gen-len 32 --repeats 3
bench 45 qwen3-4b-long --arch qwen3-4b --batch "$batches" --prompt-len 2048 --gen-len 32 --repeats 1
step="bench_distill_cuda"
run_step timeout -k 5 50 ${run_env[@]+"${run_env[@]}"} "$bin/bench_distill_cuda" qwen3-4b qwen3-1.7b --batch 4 --seq 1024 --steps 5 \
    --csv "$logs/distill_4b_17b.csv" >"$logs/distill.log" 2>&1 ||
    { say "bench_distill_cuda 4B -> 1.7B: rc $?: $(tail -1 "$logs/distill.log" | cut -c1-200)"; status=1; }

step="summary"
run_step timeout -k 2 20 python3 - "$logs" >>"$summary" 2>&1 <<'PY'
import csv, glob, os, sys
d = sys.argv[1]
rows = []
for f in sorted(glob.glob(d + "/bench_*.csv")):
    rows += list(csv.DictReader(open(f)))
measured = [r for r in rows if not r.get("note")]
for r in rows:
    if r.get("note"):
        print(f"{r['model'][:22]} b{r['batch']} ctx {r['prompt_len']}: {r['note'][:150]}")
if measured:
    r0 = measured[0]
    print(f"ceilings: copy {float(r0['copy_gbs']):.0f} GB/s, bf16 GEMM {float(r0['gemm_tflops']):.0f} TFLOP/s")
    print(f"{'model':22} {'b':>3} {'ctx':>4} | {'prefill t/s':>11} {'%gemm':>5} {'%floor':>6} | {'decode t/s':>10} {'%copy':>5} {'%floor':>6}")
    for r in measured:
        print(f"{r['model'][:22]:22} {r['batch']:>3} {r['prompt_len']:>4} | {float(r['prefill_tokens_per_s']):11.0f} "
              f"{100*float(r['prefill_fraction_of_gemm']):4.0f}% {100*float(r['prefill_fraction_of_floor']):5.0f}% | "
              f"{float(r['decode_tokens_per_s']):10.1f} {100*float(r['decode_fraction_of_copy']):4.0f}% "
              f"{100*float(r['decode_fraction_of_floor']):5.0f}%")
    key = {(r['model'].replace('-short', '').replace('-long', ''), r['batch'], r['prompt_len']): r for r in measured}
    a, c = key.get(("qwen3-8b", "1", "2048")), key.get(("qwen3-8b-cublas", "1", "2048"))
    if a and c:
        print(f"8B batch-1 decode at 2048: GEMV {float(a['decode_tokens_per_s']):.1f} vs cuBLASLt {float(c['decode_tokens_per_s']):.1f} tok/s")
    print("depth-24 8B / qwen3-4b, decode (prefill):")
    for b in ("1", "64", "128", "256"):
        for ctx in ("128", "2048"):
            x, y = key.get(("qwen3-8b-depth24", b, ctx)), key.get(("qwen3-4b", b, ctx))
            if x and y:
                print(f"  batch {b:>3} ctx {ctx:>4}: {float(x['decode_tokens_per_s'])/float(y['decode_tokens_per_s']):.2f}x "
                      f"({float(x['prefill_tokens_per_s'])/float(y['prefill_tokens_per_s']):.2f}x)")
else:
    print("bench: no rows measured")
for f in sorted(glob.glob(d + "/distill_*.csv")):
    for r in csv.DictReader(open(f)):
        print(f"distill {r['teacher']} -> {r['student']} {r['batch']}x{r['seq']}: {float(r['tokens_per_s']):.0f} tok/s, "
              f"MFU {100*float(r['mfu']):.0f}%, peak {float(r['peak_gb']):.0f} GB, 90B tokens = {float(r['gpu_hours_90b']):.0f} GPU-h")
PY
say "overall status $status"
finish "$status"
