// sgemm_rate.c: see sgemm_rate.h.
#include "sgemm_rate.h"

#include <cblas.h>
#include <stdlib.h>

#include "../check.h"
#include "../clock.h"

static float* filled(size_t n, int mod) {
    float* x = xaligned_alloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % (size_t)mod) * 0.1f;
    return x;
}

double sgemm_gflops(int M, int N, int K, int reps) {
    float *a = filled((size_t)M * K, 7), *b = filled((size_t)N * K, 5), *c = filled((size_t)M * N, 1);
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

double sgemv_gflops(int N, int K, int reps) {
    float *w = filled((size_t)N * K, 5), *x = filled((size_t)K, 3), *y = filled((size_t)N, 1);
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

double read_bandwidth_gbs(size_t bytes, int reps) {
    size_t n = bytes / sizeof(float);
    float* a = xaligned_alloc_uninit(n * sizeof(float));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 7);  // first touch by the thread that reads it
    double best = 0, sink = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_seconds();
        float total = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : total)
        for (size_t i = 0; i < n; i++) total += a[i];  // simd reduction: independent vector accumulators
        double dt = now_seconds() - t0;
        sink += total;
        if (dt > 0 && n * sizeof(float) / dt / 1e9 > best) best = n * sizeof(float) / dt / 1e9;
    }
    free(a);
    return sink < 0 ? -best : best;  // (sink keeps the sums alive; it is never negative)
}
