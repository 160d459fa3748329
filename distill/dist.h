// dist.h: the ranks of one data-parallel training run, and the few collectives the trainer needs.
//
// Rank, world size and local rank come from the launcher: Slurm (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID), OpenMPI (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK) or MPICH/PMI (PMI_RANK, PMI_SIZE,
// MPI_LOCALRANKID). A world of one needs nothing. A larger world on the CPU runs over MPI (built with
// it: -DARBOR_MPI, Debian's OpenMPI), whose launcher (mpirun, or srun with PMIx) also ends every rank
// when one dies. Collectives are deterministic for a given world size, and the trainer only sums
// values whose fp64 sum is exact (float gradients of similar magnitude), so results do not depend on
// how the global batch is split across ranks.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "../kernels/check.h"

typedef struct {
    int rank, world, local_rank;
    int mpi;  // 1: MPI was initialised by dist_init (dist_finish finalises it)
    char launcher[16];  // "none", "slurm", "openmpi", "pmi"
    int timeout_s;  // bound on every collective: a rank that waits longer ends itself with a message
                    // (then the launcher ends the others); ARBOR_DIST_TIMEOUT, default 900
} Dist;

// Reads the launcher's environment and, for a world above one, joins it (MPI). A world above one in an
// arbor built without MPI is refused with what to do. A world of one: rank 0, no MPI.
int dist_init(Dist* d, Err* e);
void dist_finish(Dist* d);
// Ends every rank of the run at once (MPI_Abort) with exit code; returns only for a world of one.
void dist_abort(const Dist* d, int code);

// Element types of the typed collectives (host buffers; MPI sums fp32 and fp64, moves all three).
typedef enum { DIST_F32, DIST_F64, DIST_BF16 } DistType;
size_t dist_type_size(DistType t);
// In place over all ranks: buf[i] = sum over ranks of buf[i] (n elements of type t).
int dist_all_reduce(const Dist* d, void* buf, size_t n, DistType t, Err* e);
// Elements [bounds[r], bounds[r+1]) of the sum over ranks land on rank r (bounds: world + 1 entries;
// elements outside [bounds[0], bounds[world]) untouched); only a rank's own range holds the sum.
int dist_reduce_scatter(const Dist* d, void* buf, const size_t* bounds, DistType t, Err* e);
// Elements [bounds[r], bounds[r+1]) of buf come from rank r, on every rank.
int dist_all_gather_ranges(const Dist* d, void* buf, const size_t* bounds, DistType t, Err* e);
// n elements from rank root to every rank.
int dist_broadcast(const Dist* d, void* buf, size_t n, DistType t, int root, Err* e);
// In place over all ranks: buf[i] = sum over ranks of buf[i].
int dist_sum_doubles(const Dist* d, double* buf, size_t n, Err* e);
// Each rank's lo..hi slice of the sum over ranks of buf (n values); range r is [bounds[r], bounds[r+1]).
// Only the own slice of buf holds the sum afterwards.
int dist_sum_doubles_scatter(const Dist* d, double* buf, const size_t* bounds, Err* e);
// all (world * bytes): every rank's `mine` (bytes each), in rank order.
int dist_all_gather(const Dist* d, const void* mine, size_t bytes, void* all, Err* e);
// floats in [bounds[r], bounds[r+1]) of buf come from rank r, on every rank.
int dist_all_gather_floats(const Dist* d, float* buf, const size_t* bounds, Err* e);
// full (bounds[world] floats, rank 0 only; NULL elsewhere) gets each rank's `mine` (its
// bounds[r+1] - bounds[r] floats) at bounds[r].
int dist_gather_floats_to_root(const Dist* d, const float* mine, float* full, const size_t* bounds, Err* e);
// 1 when ok is non-zero on every rank (every rank waits for all).
int dist_all_ok(const Dist* d, int ok);
// Refuses (-1 on every rank) when the ranks' hashes of `what` differ, naming the first rank that
// differs from rank 0.
int dist_check_same(const Dist* d, uint64_t hash, const char* what, Err* e);
