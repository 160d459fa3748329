// few_rows.c: the decode matmul (1-15 rows against a weight matrix) as the CPU backend runs it with
// fp32, bf16 and fp16 weights (matmul_forward, matmul_forward_16) beside cblas_sgemm on the same
// shapes, in interleaved rounds: GFLOP/s and the weight GB/s each reaches (the weight is read once per
// call: the rows multiply the work, not the bytes). Median of the rounds. Usage: bench_few_rows [OC C]   (default 3072 1024, Qwen3-0.6B's up)
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness/cpu_policy.h"
#include "kernels/check.h"
#include "kernels/clock.h"
#include "kernels/dtype.h"
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
    uint16_t* wb = xaligned_alloc(sizeof(uint16_t) * (size_t)OC * C);
    uint16_t* wh = xaligned_alloc(sizeof(uint16_t) * (size_t)OC * C);
    float* x = xaligned_alloc(sizeof(float) * 16 * (size_t)C);
    float* y = xaligned_alloc(sizeof(float) * 16 * (size_t)OC);
    float* scratch = xaligned_alloc(sizeof(float) * WIDEN_ROWS * (size_t)C);
    for (size_t i = 0; i < (size_t)OC * C; i++) {
        w[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
        wb[i] = f32_to_bf16(w[i]);
        wh[i] = f32_to_f16(w[i]);
    }
    for (size_t i = 0; i < 16 * (size_t)C; i++) x[i] = (float)(i % 97) * 1e-2f;
    printf("weights %d x %d (%.1f MB fp32); GFLOP/s and weight GB/s, median of the rounds\n", OC, C, 4.0 * OC * C / 1e6);
    printf("%-5s %9s %8s | %9s %8s | %9s %8s | %9s %8s\n", "rows", "fp32", "GB/s", "bf16", "GB/s", "f16", "GB/s", "sgemm",
           "GB/s");
    enum { ROUNDS = 7, CALLS = 20, KINDS = 4 };
    int rows[] = {1, 2, 4, 8, 12, 15};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        int N = rows[r];
        double t[KINDS][ROUNDS];
        for (int k = 0; k < ROUNDS; k++)  // the kinds side by side, alternating
            for (int kind = 0; kind < KINDS; kind++) {
                double t0 = now_seconds();
                for (int i = 0; i < CALLS; i++) {
                    if (kind == 0) op->matmul_forward(y, x, w, NULL, N, C, OC);
                    if (kind == 1) op->matmul_forward_16(y, x, wb, WEIGHT_BF16, NULL, N, C, OC, scratch);
                    if (kind == 2) op->matmul_forward_16(y, x, wh, WEIGHT_F16, NULL, N, C, OC, scratch);
                    if (kind == 3) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, x, C, w, C, 0.0f, y, OC);
                }
                t[kind][k] = (now_seconds() - t0) / CALLS;
            }
        double flop = 2.0 * N * (double)OC * C, bytes[KINDS] = {4, 2, 2, 4};
        printf("%-5d", N);
        for (int kind = 0; kind < KINDS; kind++) {
            qsort(t[kind], ROUNDS, sizeof(double), cmp);
            double mid = t[kind][ROUNDS / 2];
            printf(" %9.1f %8.2f %s", flop / mid / 1e9, bytes[kind] * OC * C / mid / 1e9, kind < KINDS - 1 ? "|" : "");
        }
        printf("\n");
    }
    free(w), free(wb), free(wh), free(x), free(y), free(scratch);
    return 0;
}
