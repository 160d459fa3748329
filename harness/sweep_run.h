// sweep_run.h: running the cells of a sweep. A cell's folder is OUT/NAME/cells/ID/ with one folder per
// stage; a stage counts as done only when ID/STAGE.done holds the hash of its inputs (its settings and
// the hash of the stage before it). A stage writes into STAGE.tmp/ and is renamed into place before its
// .done is written, so a run killed at any moment resumes, losing at most the stage in progress.
//   teacher, baseline:  eval -> bench
//   pruned:             prune -> distill -> eval -> bench
//   scratch:            init -> train -> eval -> bench      (the pruned shape, random init, same steps)
// Each stage leaves metrics.json; sweep_collect turns every cell folder into results.csv.
#pragma once
#include "sweep_config.h"

// Runs every cell (or only the cell `only`), then benches them together (sweep_bench.h); force re-runs
// the stages even when done. stage_only (or NULL): run just that stage; the stages before it must be
// done. keep_going: a failed cell is reported and the others go on (the run still fails at the end).
// Progress (cell k/n, stage, ETA) goes to stderr.
int sweep_run(const SweepConfig* c, const Cell* cells, int n, const char* only, const char* stage_only, int force,
              int keep_going, Err* e);
// Rebuilds DIR/results.csv (one row per cell folder under DIR/cells) and DIR/mmlu_subjects.csv.
int sweep_collect(const char* dir, Err* e);
