#!/usr/bin/env bash
# bench/contention.sh: how arbor degrades when it does not own the cores. Runs `arbor bench` in
# interleaved rounds under four conditions: quiet or with one competing busy process, and the CPU
# policy dedicated (libgomp spins) or auto (passive waiting when others are runnable; harness/cpu_policy.h).
# Prints the median decode and prefill tokens/s of each condition and the ratios auto / dedicated.
#   bench/contention.sh [ROUNDS]   (default 3; ARBOR=path/to/arbor, BENCH_ARGS to change the model)
set -euo pipefail
cd "$(dirname "$0")/.."
arbor=${ARBOR:-build/arbor}
rounds=${1:-3}
args=${BENCH_ARGS:---arch qwen3-0.6b --layers 4 --vocab 8192 --prompt-len 64 --gen-len 32 --repeats 3}
out=$(mktemp -d)
trap 'rm -rf "$out"; kill $(jobs -p) 2>/dev/null || true' EXIT
for r in $(seq "$rounds"); do
  for busy in 0 1; do
    for policy in dedicated auto; do
      pid=""
      if [ "$busy" = 1 ]; then
        timeout 120 sh -c 'while :; do :; done' &
        pid=$!
        sleep 0.2
      fi
      line=$(ARBOR_CPU_POLICY=$policy "$arbor" bench $args 2>&1 | grep -oE "(prefill|decode)_tokens_per_s=[0-9.]+" | tr '\n' ' ')
      [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
      echo "round $r busy=$busy policy=$policy $line" | tee -a "$out/rows" >&2
    done
  done
done
python3 - "$out/rows" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    busy = re.search(r"busy=(\d)", line).group(1); pol = re.search(r"policy=(\w+)", line).group(1)
    vals = dict(re.findall(r"(\w+)_tokens_per_s=([0-9.]+)", line))
    rows.setdefault((busy, pol), []).append({k: float(v) for k, v in vals.items()})
print(f"{'condition':<28} {'prefill t/s':>12} {'decode t/s':>12}   (median of {len(next(iter(rows.values())))} rounds)")
med = {}
for (busy, pol), rs in sorted(rows.items()):
    med[(busy, pol)] = {k: statistics.median(r[k] for r in rs) for k in ("prefill", "decode")}
    print(f"{('busy' if busy == '1' else 'quiet') + ' / ' + pol:<28} {med[(busy, pol)]['prefill']:>12.1f} {med[(busy, pol)]['decode']:>12.2f}")
for busy in ("0", "1"):
    a, d = med[(busy, "auto")], med[(busy, "dedicated")]
    print(f"{'busy' if busy == '1' else 'quiet'}: auto / dedicated  prefill {a['prefill'] / d['prefill']:.2f}x  decode {a['decode'] / d['decode']:.2f}x")
PY
