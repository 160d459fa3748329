// sweep_slurm.h: a sweep as a Slurm job array, one task per cell (arbor sweep CONFIG --emit-slurm).
// The script names the arbor binary and the config by absolute path, changes to the folder the sweep
// was prepared in (the config's relative paths are relative to it), asks for a GPU when the device is
// cuda, and takes time, memory, partition, account and CPUs from the [slurm] section. Each task runs
// `arbor sweep CONFIG --only CELL` (its cell, benched beside the teacher); submit.sh submits the array and
// `arbor collect` as a job that depends on it (afterok).
#pragma once
#include <stddef.h>

#include "sweep_config.h"

// The script text for these cells, given the arbor binary, the config and the working folder (all
// absolute). -1 when it does not fit in n bytes.
int sweep_slurm_script(const SweepConfig* c, const Cell* cells, int n_cells, const char* arbor, const char* config,
                       const char* workdir, char* out, size_t n, Err* e);
// submit.sh for the results folder res (absolute): sbatch of the array, then `arbor collect res` as a job
// with --dependency=afterok on it.
int sweep_slurm_submit(const SweepConfig* c, const char* arbor, const char* res, char* out, size_t n, Err* e);
// Writes OUT/NAME/cells.txt, OUT/NAME/sweep.slurm and OUT/NAME/submit.sh (atomically) and prints the
// submit script's path.
int sweep_emit_slurm(const SweepConfig* c, const Cell* cells, int n, Err* e);
