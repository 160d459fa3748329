// collectives.h: the collectives a data-parallel step needs, behind one interface with two
// implementations: MPI over host buffers (distill/dist.c, the CPU backend) and NCCL over device
// buffers on a communication stream (collectives_nccl.c, the GPU backend). The trainer's reduction
// schedule (bucket by bucket, grad_buckets.h) calls only this interface, so the CPU tests run the very
// scheduling code the GPU runs.
//
// Calls may only queue work (NCCL): `wait` returns when everything queued has finished, within the
// run's bound (Dist.timeout_s: a rank that waits longer fails with one line, and NCCL's communicator is
// aborted); MPI's calls finish before they return. Buffers: host memory for MPI, device memory for NCCL.
#pragma once
#include <stddef.h>

#include "dist.h"

typedef struct Collectives Collectives;

typedef struct {
    // buf (n of t) = its sum over ranks, on every rank
    int (*all_reduce)(Collectives* c, void* buf, size_t n, DistType t, Err* e);
    // elements [bounds[r], bounds[r+1]) of the sum land on rank r (world + 1 bounds; outside untouched)
    int (*reduce_scatter)(Collectives* c, void* buf, const size_t* bounds, DistType t, Err* e);
    // elements [bounds[r], bounds[r+1]) of buf from rank r, on every rank
    int (*all_gather)(Collectives* c, void* buf, const size_t* bounds, DistType t, Err* e);
    int (*broadcast)(Collectives* c, void* buf, size_t n, DistType t, int root, Err* e);
    // the calls between these two go out as one batch (NCCL groups; nothing for MPI)
    int (*group_start)(Collectives* c, Err* e);
    int (*group_end)(Collectives* c, Err* e);
    // what is queued after this starts only when the work the compute stream has queued so far is done
    // (an event; compute_stream: the CudaContext's, from cuda_context_stream; nothing for MPI)
    void (*after_compute)(Collectives* c, void* compute_stream);
    // the compute stream's next work waits for everything queued here (an event; nothing for MPI)
    void (*compute_waits)(Collectives* c, void* compute_stream);
    int (*wait)(Collectives* c, Err* e);
    void (*close)(Collectives* c);
} CollectivesOps;

struct Collectives {
    const CollectivesOps* ops;
    const char* name;    // "mpi", "nccl"
    const Dist* dist;
    int rank, world;
    int device_buffers;  // 1: buffers are device pointers
    void* impl;
};

// Over the run's MPI ranks (any world size: a world of one sums nothing).
void collectives_open_mpi(Collectives* c, const Dist* d);
// Over NCCL on the GPU `device` (the rank's: dist_cuda_device), the communicator made from rank 0's
// unique id: broadcast over MPI, or through ARBOR_DIST_BOOTSTRAP ("file:DIR" or "tcp:HOST:PORT",
// dist_bootstrap.h) when that is set. Fails with the reason when arbor was built without NCCL.
int collectives_open_nccl(Collectives* c, const Dist* d, int device, Err* e);
void collectives_close(Collectives* c);
// The GPU of this rank: its local rank modulo the devices visible (one rank per GPU).
int dist_cuda_device(const Dist* d, int device_count);
