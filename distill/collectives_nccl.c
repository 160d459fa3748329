// collectives_nccl.c: the NCCL implementation of collectives.h (built when CUDA and NCCL are found:
// ARBOR_HAVE_NCCL). One communicator per rank, on the rank's GPU; every call queued on a communication
// stream of its own, so the reduction of a gradient bucket runs beside the backward of the layers below
// it; events order it after the compute stream's work and the compute stream after it. The
// communicator is non-blocking (ncclConfig_t.blocking = 0): every wait polls, bounded by the run's
// timeout, and a rank that waits past it aborts the communicator and fails with one line. A call on a
// non-blocking communicator may return while NCCL still issues its kernels (ncclInProgress): each call
// here returns only once they are on the stream (polled, bounded), so the events recorded after it
// order what follows behind them.
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collectives.h"
#include "dist_bootstrap.h"

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;
    cudaEvent_t compute_done, comm_done;
    int device;
} Nccl;

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static ncclDataType_t nccl_type(DistType t) { return t == DIST_F64 ? ncclFloat64 : t == DIST_F32 ? ncclFloat32 : ncclBfloat16; }
static char* at_elem(void* buf, size_t i, DistType t) { return (char*)buf + i * dist_type_size(t); }

// A call's result: ncclInProgress is how a non-blocking communicator says "queued"
static int nccl_check(Collectives* c, ncclResult_t rc, const char* what, Err* e) {
    if (rc == ncclSuccess || rc == ncclInProgress) return 0;
    return err_runtime(e, "rank %d of %d: NCCL %s failed: %s (%s)", c->rank, c->world, what, ncclGetErrorString(rc),
                       ncclGetLastError(((Nccl*)c->impl)->comm));
}

// Polls until the communicator is idle (init, group end) and the stream has drained, within the bound.
static int settle(Collectives* c, int drain_stream, const char* what, Err* e) {
    Nccl* n = c->impl;
    double until = seconds_now() + c->dist->timeout_s;
    for (;;) {
        ncclResult_t async = ncclSuccess;
        ncclResult_t rc = ncclCommGetAsyncError(n->comm, &async);
        if (rc != ncclSuccess) async = rc;
        if (async != ncclSuccess && async != ncclInProgress) {
            ncclCommAbort(n->comm);
            n->comm = NULL;
            return err_runtime(e, "rank %d of %d: NCCL %s failed: %s", c->rank, c->world, what, ncclGetErrorString(async));
        }
        int idle = async == ncclSuccess;
        if (idle && drain_stream) {
            cudaError_t q = cudaStreamQuery(n->stream);
            if (q != cudaSuccess && q != cudaErrorNotReady)
                return err_runtime(e, "rank %d of %d: CUDA during NCCL %s: %s", c->rank, c->world, what, cudaGetErrorString(q));
            idle = q == cudaSuccess;
        }
        if (idle) return 0;
        if (seconds_now() > until) {
            ncclCommAbort(n->comm);
            n->comm = NULL;
            return err_runtime(e, "rank %d of %d: no answer from the other ranks within %d s (NCCL %s): ending this rank",
                               c->rank, c->world, c->dist->timeout_s, what);
        }
        struct timespec pause = {0, 200000};  // 0.2 ms
        nanosleep(&pause, NULL);
    }
}

static int nccl_all_reduce(Collectives* c, void* buf, size_t n, DistType t, Err* e) {
    Nccl* x = c->impl;
    return nccl_check(c, ncclAllReduce(buf, buf, n, nccl_type(t), ncclSum, x->comm, x->stream), "all-reduce", e) ||
           settle(c, 0, "all-reduce", e);
}

// One call per owner's range, batched: to its owner (reduce: the reduce-scatter; NCCL's own splits evenly,
// this takes any ranges, the rule of the MPI implementation) or from it (broadcast: the all-gather).
static int per_owner(Collectives* c, void* buf, const size_t* bounds, DistType t, int reduce, const char* what, Err* e) {
    Nccl* x = c->impl;
    int rc = nccl_check(c, ncclGroupStart(), "group start", e);
    for (int r = 0; r < c->world && !rc; r++) {
        if (bounds[r + 1] <= bounds[r]) continue;
        void* at = at_elem(buf, bounds[r], t);
        size_t count = bounds[r + 1] - bounds[r];
        rc = nccl_check(c, reduce ? ncclReduce(at, at, count, nccl_type(t), ncclSum, r, x->comm, x->stream)
                                  : ncclBroadcast(at, at, count, nccl_type(t), r, x->comm, x->stream), what, e);
    }
    int end = nccl_check(c, ncclGroupEnd(), "group end", e);
    return rc ? rc : end ? end : settle(c, 0, what, e);
}

