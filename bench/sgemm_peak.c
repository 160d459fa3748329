// sgemm_peak.c: the ceiling the CPU backend's matmuls can reach on this machine: cblas_sgemm GFLOP/s
// on square matrices and on the shapes of a Qwen3-0.6B prefill (128 tokens), best of a few runs.
// Usage: bench_sgemm_peak [threads]   (threads defaults to OpenBLAS's own choice)
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/check.h"

void openblas_set_num_threads(int n);

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// best GFLOP/s of out (M,N) = a (M,K) @ b (N,K)^T, the layout the model uses
static double best_gflops(int M, int N, int K, int reps) {
    float* a = xaligned_alloc(sizeof(float) * (size_t)M * K);
    float* b = xaligned_alloc(sizeof(float) * (size_t)N * K);
    float* c = xaligned_alloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        double dt = now_seconds() - t0;
        if (dt < best) best = dt;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * M * N * K / best * 1e-9;
}

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

// best GFLOP/s of out (N) = w (N,K) @ x (K) through sgemv
static double best_gemv_gflops(int N, int K, int reps) {
    float* w = xaligned_alloc(sizeof(float) * (size_t)N * K);
    float* x = xaligned_alloc(sizeof(float) * (size_t)K);
    float* y = xaligned_alloc(sizeof(float) * (size_t)N);
    for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, w, K, x, 1, 0.0f, y, 1);
        double dt = now_seconds() - t0;
        if (dt < best) best = dt;
    }
    free(w);
    free(x);
    free(y);
    return 2.0 * N * K / best * 1e-9;
}

int main(int argc, char** argv) {
    if (argc > 1) openblas_set_num_threads(atoi(argv[1]));
    printf("%-34s %10s\n", "shape (M x N x K)", "GFLOP/s");
    int square[] = {512, 1024, 2048};
    for (int i = 0; i < 3; i++) {
        int n = square[i];
        printf("square %4d                        %10.1f\n", n, best_gflops(n, n, n, 5));
    }
    // Qwen3-0.6B prefill of 128 tokens: q (2048), k/v (1024), o (1024 <- 2048), gate/up (3072), down
    const struct {
        const char* name;
        int M, N, K;
    } shapes[] = {
        {"q_proj   128 x 2048 x 1024", 128, 2048, 1024}, {"k_proj   128 x 1024 x 1024", 128, 1024, 1024},
        {"o_proj   128 x 1024 x 2048", 128, 1024, 2048}, {"gate/up  128 x 3072 x 1024", 128, 3072, 1024},
        {"down     128 x 1024 x 3072", 128, 1024, 3072}, {"lm_head    1 x 151936 x 1024", 1, 151936, 1024},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        printf("%-34s %10.1f\n", shapes[i].name, best_gflops(shapes[i].M, shapes[i].N, shapes[i].K, 5));
    printf("%-34s %10.1f\n", "lm_head  sgemv 151936 x 1024", best_gemv_gflops(151936, 1024, 5));
    printf("%-34s %10.1f GB/s\n", "memory read, 1 GiB", read_gbps((size_t)1 << 28, 5));
    return 0;
}
