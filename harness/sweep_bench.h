// sweep_bench.h: the throughput of a sweep's cells, measured together. Cells are benched in
// interleaved rounds (A B C, B C A, C A B, ...: the starting cell rotates), [bench] repeats rounds, so
// a slow minute of a shared machine falls on every cell alike. Each round of each cell loads the model,
// warms up, and times one prefill and one decode; a measurement whose threads waited for a core
// (evals/cpu_usage.h) is flagged and measured again (up to twice). Each cell gets the median and range
// over rounds, the number of contended rounds, and its ratio to the teacher: the median over rounds of
// (cell / teacher in the same round). Every sample goes to the cell's bench/samples.csv.
//
// The group's key covers the bench settings and each member's model key, so adding a cell or changing
// a model re-measures the whole group (the ratios must come from the same rounds).
#pragma once
#include "sweep_config.h"

typedef struct {
    const Cell* cell;
    char dir[2048];        // the cell's folder
    char model_dir[2400];  // the model it benches
    char model_key[32];    // the key of the stage that made the model (or of the checkpoint's content)
    int write;             // write this member's bench/ results (0: a reference only, e.g. the teacher beside --only)
} BenchMember;

// members[0] is the teacher. force: measure even when every member's bench.done holds the group key.
int sweep_bench_group(const SweepConfig* c, const BenchMember* members, int n, int force, Err* e);
