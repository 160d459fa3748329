// sweep_bench.h: the throughput of a sweep's cells, measured together. Cells are benched in
// interleaved rounds (A B C, B C A, C A B, ...: the starting cell rotates), [bench] repeats rounds, so
// a slow minute of a shared machine falls on every cell alike. Each round of each cell loads the model,
// warms up, and times one prefill and one decode; a measurement whose threads waited for a core
// (evals/cpu_usage.h) is flagged and measured again (up to twice). Each cell gets the median and range
// over rounds, the number of contended rounds, and its ratio to the teacher: the median over rounds of
// (cell / teacher in the same round). Every sample goes to the cell's bench/samples.csv.
//
// Each member's results go to its bench stage's folder in the store (sweep_store.h): the runner picks the
// members whose bench is not there yet and measures them together, the teacher first as the reference.
#pragma once
#include "sweep_config.h"

typedef struct {
    const Cell* cell;
    char model_dir[2600];   // the model it benches
    char stage_dir[2600];   // its bench stage's folder (stages/KEY), written through stage_dir.tmp
    const char* stage_text; // what that stage's key hashes (stage.json)
    int write;              // write this member's results (0: a reference only, e.g. a teacher whose bench is done)
} BenchMember;

// Measures members (members[0]: the teacher) in interleaved rounds and writes the members marked write.
int sweep_bench_group(const SweepConfig* c, const BenchMember* members, int n, Err* e);
