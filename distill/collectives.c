// collectives.c: see collectives.h. The MPI implementation: each call is the typed MPI collective of
// dist.c, finished before it returns.
#include "collectives.h"

#include <string.h>

static int mpi_all_reduce(Collectives* c, void* buf, size_t n, DistType t, Err* e) { return dist_all_reduce(c->dist, buf, n, t, e); }
static int mpi_reduce_scatter(Collectives* c, void* buf, const size_t* bounds, DistType t, Err* e) {
    return dist_reduce_scatter(c->dist, buf, bounds, t, e);
}
static int mpi_all_gather(Collectives* c, void* buf, const size_t* bounds, DistType t, Err* e) {
    return dist_all_gather_ranges(c->dist, buf, bounds, t, e);
}
static int mpi_broadcast(Collectives* c, void* buf, size_t n, DistType t, int root, Err* e) {
    return dist_broadcast(c->dist, buf, n, t, root, e);
}
static int mpi_nothing(Collectives* c, Err* e) { return (void)c, (void)e, 0; }
static void mpi_no_stream(Collectives* c, void* stream) { (void)c, (void)stream; }
static void mpi_close(Collectives* c) { (void)c; }

static const CollectivesOps mpi_ops = {mpi_all_reduce, mpi_reduce_scatter, mpi_all_gather, mpi_broadcast, mpi_nothing,
                                       mpi_nothing,    mpi_no_stream,      mpi_no_stream,  mpi_nothing,   mpi_close};

void collectives_open_mpi(Collectives* c, const Dist* d) {
    memset(c, 0, sizeof *c);
    c->ops = &mpi_ops, c->name = "mpi", c->dist = d, c->rank = d->rank, c->world = d->world;
}

void collectives_close(Collectives* c) {
    if (c->ops) c->ops->close(c);
    memset(c, 0, sizeof *c);
}

int dist_cuda_device(const Dist* d, int device_count) { return device_count > 0 ? d->local_rank % device_count : 0; }

#ifndef ARBOR_HAVE_NCCL
int collectives_open_nccl(Collectives* c, const Dist* d, int device, Err* e) {
    (void)d, (void)device;
    memset(c, 0, sizeof *c);
    return err_set(e, "data parallel on the GPU needs NCCL, and this arbor was built without it (the CUDA toolkit's "
                      "or the nvidia-nccl wheel's libnccl: see docs/REPRODUCE.md)");
}
#endif
