// sweep_slurm.h: a sweep as a Slurm job array, one task per cell (arbor sweep CONFIG --emit-slurm).
// The script names the arbor binary and the config by absolute path, changes to the folder the sweep
// was prepared in (the config's relative paths are relative to it), asks for a GPU when the device is
// cuda, and takes time, memory, partition, account and CPUs from the [slurm] section. Each task runs
// `arbor sweep CONFIG --only CELL` (its cell, benched beside the teacher); submit.sh submits the array and
// `arbor collect` as a job that depends on it (afterok).
#pragma once
#include <stddef.h>

#include "sweep_config.h"

// 1 when cell runs a training stage over the distill stage's ranks (more than one, and a pruned, scratch or
// corrected-teacher cell): its array task gets an allocation that spans them
int sweep_cell_uses_ranks(const SweepConfig* c, const Cell* cell);
// The script text for these cells (one array task each, their ids at the lines of OUT/NAME/LIST), given
// the arbor binary, the config and the working folder (all absolute); ranked: each task's allocation
// spans the distill stage's ranks (else one task). -1 when it does not fit in n bytes.
int sweep_slurm_script(const SweepConfig* c, const Cell* cells, int n_cells, int ranked, const char* list, const char* arbor,
                       const char* config, const char* workdir, char* out, size_t n, Err* e);
// submit.sh for the results folder res (absolute): sbatch of each script (scripts[1]: the ranked array,
// scripts[0]: the one-task array; NULL when absent), then `arbor collect res` as a job with
// --dependency=afterok on them.
int sweep_slurm_submit(const SweepConfig* c, const char* arbor, const char* res, const char* const scripts[2], char* out, size_t n,
                       Err* e);
// Writes OUT/NAME/cells.txt and sweep.slurm (and, when the distill stage has ranks and some cells train
// nothing, cells_single.txt and sweep_single.slurm for those: one task each), and submit.sh (atomically);
// prints the submit script's path.
int sweep_emit_slurm(const SweepConfig* c, const Cell* cells, int n, Err* e);
