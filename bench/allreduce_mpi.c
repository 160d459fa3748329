// allreduce_mpi.c: what the data-parallel trainer's collectives reach on this machine: the fp64 sum
// over ranks of a gradient-sized buffer (all-reduce, and the reduce-scatter ZeRO-1 uses), and the
// float all-gather of the parameters after a ZeRO-1 step. Median of the repeats, GB/s of buffer per
// second (algorithm bandwidth) and the bus bandwidth NCCL reports (x 2(W-1)/W for the all-reduce).
// Usage: mpirun -np W bench_allreduce_mpi [MIB ...]   (default 1 4 16 64)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/dist.h"
#include "kernels/clock.h"

static int cmp(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

int main(int argc, char** argv) {
    Dist d;
    Err e;
    if (dist_init(&d, &e)) {
        fprintf(stderr, "bench_allreduce_mpi: %s\n", e.msg);
        return 1;
    }
    int sizes[16] = {1, 4, 16, 64}, n_sizes = 4;
    if (argc > 1) {
        n_sizes = 0;
        for (int i = 1; i < argc && n_sizes < 16; i++) sizes[n_sizes++] = atoi(argv[i]);
    }
    if (d.rank == 0) printf("ranks %d (%s)\n%-10s %-16s %12s %12s\n", d.world, d.launcher, "MiB", "collective", "algo GB/s", "bus GB/s");
    enum { REPEATS = 9 };
    for (int s = 0; s < n_sizes; s++) {
        size_t bytes = (size_t)sizes[s] << 20, n = bytes / sizeof(double);
        double* buf = calloc(n, sizeof(double));
        size_t* bounds = malloc(sizeof(size_t) * (size_t)(d.world + 1));   // doubles, per rank
        size_t* fbounds = malloc(sizeof(size_t) * (size_t)(d.world + 1));  // the parameters: half as many bytes
        for (int r = 0; r <= d.world; r++) {
            bounds[r] = n * (size_t)r / (size_t)d.world;
            fbounds[r] = n * (size_t)r / (size_t)d.world;  // n floats: half the bytes of the fp64 sum
        }
        const char* names[3] = {"all-reduce", "reduce-scatter", "all-gather"};
        for (int k = 0; k < 3; k++) {
            double t[REPEATS];
            for (int i = 0; i < REPEATS; i++) {
                dist_all_ok(&d, 1);  // start together
                double t0 = now_seconds();
                int rc = k == 0   ? dist_sum_doubles(&d, buf, n, &e)
                         : k == 1 ? dist_sum_doubles_scatter(&d, buf, bounds, &e)
                                  : dist_all_gather_floats(&d, (float*)buf, fbounds, &e);
                t[i] = now_seconds() - t0;
                if (rc) {
                    fprintf(stderr, "rank %d: %s\n", d.rank, e.msg);
                    dist_abort(&d, 1);
                    return 1;
                }
            }
            qsort(t, REPEATS, sizeof(double), cmp);
            double moved = k == 2 ? (double)bytes / 2 : (double)bytes, algo = moved / t[REPEATS / 2] / 1e9;
            double bus = algo * (k == 0 ? 2.0 : 1.0) * (d.world - 1) / d.world;
            if (d.rank == 0) printf("%-10d %-16s %12.2f %12.2f\n", sizes[s], names[k], algo, bus);
        }
        free(fbounds);
        free(buf);
        free(bounds);
    }
    dist_finish(&d);
    return 0;
}
