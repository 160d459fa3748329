#!/usr/bin/env bash
# fuzz_smoke.sh [SECONDS]: builds the libFuzzer targets (clang, ASan + UBSan, -DARBOR_FUZZ=ON) in
# build-fuzz/, replays every regression case under the sanitizers, then fuzzes each target for SECONDS
# (default 15; 12 targets) from its seed corpus. Prints executions and crashes per target; a crash
# input is saved in build-fuzz/crashes/TARGET/ (keep it under fuzz/regressions/TARGET/ once fixed).
# Exits 1 when any target crashed, 0 otherwise; skips (exit 0, with the reason) without clang/libFuzzer.
# A long campaign: docs/FUZZING.md.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
probe=$(mktemp -d)
printf 'int LLVMFuzzerTestOneInput(const char* d, unsigned long n) { return 0; }\n' >"$probe/p.c"
if ! command -v clang >/dev/null || ! clang -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>/dev/null; then
    echo "fuzz smoke: skipped: clang with libFuzzer not found (Debian: clang libclang-rt-14-dev)"
    rm -rf "$probe"
    exit 0
fi
rm -rf "$probe"
build=${ARBOR_FUZZ_BUILD:-build-fuzz}
CC=clang cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DARBOR_FUZZ=ON -DARBOR_CUDA=OFF -DARBOR_TESTS=OFF \
    -DARBOR_NATIVE=OFF >/dev/null || exit 1
targets=(safetensors config tokenizer_load tokenizer_roundtrip tokenizer_kinds mmlu_csv sweep_ini shard train_state npy scores jsonl)
cmake --build "$build" --target $(printf 'fuzz_%s ' "${targets[@]}") >"$build/fuzz_build.log" 2>&1 || {
    tail -20 "$build/fuzz_build.log"; exit 1; }
export ARBOR_DATA=${ARBOR_DATA:-$(cd .. && pwd)/shared/data}
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 OMP_NUM_THREADS=1
status=0
printf '%-22s %10s %10s %8s\n' target executions exec/s crashes
for t in "${targets[@]}"; do
    work=$(mktemp -d)
    mkdir -p "$work/corpus" "$build/crashes/$t"
    cp fuzz/corpus/"$t"/* "$work/corpus/" 2>/dev/null
    # the regression cases first, under the sanitizers (libFuzzer runs files given as arguments once)
    if [ -d "fuzz/regressions/$t" ] && ! "$build/fuzz_$t" fuzz/regressions/"$t"/* >"$work/replay.log" 2>&1; then
        echo "$t: a regression case fails again:"; grep -m3 -E "ERROR|runtime error|SUMMARY" "$work/replay.log"; status=1
    fi
    "$build/fuzz_$t" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$build/crashes/$t/" "$work/corpus" >"$work/fuzz.log" 2>&1
    rc=$?
    execs=$(grep -oE "^#[0-9]+" "$work/fuzz.log" | tail -1 | tr -d '#')
    rate=$(grep -oE "exec/s: [0-9]+" "$work/fuzz.log" | tail -1 | grep -oE "[0-9]+")
    crashes=$(find "$build/crashes/$t" -type f -newer "$work/corpus" | wc -l)
    printf '%-22s %10s %10s %8s\n' "$t" "${execs:-0}" "${rate:-0}" "$crashes"
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        grep -m5 -E "ERROR|runtime error|SUMMARY|Test unit written" "$work/fuzz.log"; status=1
    fi
    rm -rf "$work"
done
exit $status
