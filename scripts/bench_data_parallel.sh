#!/usr/bin/env bash
# bench_data_parallel.sh [STEPS]: the cost of data parallelism on this machine's CPU backend, side by
# side in one run: (1) bench_allreduce_mpi over 2 ranks (the collectives' bandwidth), (2) the same
# distillation (same global batch) as 1 process x 2 threads with grad-accum 2 and as 2 MPI ranks x 1
# thread with grad-accum 1, interleaved over 3 rounds; prints the median tokens/s of each and their
# ratio. Needs a build with MPI (build/bench_allreduce_mpi). Data: a random shard (speed only).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-12}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mpi="mpirun --oversubscribe --allow-run-as-root"
echo "== collectives (2 ranks)"
$mpi -np 2 build/bench_allreduce_mpi 1 16 64
# a student big enough that a step is mostly compute: 2 layers x 256 hidden, teacher 4 layers
build/arbor init --arch tiny --layers 4 --hidden 256 --ffn 768 --heads 4 --kv-heads 2 --vocab 2048 --dtype f32 --seed 1 --out "$work/t" 2>/dev/null
build/arbor init --arch tiny --layers 2 --hidden 256 --ffn 768 --heads 4 --kv-heads 2 --vocab 2048 --dtype f32 --seed 2 --out "$work/s" 2>/dev/null
python3 - "$work/d.shard" <<'PY'
import random, struct, sys
random.seed(0)
n = 200000  # one document of random ids (models/token_shard.h: 64-byte header, then uint16 ids)
header = b"ARBORTOK" + struct.pack("<IIQIiQ", 1, 2, n, 2048, -1, 1)
open(sys.argv[1], "wb").write(header.ljust(64, b"\0") + struct.pack(f"<{n}H", *(random.randrange(2048) for _ in range(n))))
PY
common=(distill --teacher "$work/t" --student "$work/s" --data "$work/d.shard" --seq-len 128 --batch 4 --steps "$steps" --log-every 100)
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
tok_s() { tail -n +3 "$1/log.csv" | cut -d, -f7 | median; }  # steps 2.. (the first warms up)
one=() two=()
for round in 1 2 3; do
    rm -rf "$work/one" "$work/two"
    OMP_NUM_THREADS=2 build/arbor "${common[@]}" --grad-accum 2 --out "$work/one" 2>/dev/null
    $mpi -np 2 -x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1 build/arbor "${common[@]}" --grad-accum 1 --out "$work/two" 2>/dev/null
    one+=("$(tok_s "$work/one")") two+=("$(tok_s "$work/two")")
    echo "round $round: 1 process x 2 threads ${one[-1]} tokens/s, 2 ranks x 1 thread ${two[-1]} tokens/s"
done
a=$(printf '%s\n' "${one[@]}" | median) b=$(printf '%s\n' "${two[@]}" | median)
echo "== step time at equal global batch (1,024 tokens a step: 2 micro-batches of 4 x 128)"
echo "median tokens/s: one process $a, two ranks $b; two ranks / one process = $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')"
