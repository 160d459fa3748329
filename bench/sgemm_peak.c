// sgemm_peak.c: the ceiling the CPU backend's matmuls can reach on this machine: cblas_sgemm GFLOP/s
// on square matrices and on the shapes of a Qwen3-0.6B prefill (128 tokens), sgemv for batch-1
// decode, and the memory bandwidth that bounds decode (a read with independent accumulators, and a
// STREAM-style triad). Best of a few runs each.
// Usage: bench_sgemm_peak [threads]   (default: OpenMP's choice, OMP_NUM_THREADS)
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness/cpu_policy.h"
#include "kernels/check.h"
#include "kernels/cpu/sgemm_rate.h"
#include "kernels/clock.h"

// best GB/s of a STREAM-style triad a[i] = b[i] + s * c[i] over n floats each: two streams read, one
// written (counted as 3 x 4 bytes per element; write-allocate traffic not counted, as STREAM does)
static double triad_gbps(size_t n, int reps) {
    float *a = xaligned_alloc(sizeof(float) * n), *b = xaligned_alloc(sizeof(float) * n), *c = xaligned_alloc(sizeof(float) * n);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = 0, b[i] = (float)(i & 7), c[i] = (float)(i & 3);  // first touch where read
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 0.5f * c[i];
        double dt = now_seconds() - t0;
        if (dt < best) best = dt;
    }
    double check = a[n / 2];
    free(a), free(b), free(c);
    return check < 0 ? 0 : 3.0 * sizeof(float) * n / best * 1e-9;
}

int main(int argc, char** argv) {
    cpu_policy_apply(argc, argv);  // OpenBLAS kernels for this CPU (and the wait policy), as arbor runs
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
    // independent vector accumulators (kernels/cpu/sgemm_rate.c): the bandwidth decode can reach, the
    // same measure arbor bench reports its decode against
    printf("%-34s %10.1f GB/s\n", "memory read, 1 GiB", read_bandwidth_gbs((size_t)1 << 30, 5));
    printf("%-34s %10.1f GB/s\n", "memory triad, 3 x 256 MiB", triad_gbps((size_t)1 << 26, 5));
    return 0;
}
