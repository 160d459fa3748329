#!/usr/bin/env bash
# device_check.sh: the GPU check of the CUDA backend, run on a machine with an NVIDIA GPU from the
# repository root. Prepare here with scripts/device_bundle.sh, then (the device tool):
#   run(command="bash scripts/device_check.sh", carry=[".device_bundle"], timeout_s=540)
# Steps: GPU facts; test_cuda, test_cuda_parity (every forward op and whole models vs the CPU,
# logged with their nmse) and test_cuda_train_parity (backward ops, loss, AdamW, model gradients, a
# 20-step distillation trajectory, resume); the distillation step benchmark (0.6B -> 14 layers,
# 4B -> 1.7B); `arbor bench --device cuda --ceilings` on the headline shapes (qwen3-8b, its
# depth-pruned 24-layer and width-pruned 6B variants, qwen3-4b) at batch 1, 32, 128 plus the 8B's
# batch-1 prefill of 2048 tokens; one summary table with the ratios to qwen3-4b at the end.
# Logs and CSVs land in $OUT (the device tool brings them back). Sized for about 5 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/arbor_device_out}
mkdir -p "$OUT"
root=/tmp/arbor_device
rm -rf "$root" && mkdir -p "$root"
if [ ! -f .device_bundle/bundle.tar.gz ]; then
    echo "device_check: .device_bundle/bundle.tar.gz missing: run scripts/device_bundle.sh here and carry .device_bundle" >&2
    exit 2
fi
tar -C "$root" -xzf .device_bundle/bundle.tar.gz

