// sweep_run.h: running a sweep's plan (sweep_graph.h) against its stage store (sweep_store.h). Each
// cell's stages run in order; a stage whose key is in the store is reused (and said so), any other runs
// into stages/KEY.tmp/ and is renamed into place, so a run killed at any moment resumes, losing at most
// the stage in progress (a training stage continues from its saved state). The benches of every cell
// that needs one then run together (sweep_bench.h), and the reports are rebuilt from the manifest.
#pragma once
#include "sweep_config.h"

// Runs every cell (or only the cell `only`: its id or label), then benches them together; force re-runs
// the stages of the cells it runs even when they are in the store (each stage once per run). stage_only
// (or NULL): run just that stage; the stages before it must be done. keep_going: a failed cell is
// reported and the others go on (the run still fails at the end). Progress (cell k/n, stage, ETA) goes to
// stderr. Writes OUT/NAME/manifest.json before any work.
int sweep_run(const SweepConfig* c, const Cell* cells, int n, const char* only, const char* stage_only, int force,
              int keep_going, Err* e);
// Rebuilds DIR/results.csv, DIR/mmlu_subjects.csv and DIR/rounds.csv from the cells DIR/manifest.json lists.
int sweep_collect(const char* dir, Err* e);
