// dist_bootstrap.h: rank 0's few bytes (an NCCL unique id) to every rank of a run started without MPI,
// as many Slurm installs run (srun without PMIx): through a file on a filesystem every rank sees, or
// over TCP from rank 0. Every wait is bounded by the Dist's timeout_s; on expiry each rank fails with
// one line naming what it waited for.
#pragma once
#include <stddef.h>

#include "dist.h"

// spec: "file:DIR" (rank 0 writes DIR/arbor-bootstrap-JOB.bin atomically, the others wait for it; JOB
// from ARBOR_DIST_JOB, else SLURM_JOB_ID.SLURM_STEP_ID: required, so that an old run's file is never
// read) or "tcp:HOST:PORT" (rank 0 listens on PORT; the others connect to HOST:PORT). blob (bytes) is
// rank 0's input and every other rank's output.
int dist_bootstrap_share(const Dist* d, const char* spec, void* blob, size_t bytes, Err* e);