# cuBLASLt: the toolkit's, else the one inside Python's nvidia-* wheels
lt=$( (ls /usr/local/cuda*/lib64/libcublasLt.so.13* /usr/local/cuda*/targets/x86_64-linux/lib/libcublasLt.so.13* 2>/dev/null;
       python3 -c 'import site,glob
for d in site.getsitepackages(): print("\n".join(glob.glob(d + "/nvidia/**/libcublasLt.so.13*", recursive=True)))' 2>/dev/null) | head -1)
if [ -z "$lt" ]; then echo "device_check: libcublasLt.so.13 not found" >&2; exit 1; fi
export LD_LIBRARY_PATH="$root/lib:$(dirname "$lt")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ARBOR_FIXTURES="$PWD/tests/fixtures" OMP_NUM_THREADS=${OMP_NUM_THREADS:-16}
bin="$root/bin"
command -v nvidia-smi >/dev/null || { echo "device_check: no nvidia-smi here: not a GPU machine" >&2; exit 2; }
echo "== cuBLASLt: $lt"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"

status=0
echo "== test_cuda"
timeout 60 "$bin/test_cuda" --verbose 2>&1 | tail -3 || status=1
echo "== test_cuda_parity"
timeout 300 "$bin/test_cuda_parity" --verbose --jobs 1 >"$OUT/parity.log" 2>&1
parity_rc=$?
grep -E "nmse|argmax|FAIL|PASS|SKIP|CRASH|Synthesis" "$OUT/parity.log" | cut -c1-200 | tail -40
echo "== test_cuda_train_parity"
timeout 300 "$bin/test_cuda_train_parity" --verbose --jobs 1 >"$OUT/train_parity.log" 2>&1
train_rc=$?
grep -E "nmse|loss|FAIL|PASS|SKIP|CRASH|Synthesis|bit" "$OUT/train_parity.log" | cut -c1-200 | tail -30
parity_state=passed
grep -q "^\[SKIP\]" "$OUT/parity.log" "$OUT/train_parity.log" && parity_state=SKIPPED
[ $parity_rc -eq 0 ] && [ $train_rc -eq 0 ] || { parity_state=FAILED; status=1; }

echo "== benchmarks"
bench() {  # label, then arbor bench options
    local label=$1; shift
    timeout 240 "$bin/arbor" bench --device cuda --ceilings --label "$label" "$@" \
        --csv "$OUT/bench_${label}_$(echo "$*" | md5sum | cut -c1-6).csv" >>"$OUT/bench.out" 2>>"$OUT/bench.log" || {
        echo "bench $label $* failed:"; tail -5 "$OUT/bench.log"; status=1; }
}
bench qwen3-8b --arch qwen3-8b --batch 1 --prompt-len 2048 --gen-len 64
bench qwen3-8b-cublas --arch qwen3-8b --batch 1 --prompt-len 128 --gen-len 64 --cublas-only
for batches in "1,32,128"; do
    bench qwen3-8b --arch qwen3-8b --batch $batches --prompt-len 128 --gen-len 64
    bench qwen3-8b-depth24 --arch qwen3-8b --layers 24 --batch $batches --prompt-len 128 --gen-len 64
    bench qwen3-8b-width6b --arch qwen3-8b --hidden 3584 --ffn 9216 --batch $batches --prompt-len 128 --gen-len 64
    bench qwen3-4b --arch qwen3-4b --batch $batches --prompt-len 128 --gen-len 64
done
cat "$OUT/bench.log" | grep -v "^ceilings" | tail -40

echo "== distillation step benchmarks"
timeout 180 "$bin/bench_distill_cuda" qwen3-0.6b qwen3-0.6b --student-layers 14 --batch 8 --seq 1024 --steps 6 \
    --csv "$OUT/distill_06b.csv" 2>&1 | tail -2 || status=1
timeout 240 "$bin/bench_distill_cuda" qwen3-4b qwen3-1.7b --batch 4 --seq 1024 --steps 5 \
    --csv "$OUT/distill_4b_17b.csv" 2>&1 | tail -2 || status=1
timeout 240 "$bin/bench_distill_cuda" qwen3-4b qwen3-1.7b --batch 4 --seq 1024 --steps 5 --recompute \
    --csv "$OUT/distill_4b_17b_recompute.csv" 2>&1 | tail -2 || status=1

echo "== summary"
python3 - "$OUT" <<'PY'
import csv, glob, sys
rows = []
for f in sorted(glob.glob(sys.argv[1] + "/bench_*.csv")):
    rows += list(csv.DictReader(open(f)))
if not rows:
    print("no benchmark rows"); sys.exit(0)
r0 = rows[0]
print(f"ceilings: copy {float(r0['copy_gbs']):.0f} GB/s, bf16 GEMM {float(r0['gemm_tflops']):.0f} TFLOP/s")
print(f"{'model':18} {'batch':>5} {'prompt':>6} | {'prefill t/s':>11} {'TFLOP/s':>7} {'%gemm':>5} | {'decode t/s':>10} {'ms/step':>7} {'GB/s':>6} {'%copy':>5}")
for r in rows:
    print(f"{r['model']:18} {r['batch']:>5} {r['prompt_len']:>6} | {float(r['prefill_tokens_per_s']):11.0f} {float(r['prefill_tflops']):7.1f} "
          f"{100*float(r['prefill_fraction_of_gemm']):4.0f}% | {float(r['decode_tokens_per_s']):10.1f} {float(r['decode_ms_per_step']):7.3f} "
          f"{float(r['decode_gbs']):6.0f} {100*float(r['decode_fraction_of_copy']):4.0f}%")
key = {(r['model'], r['batch'], r['prompt_len']): r for r in rows}
a, base = key.get(("qwen3-8b", "1", "128")), key.get(("qwen3-8b-cublas", "1", "128"))
if a and base:
    print(f"qwen3-8b batch-1 decode: arbor GEMV {float(a['decode_tokens_per_s']):.1f} tok/s vs cuBLASLt "
          f"{float(base['decode_tokens_per_s']):.1f} tok/s = {float(a['decode_tokens_per_s'])/float(base['decode_tokens_per_s']):.2f}x")
print("ratios to qwen3-4b (prompt 128): prefill tokens/s, decode tokens/s")
for m in ("qwen3-8b-depth24", "qwen3-8b-width6b", "qwen3-8b"):
    for b in ("1", "32", "128"):
        a, base = key.get((m, b, "128")), key.get(("qwen3-4b", b, "128"))
        if a and base:
            print(f"  {m:18} batch {b:>3}: prefill {float(a['prefill_tokens_per_s'])/float(base['prefill_tokens_per_s']):.2f}x, "
                  f"decode {float(a['decode_tokens_per_s'])/float(base['decode_tokens_per_s']):.2f}x")
PY
python3 - "$OUT" <<'PY'
import csv, glob, sys
for f in sorted(glob.glob(sys.argv[1] + "/distill_*.csv")):
    for r in csv.DictReader(open(f)):
        print(f"distill {r['teacher']} -> {r['student']} ({r['student_layers']} layers) {r['batch']}x{r['seq']}: "
              f"{float(r['tokens_per_s']):.0f} tokens/s, {float(r['tflops']):.0f} TFLOP/s, MFU {100*float(r['mfu']):.0f}%, "
              f"peak {float(r['peak_gb']):.0f} GB, 90B tokens = {float(r['gpu_hours_90b']):.0f} GPU-hours")
PY
echo "device_check: parity $parity_state ($(grep -o 'Tested.*' "$OUT/parity.log" | tail -1)), overall status $status"
exit $status
