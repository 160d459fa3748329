// dist.c: see dist.h.
#include "dist.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef ARBOR_HAVE_MPI
#include <mpi.h>
#endif

static int env_int(const char* name, int* out) {
    const char* v = getenv(name);
    if (!v || !*v) return 0;
    char* end;
    long x = strtol(v, &end, 10);
    if (*end || x < 0 || x > 1 << 24) return 0;
    *out = (int)x;
    return 1;
}

// the launcher's view: rank, world size, local rank
static void from_env(Dist* d) {
    struct {
        const char *name, *rank, *size, *local;
    } launchers[] = {
        {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
        {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
        {"pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
    };
    d->rank = 0, d->world = 1, d->local_rank = 0;
    snprintf(d->launcher, sizeof d->launcher, "none");
    for (size_t i = 0; i < sizeof launchers / sizeof launchers[0]; i++) {
        int rank, size;
        if (env_int(launchers[i].rank, &rank) && env_int(launchers[i].size, &size) && size >= 1 && rank < size) {
            d->rank = rank, d->world = size;
            if (!env_int(launchers[i].local, &d->local_rank)) d->local_rank = 0;
            snprintf(d->launcher, sizeof d->launcher, "%s", launchers[i].name);
            return;
        }
    }
}

int dist_init(Dist* d, Err* e) {
    memset(d, 0, sizeof *d);
    from_env(d);
    d->timeout_s = 900;
    if (getenv("ARBOR_DIST_TIMEOUT")) {
        int t;
        if (!env_int("ARBOR_DIST_TIMEOUT", &t) || t < 1) return err_set(e, "ARBOR_DIST_TIMEOUT must be a positive number of seconds");
        d->timeout_s = t;
    }
    if (d->world == 1) return 0;
#ifdef ARBOR_HAVE_MPI
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err_set(e, "MPI_Init failed (launched by %s as rank %d of %d)", d->launcher, d->rank, d->world);
    d->mpi = 1;
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank != d->rank || size != d->world) {
        int r = d->rank, w = d->world;
        d->rank = rank, d->world = size;
        return err_set(e, "%s says rank %d of %d but MPI says rank %d of %d: start the ranks with mpirun, or srun --mpi=pmix",
                       d->launcher, r, w, rank, size);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return 0;
#else
    return err_set(e, "launched by %s as rank %d of %d, but this arbor was built without MPI: install an MPI "
                      "(Debian: libopenmpi-dev) and rebuild, or run one process",
                   d->launcher, d->rank, d->world);
#endif
}

void dist_finish(Dist* d) {
#ifdef ARBOR_HAVE_MPI
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = 0;
}

void dist_abort(const Dist* d, int code) {
#ifdef ARBOR_HAVE_MPI
    if (d->mpi) {
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
#endif
    (void)d, (void)code;
}

#ifdef ARBOR_HAVE_MPI
// The watchdog: every collective runs under an alarm; a rank that waits past the bound (another rank hung
// or stopped: a dead one is ended by the launcher) writes one line and exits, and the launcher ends the
// rest. The message is made before the wait: the handler only writes it. (Process-wide by nature: one
// alarm per process.)
static char watchdog_line[256];

static void on_watchdog(int sig) {
    (void)sig;
    ssize_t ignored = write(2, watchdog_line, strlen(watchdog_line));
    (void)ignored;
    _exit(1);
}

static void watch(const Dist* d, const char* what) {
    snprintf(watchdog_line, sizeof watchdog_line,
             "arbor: rank %d of %d: no answer from the other ranks within %d s (%s): ending this rank\n", d->rank, d->world,
             d->timeout_s, what);
    signal(SIGALRM, on_watchdog);
    alarm((unsigned)d->timeout_s);
}

static void unwatch(void) { alarm(0); }

static int mpi_check(int rc, const char* what, Err* e) {
    if (rc == MPI_SUCCESS) return 0;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return err_runtime(e, "MPI %s failed: %s", what, msg);
}

// MPI counts are ints: large buffers go in pieces of at most MPI_PIECE values; the count of the piece at
// `at` of a range ending at `end`
enum { MPI_PIECE = 1 << 28 };
static int piece(size_t at, size_t end) { return (int)(end - at < MPI_PIECE ? end - at : MPI_PIECE); }
#endif

size_t dist_type_size(DistType t) { return t == DIST_F64 ? 8 : t == DIST_F32 ? 4 : 2; }

#ifdef ARBOR_HAVE_MPI
static MPI_Datatype mpi_type(DistType t) { return t == DIST_F64 ? MPI_DOUBLE : t == DIST_F32 ? MPI_FLOAT : MPI_UINT16_T; }
static char* at_elem(void* buf, size_t i, DistType t) { return (char*)buf + i * dist_type_size(t); }
#endif

int dist_all_reduce(const Dist* d, void* buf, size_t n, DistType t, Err* e) {
    if (d->world == 1) return 0;
    if (t == DIST_BF16) return err_set(e, "all-reduce: bf16 sums run on the GPU path (NCCL); the CPU path sums fp32 or fp64");
#ifdef ARBOR_HAVE_MPI
    watch(d, "all-reduce");
    for (size_t at = 0; at < n; at += MPI_PIECE) {
        int count = piece(at, n);
        if (mpi_check(MPI_Allreduce(MPI_IN_PLACE, at_elem(buf, at, t), count, mpi_type(t), MPI_SUM, MPI_COMM_WORLD), "all-reduce", e))
            return unwatch(), -1;
    }
    unwatch();
    return 0;
#else
    (void)buf, (void)n;
    return err_set(e, "no MPI");
#endif
}

int dist_reduce_scatter(const Dist* d, void* buf, const size_t* bounds, DistType t, Err* e) {
    if (d->world == 1) return 0;
    if (t == DIST_BF16) return err_set(e, "reduce-scatter: bf16 sums run on the GPU path (NCCL); the CPU path sums fp32 or fp64");
#ifdef ARBOR_HAVE_MPI
    // a reduce-scatter with the ranges given: one reduce per range to its owner keeps counts in int
    // range and the owner's slice in place
    watch(d, "reduce-scatter");
    for (int r = 0; r < d->world; r++) {
        for (size_t at = bounds[r]; at < bounds[r + 1]; at += MPI_PIECE) {
            int count = piece(at, bounds[r + 1]);
            void* send = d->rank == r ? MPI_IN_PLACE : (void*)at_elem(buf, at, t);
            if (mpi_check(MPI_Reduce(send, at_elem(buf, at, t), count, mpi_type(t), MPI_SUM, r, MPI_COMM_WORLD), "reduce-scatter", e))
                return unwatch(), -1;
        }
    }
    unwatch();
    return 0;
#else
    (void)buf, (void)bounds;
    return err_set(e, "no MPI");
#endif
}

#ifdef ARBOR_HAVE_MPI
// elements [lo, hi) of buf from rank root to every rank, in int-sized pieces (under the caller's watch)
static int bcast_range(void* buf, size_t lo, size_t hi, DistType t, int root, const char* what, Err* e) {
    for (size_t at = lo; at < hi; at += MPI_PIECE)
        if (mpi_check(MPI_Bcast(at_elem(buf, at, t), piece(at, hi), mpi_type(t), root, MPI_COMM_WORLD), what, e)) return -1;
    return 0;
}
#endif

int dist_all_gather_ranges(const Dist* d, void* buf, const size_t* bounds, DistType t, Err* e) {
    if (d->world == 1) return 0;
#ifdef ARBOR_HAVE_MPI
    watch(d, "all-gather");
    int rc = 0;
    for (int r = 0; r < d->world && !rc; r++) rc = bcast_range(buf, bounds[r], bounds[r + 1], t, r, "all-gather", e);
    unwatch();
    return rc;
#else
    (void)buf, (void)bounds, (void)t;
    return err_set(e, "no MPI");
#endif
}

int dist_broadcast(const Dist* d, void* buf, size_t n, DistType t, int root, Err* e) {
    if (d->world == 1) return 0;
#ifdef ARBOR_HAVE_MPI
    watch(d, "broadcast");
    int rc = bcast_range(buf, 0, n, t, root, "broadcast", e);
    unwatch();
    return rc;
#else
    (void)buf, (void)n, (void)t, (void)root;
    return err_set(e, "no MPI");
#endif
}

int dist_sum_doubles(const Dist* d, double* buf, size_t n, Err* e) { return dist_all_reduce(d, buf, n, DIST_F64, e); }

int dist_sum_doubles_scatter(const Dist* d, double* buf, const size_t* bounds, Err* e) {
    return dist_reduce_scatter(d, buf, bounds, DIST_F64, e);
}

int dist_all_gather(const Dist* d, const void* mine, size_t bytes, void* all, Err* e) {
    if (d->world == 1) {
        memmove(all, mine, bytes);
        return 0;
    }
#ifdef ARBOR_HAVE_MPI
    if (bytes > (size_t)MPI_PIECE) return err_set(e, "all-gather of %zu bytes per rank is too large", bytes);
    watch(d, "all-gather");
    int rc = mpi_check(MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD), "all-gather", e);
    unwatch();
    return rc;
#else
    return err_set(e, "no MPI");
#endif
}

int dist_all_gather_floats(const Dist* d, float* buf, const size_t* bounds, Err* e) {
    return dist_all_gather_ranges(d, buf, bounds, DIST_F32, e);
}

int dist_gather_floats_to_root(const Dist* d, const float* mine, float* full, const size_t* bounds, Err* e) {
    if (d->world == 1) {
        memmove(full, mine, sizeof(float) * bounds[1]);
        return 0;
    }
#ifdef ARBOR_HAVE_MPI
    if (d->rank == 0) memcpy(full, mine, sizeof(float) * (bounds[1] - bounds[0]));
    watch(d, "gather to rank 0");
    for (int r = 1; r < d->world; r++)
        for (size_t at = bounds[r]; at < bounds[r + 1]; at += MPI_PIECE) {
            int count = piece(at, bounds[r + 1]);
            int rc = MPI_SUCCESS;
            if (d->rank == r) rc = MPI_Send(mine + (at - bounds[r]), count, MPI_FLOAT, 0, 7, MPI_COMM_WORLD);
            else if (d->rank == 0) rc = MPI_Recv(full + at, count, MPI_FLOAT, r, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (mpi_check(rc, "gather", e)) return unwatch(), -1;
        }
    unwatch();
    return 0;
#else
    (void)mine, (void)full, (void)bounds;
    return err_set(e, "no MPI");
#endif
}

int dist_all_ok(const Dist* d, int ok) {
    if (d->world == 1) return ok != 0;
#ifdef ARBOR_HAVE_MPI
    int mine = ok != 0, all = 0;
    watch(d, "agreement");
    int rc = MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    unwatch();
    return rc == MPI_SUCCESS ? all : 0;
#else
    return 0;
#endif
}

int dist_check_same(const Dist* d, uint64_t hash, const char* what, Err* e) {
    if (d->world == 1) return 0;
    uint64_t* all = xmalloc(sizeof(uint64_t) * (size_t)d->world);
    int rc = dist_all_gather(d, &hash, sizeof hash, all, e);
    for (int r = 1; r < d->world && !rc; r++)
        if (all[r] != all[0])
            rc = err_set(e, "rank %d of %d has other %s than rank 0 (hash %016llx, rank 0 %016llx): every rank must be "
                            "started with the same settings and files",
                         r, d->world, what, (unsigned long long)all[r], (unsigned long long)all[0]);
    free(all);
    return rc;
}
