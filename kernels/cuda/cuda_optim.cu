// cuda_optim.cu: AdamW on fp32 master weights with a bf16 copy for the forward, and the gradient's
// sum of squares (for global-norm clipping) in a fixed reduction order.
#include <math.h>

#include "cuda_internal.h"

extern "C" {
#include "cuda_train_ops.h"
}

__device__ __forceinline__ uint32_t hash32(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)(x ^ (x >> 31));
}

// fp32 -> bf16 rounding stochastically: add 16 random low bits, truncate (unbiased in expectation)
__device__ __forceinline__ __nv_bfloat16 to_bf_stochastic(float x, uint32_t r) {
    uint32_t u = __float_as_uint(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return __float2bfloat16_rn(x);  // inf, NaN
    u += r & 0xffffu;
    u &= 0xffff0000u;
    return __float2bfloat16_rn(__uint_as_float(u));  // exact: the low bits are zero
}

__global__ void adamw_kernel(float* master, __nv_bfloat16* param, const float* grad, float* m, float* v, size_t n,
                             float beta1, float beta2, float eps, float decay, float step_size, float bc2_sqrt,
                             float grad_scale, uint64_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = grad[i] * grad_scale;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        float p = master[i] * decay;
        p -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
        m[i] = mi, v[i] = vi, master[i] = p;
        param[i] = seed ? to_bf_stochastic(p, hash32(seed * 0x100000001b3ull + i)) : to_bf(p);
    }
}

extern "C" void cuda_adamw(CudaContext* ctx, float* master, bf16* param, const float* grad, float* m, float* v, size_t n,
                           float beta1, float beta2, float eps, float decay, float step_size, float bc2_sqrt,
                           float grad_scale, uint64_t seed) {
    if (n == 0) return;
    size_t blocks = (n + 255) / 256;
    adamw_kernel<<<(int)(blocks < 65535 ? blocks : 65535), 256, 0, ctx->stream>>>(
        master, BF(param), grad, m, v, n, beta1, beta2, eps, decay, step_size, bc2_sqrt, grad_scale, seed);
    CUDA_CHECK_LAUNCH();
}

#define SQ_BLOCKS 256
#define SQ_THREADS 256

// thread gid sums its strided elements in index order; the block tree is fixed; partial[block]
__global__ void sum_squares_kernel(double* partial, const float* g, size_t n) {
    __shared__ double part[SQ_THREADS / 32];
    size_t gid = blockIdx.x * (size_t)SQ_THREADS + threadIdx.x, stride = (size_t)SQ_BLOCKS * SQ_THREADS;
    double acc = 0.0;
    for (size_t i = gid; i < n; i += stride) acc += (double)g[i] * g[i];
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int w = 0; w < SQ_THREADS / 32; w++) t += part[w];
        partial[blockIdx.x] = t;
    }
}

__global__ void sum_partials_kernel(double* out, const double* partial) {
    double t = 0.0;
    for (int b = 0; b < SQ_BLOCKS; b++) t += partial[b];
    *out = t;
}

extern "C" double cuda_sum_squares(CudaContext* ctx, const float* g, size_t n) {
    double* partial = (double*)cuda_scratch(ctx, sizeof(double) * (SQ_BLOCKS + 1));
    sum_squares_kernel<<<SQ_BLOCKS, SQ_THREADS, 0, ctx->stream>>>(partial, g, n);
    CUDA_CHECK_LAUNCH();
    sum_partials_kernel<<<1, 1, 0, ctx->stream>>>(partial + SQ_BLOCKS, partial);
    CUDA_CHECK_LAUNCH();
    double total = 0.0;
    cuda_download(ctx, &total, partial + SQ_BLOCKS, sizeof(double));
    return total;
}
