// sweep_ranks.h: a sweep's training stage (distill, or train from scratch) over several ranks: the
// cluster's launcher starts `arbor distill` (or train) with the stage's options, one process per rank
// (srun inside a Slurm allocation, else mpirun: ARBOR_MPIRUN, with ARBOR_MPIRUN_ARGS added), and the
// run's log.csv gives back what the stage reports. The global batch stays the sweep's batch x
// grad_accum: each rank accumulates grad_accum / ranks micro-batches.
#pragma once
#include "../distill/trainer.h"
#include "sweep_config.h"

// The launcher's argv for tc's stage (NULL-terminated, static storage). student: the model to start from;
// teacher: the model it is distilled from, NULL to train on the data alone.
int sweep_train_argv(const SweepConfig* c, const TrainConfig* tc, int ranks, const char* teacher, const char* student,
                     char*** argv, int* argc, Err* e);
// Runs it and waits; sum from the run's log.csv. A failed rank fails the stage (its folder is kept, so a
// re-run resumes from the last saved state).
int sweep_train_ranks(const SweepConfig* c, const TrainConfig* tc, const char* teacher, const char* student, TrainSummary* sum,
                      Err* e);
