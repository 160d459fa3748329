// few_rows.c: the batched-decode matmul (2-15 rows against a weight matrix) as the CPU backend runs it
// (kernels_cpu()->matmul_forward) beside cblas_sgemm on the same shapes, in interleaved rounds: GFLOP/s
// and the weight GB/s each reaches (the weight is read once per call: the rows multiply the work, not
// the bytes). Median of the rounds. Usage: bench_few_rows [OC C]   (default 3072 1024, Qwen3-0.6B's up)
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness/cpu_policy.h"
#include "kernels/check.h"
#include "kernels/clock.h"
#include "kernels/ops.h"

static int cmp(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

int main(int argc, char** argv) {
    cpu_policy_apply(argc, argv);  // OpenBLAS kernels for this CPU (and the wait policy), as arbor runs
    int OC = argc > 2 ? atoi(argv[1]) : 3072, C = argc > 2 ? atoi(argv[2]) : 1024;
    const KernelOps* op = kernels_cpu();
    float* w = xaligned_alloc(sizeof(float) * (size_t)OC * C);
    float* x = xaligned_alloc(sizeof(float) * 16 * (size_t)C);
    float* y = xaligned_alloc(sizeof(float) * 16 * (size_t)OC);
    for (size_t i = 0; i < (size_t)OC * C; i++) w[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < 16 * (size_t)C; i++) x[i] = (float)(i % 97) * 1e-2f;
    printf("weights %d x %d (%.1f MB)\n%-6s %14s %14s %14s %10s\n", OC, C, 4.0 * OC * C / 1e6, "rows", "arbor GFLOP/s",
           "arbor GB/s", "sgemm GFLOP/s", "ratio");
    enum { ROUNDS = 7, CALLS = 20 };
    int rows[] = {1, 2, 4, 8, 12, 15};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        int N = rows[r];
        double ta[ROUNDS], ts[ROUNDS];
        for (int k = 0; k < ROUNDS; k++) {  // the two side by side, alternating
            double t0 = now_seconds();
            for (int i = 0; i < CALLS; i++) op->matmul_forward(y, x, w, NULL, N, C, OC);
            ta[k] = (now_seconds() - t0) / CALLS;
            t0 = now_seconds();
            for (int i = 0; i < CALLS; i++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, x, C, w, C, 0.0f, y, OC);
            ts[k] = (now_seconds() - t0) / CALLS;
        }
        qsort(ta, ROUNDS, sizeof(double), cmp);
        qsort(ts, ROUNDS, sizeof(double), cmp);
        double flop = 2.0 * N * (double)OC * C, a = ta[ROUNDS / 2], s = ts[ROUNDS / 2];
        printf("%-6d %14.1f %14.2f %14.1f %10.2f\n", N, flop / a / 1e9, 4.0 * OC * C / a / 1e9, flop / s / 1e9, s / a);
    }
    free(w), free(x), free(y);
    return 0;
}