static int nccl_reduce_scatter(Collectives* c, void* buf, const size_t* bounds, DistType t, Err* e) {
    return per_owner(c, buf, bounds, t, 1, "reduce-scatter", e);
}

static int nccl_all_gather(Collectives* c, void* buf, const size_t* bounds, DistType t, Err* e) {
    return per_owner(c, buf, bounds, t, 0, "all-gather", e);
}

static int nccl_broadcast(Collectives* c, void* buf, size_t n, DistType t, int root, Err* e) {
    Nccl* x = c->impl;
    return nccl_check(c, ncclBroadcast(buf, buf, n, nccl_type(t), root, x->comm, x->stream), "broadcast", e) ||
           settle(c, 0, "broadcast", e);
}

static int nccl_group_start(Collectives* c, Err* e) { return nccl_check(c, ncclGroupStart(), "group start", e); }
static int nccl_group_end(Collectives* c, Err* e) {
    return nccl_check(c, ncclGroupEnd(), "group end", e) || settle(c, 0, "group end", e);
}

static void nccl_after_compute(Collectives* c, void* compute_stream) {
    Nccl* x = c->impl;
    if (cudaEventRecord(x->compute_done, (cudaStream_t)compute_stream) != cudaSuccess ||
        cudaStreamWaitEvent(x->stream, x->compute_done, 0) != cudaSuccess)
        FATAL("CUDA: ordering the communication stream after the compute stream: %s", cudaGetErrorString(cudaGetLastError()));
}

static void nccl_compute_waits(Collectives* c, void* compute_stream) {
    Nccl* x = c->impl;
    if (cudaEventRecord(x->comm_done, x->stream) != cudaSuccess ||
        cudaStreamWaitEvent((cudaStream_t)compute_stream, x->comm_done, 0) != cudaSuccess)
        FATAL("CUDA: ordering the compute stream after the communication stream: %s", cudaGetErrorString(cudaGetLastError()));
}

static int nccl_wait(Collectives* c, Err* e) { return settle(c, 1, "wait", e); }

static void nccl_close(Collectives* c) {
    Nccl* x = c->impl;
    if (!x) return;
    if (x->comm) ncclCommDestroy(x->comm);
    cudaEventDestroy(x->compute_done);
    cudaEventDestroy(x->comm_done);
    cudaStreamDestroy(x->stream);
    free(x);
    c->impl = NULL;
}

static const CollectivesOps nccl_ops = {nccl_all_reduce, nccl_reduce_scatter, nccl_all_gather,   nccl_broadcast,
                                        nccl_group_start, nccl_group_end,     nccl_after_compute, nccl_compute_waits,
                                        nccl_wait,        nccl_close};

int collectives_open_nccl(Collectives* c, const Dist* d, int device, Err* e) {
    memset(c, 0, sizeof *c);
    c->ops = &nccl_ops, c->name = "nccl", c->dist = d, c->rank = d->rank, c->world = d->world, c->device_buffers = 1;
    if (cudaSetDevice(device) != cudaSuccess)
        return err_runtime(e, "rank %d of %d: cannot use GPU %d: %s", d->rank, d->world, device, cudaGetErrorString(cudaGetLastError()));
    // rank 0's unique id to every rank: over MPI, or the file/TCP bootstrap when ARBOR_DIST_BOOTSTRAP says so
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (d->rank == 0 && ncclGetUniqueId(&id) != ncclSuccess) return err_runtime(e, "NCCL: no unique id (ncclGetUniqueId failed)");
    const char* spec = getenv("ARBOR_DIST_BOOTSTRAP");
    if (d->world > 1 && (spec && *spec ? dist_bootstrap_share(d, spec, &id, sizeof id, e)
                                       : dist_broadcast(d, &id, sizeof id / 2, DIST_BF16, 0, e)))
        return err_prefix(e, "the NCCL id");
    Nccl* x = xcalloc(1, sizeof *x);
    x->device = device;
    c->impl = x;
    if (cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking) != cudaSuccess ||
        cudaEventCreateWithFlags(&x->compute_done, cudaEventDisableTiming) != cudaSuccess ||
        cudaEventCreateWithFlags(&x->comm_done, cudaEventDisableTiming) != cudaSuccess)
        return err_runtime(e, "CUDA: communication stream: %s", cudaGetErrorString(cudaGetLastError()));
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclResult_t rc = ncclCommInitRankConfig(&x->comm, d->world, id, d->rank, &config);
    if (rc != ncclSuccess && rc != ncclInProgress)
        return err_runtime(e, "rank %d of %d: NCCL init failed: %s", d->rank, d->world, ncclGetErrorString(rc));
    return settle(c, 0, "init", e);
}
