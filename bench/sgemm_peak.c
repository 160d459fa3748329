// sgemm_peak.c: the ceiling the CPU backend's matmuls can reach on this machine: cblas_sgemm GFLOP/s
// on square matrices and on the shapes of a Qwen3-0.6B prefill (128 tokens), sgemv for batch-1
// decode, and the memory read bandwidth that bounds decode. Best of a few runs each.
// Usage: bench_sgemm_peak [threads]   (default: OpenMP's choice, OMP_NUM_THREADS)
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/check.h"
#include "kernels/cpu/sgemm_rate.h"
#include "kernels/clock.h"

// best GB/s of reading n floats (the ceiling of batch-1 decode, which streams every weight once)
static double read_gbps(size_t n, int reps) {
    float* a = xaligned_alloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 7);
    double best = 1e30, sink = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp parallel for reduction(+ : s0, s1, s2, s3)
        for (size_t i = 0; i < n; i += 4) {
            s0 += a[i];
            s1 += a[i + 1];
            s2 += a[i + 2];
            s3 += a[i + 3];
        }
        double dt = now_seconds() - t0;
        sink += s0 + s1 + s2 + s3;
        if (dt < best) best = dt;
    }
    free(a);
    return sink == -1 ? 0 : sizeof(float) * n / best * 1e-9;
}

int main(int argc, char** argv) {
    if (argc > 1) omp_set_num_threads(atoi(argv[1]));
    printf("threads %d\n%-34s %10s\n", omp_get_max_threads(), "shape (M x N x K)", "GFLOP/s");
    int square[] = {512, 1024, 2048};
    for (int i = 0; i < 3; i++) printf("sgemm square %-21d %10.1f\n", square[i], sgemm_gflops(square[i], square[i], square[i], 5));
    // Qwen3-0.6B prefill of 128 tokens: q (2048), k/v (1024), o (1024 <- 2048), gate/up (3072), down
    const struct {
        const char* name;
        int M, N, K;
    } shapes[] = {
        {"q_proj   128 x 2048 x 1024", 128, 2048, 1024}, {"k_proj   128 x 1024 x 1024", 128, 1024, 1024},
        {"o_proj   128 x 1024 x 2048", 128, 1024, 2048}, {"gate/up  128 x 3072 x 1024", 128, 3072, 1024},
        {"down     128 x 1024 x 3072", 128, 1024, 3072}, {"lm_head  sgemm 1 x 151936 x 1024", 1, 151936, 1024},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        printf("%-34s %10.1f\n", shapes[i].name, sgemm_gflops(shapes[i].M, shapes[i].N, shapes[i].K, 5));
    printf("%-34s %10.1f\n", "lm_head  sgemv 151936 x 1024", sgemv_gflops(151936, 1024, 5));
    printf("%-34s %10.1f GB/s\n", "memory read, 1 GiB", read_gbps((size_t)1 << 28, 5));
    return 0;
}
