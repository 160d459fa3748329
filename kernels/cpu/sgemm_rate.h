// sgemm_rate.h: how fast cblas_sgemm runs here — the ceiling the CPU backend's matmuls are measured
// against (arbor bench, bench/sgemm_peak.c).
#pragma once
#include <stddef.h>

// Best GFLOP/s over `reps` runs of out (M,N) = a (M,K) @ b (N,K)^T, the layout the model uses.
double sgemm_gflops(int M, int N, int K, int reps);
// Best GFLOP/s over `reps` runs of out (N) = w (N,K) @ x (K) through cblas_sgemv.
double sgemv_gflops(int N, int K, int reps);
// Memory read bandwidth in GB/s: the best of `reps` passes summing `bytes` of floats on all threads, as an
// OpenMP simd reduction (vector accumulators that do not wait on each other: memory is the limit).
double read_bandwidth_gbs(size_t bytes, int reps);
