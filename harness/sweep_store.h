// sweep_store.h: where a sweep's stages live, and which of them a config's reports read.
//   OUT/NAME/stages/KEY/        one finished stage (model/, metrics.json, stage.json: its name and the text
//                               its key hashes), shared by every cell and every config that needs it. It is
//                               written as stages/KEY.tmp/ and renamed into place, so a folder that exists
//                               is complete; a training stage killed part way resumes from KEY.tmp/.
//   OUT/NAME/stages/KEY.lock    taken while the stage runs: a second run (a Slurm task) waits for it
//   OUT/NAME/manifest.json      the last run's config: its cells in config order, each a chain of stage keys.
//                               results.csv, mmlu_subjects.csv, rounds.csv, the plots, the paper and
//                               `arbor collect` read only the cells it lists.
//   OUT/NAME/manifests/H.json   the last manifest of each config file run here (H: its path's hash): the
//                               stages any of them names are kept by --gc
#pragma once
#include <cJSON.h>
#include <stddef.h>

#include "../kernels/check.h"
#include "sweep_graph.h"

// DIR/stages/KEY (dir: OUT/NAME)
void store_stage_dir(const char* dir, const char* key, char* out, size_t n);
// 1 when the stage KEY has finished (its folder is in the store)
int store_has(const char* dir, const char* key);
// DIR/stage.json of a stage being written (dir: its KEY.tmp): its name, the cell that asked for it, its
// key and the text the key hashes (what --gc and a reader of the store see)
int store_write_stage_info(const char* dir, const char* stage, const char* cell, const char* key, const char* text, Err* e);
// Takes KEY's lock, waiting (and saying so) while another run holds it.
int store_lock(const char* dir, const char* key, int* fd, Err* e);

// Writes DIR/manifest.json and DIR/manifests/H.json (H from the config's path), atomically.
int manifest_write(const SweepPlan* p, const SweepConfig* c, Err* e);
// DIR/manifest.json, parsed; NULL with e = "DIR/manifest.json: problem".
cJSON* manifest_read(const char* dir, Err* e);
// The stage key of `stage` in manifest cell `cell` (an element of "cells"); NULL when it has none.
const char* manifest_stage_key(const cJSON* cell, const char* stage);
// DIR/stages/KEY of cell (id or label) and stage, from DIR/manifest.json (what a user or a test looks up).
int sweep_stage_dir(const char* dir, const char* cell, const char* stage, char* out, size_t n, Err* e);

// Lists (stdout) the stages no manifest in DIR/manifests names, with their sizes, and folders of earlier
// layouts (DIR/cells); remove = 1 deletes them. Never touches a stage whose lock another run holds.
int store_gc(const char* dir, int remove, Err* e);
