// cuda_probe.cu: see cuda_probe.h.
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "cuda_probe.h"
}

#define CUDA_TRY(call, why, why_len)                                                              \
    do {                                                                                          \
        cudaError_t err_ = (call);                                                                \
        if (err_ != cudaSuccess) {                                                                \
            snprintf(why, why_len, "%s at %s:%d", cudaGetErrorString(err_), __FILE__, __LINE__); \
            return -1;                                                                            \
        }                                                                                         \
    } while (0)

// y (n) = a * x (n) + y (n)
__global__ void axpy_kernel(float a, const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}

extern "C" int arbor_cuda_axpy_parity(int n, float* max_abs_diff, char* why, int why_len) {
    float* x = (float*)malloc(sizeof(float) * n);
    float* y = (float*)malloc(sizeof(float) * n);
    float* back = (float*)malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) {
        x[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
        y[i] = (float)((i * 13) % 97) / 97.0f;
    }
    float *dx, *dy;
    CUDA_TRY(cudaMalloc(&dx, sizeof(float) * n), why, why_len);
    CUDA_TRY(cudaMalloc(&dy, sizeof(float) * n), why, why_len);
    CUDA_TRY(cudaMemcpy(dx, x, sizeof(float) * n, cudaMemcpyHostToDevice), why, why_len);
    CUDA_TRY(cudaMemcpy(dy, y, sizeof(float) * n, cudaMemcpyHostToDevice), why, why_len);
    axpy_kernel<<<(n + 255) / 256, 256>>>(1.5f, dx, dy, n);
    CUDA_TRY(cudaGetLastError(), why, why_len);
    CUDA_TRY(cudaMemcpy(back, dy, sizeof(float) * n, cudaMemcpyDeviceToHost), why, why_len);
    float worst = 0.0f;
    for (int i = 0; i < n; i++) worst = fmaxf(worst, fabsf(back[i] - (1.5f * x[i] + y[i])));
    *max_abs_diff = worst;
    cudaFree(dx);
    cudaFree(dy);
    free(x);
    free(y);
    free(back);
    return 0;
}
