// cuda_internal.h: what the CUDA translation units share and C never sees: the CudaContext
// struct, the checked-call macros (file:line, fatal), launch helpers and bf16 conversions.
#pragma once
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" {
#include "../check.h"
#include "cuda_ops.h"
#include "../gemm_plan_cache.h"
}

#define CUDA_CHECK(call) cuda_check_at((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) cublas_check_at((call), #call, __FILE__, __LINE__)
// after every kernel launch: a bad launch configuration surfaces here, not at some later call
#define CUDA_CHECK_LAUNCH() cuda_check_at(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

static inline void cuda_check_at(cudaError_t err, const char* what, const char* file, int line) {
    if (err != cudaSuccess) fatal_at(file, line, ARBOR_EXIT_RUNTIME, "CUDA: %s: %s", what, cudaGetErrorString(err));
}

static inline void cublas_check_at(cublasStatus_t st, const char* what, const char* file, int line) {
    if (st != CUBLAS_STATUS_SUCCESS)
        fatal_at(file, line, ARBOR_EXIT_RUNTIME, "cuBLASLt: %s: status %d", what, (int)st);
}

// One cuBLASLt plan per GEMM shape (column-major, cuBLAS's convention: D (m,n) = op(A) op(B) [+ D]
// [+ bias]): made on first use, then reused (never per call).
typedef struct {  // the cuBLASLt objects of one GemmKey (kernels/gemm_plan_cache.h)
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatmulAlgo_t algo;
} GemmPlan;

// D (m,n) bf16, or fp32 when d_f32, = op(A) op(B) (+ D when accumulate) (+ bias (m) broadcast over
// columns); A, B bf16, column-major with leading dimensions lda, ldb, ldd.
void cuda_gemm(CudaContext* ctx, int transa, int transb, int m, int n, int k, const bf16* A, int lda, const bf16* B,
               int ldb, void* D, int ldd, int d_f32, int accumulate, const bf16* bias);
void cuda_gemm_plan_destroy(GemmPlan* p);


struct CudaContext {
    int device;
    cudaDeviceProp prop;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void* workspace;  // cuBLASLt's
    size_t workspace_bytes;
    GemmPlanCache plan_cache;  // which keys the plans below belong to (least recently used evicted)
    GemmPlan plans[GEMM_PLAN_CACHE_CAP];
    int capturing;  // inside cuda_graph_begin/end
    int gemv;       // 1 (default): cuda_matmul_forward takes the GEMV kernel for 1..8 rows
    void* scratch;  // cuda_scratch's buffer: one op's temporaries, never kept across calls
    size_t scratch_bytes;
};

// At least `bytes` of device memory owned by the context, valid until the next call that asks for
// scratch (growing it synchronises the device).
void* cuda_scratch(CudaContext* ctx, size_t bytes);

static inline int ceil_div(long long a, long long b) { return (int)((a + b - 1) / b); }

__device__ __forceinline__ float bf(const __nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ __nv_bfloat16 to_bf(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias for 1 <= N <= 8 and C % 8 == 0 (cuda_gemv.cu):
// the decode path of cuda_matmul_forward, streaming each weight row once
int cuda_gemv_supported(int N, int C);
void cuda_gemv(CudaContext* ctx, void* out, int out_f32, const bf16* inp, const bf16* weight, const bf16* bias, int N,
               int C, int OC);

struct SumOp {
    template <typename T>
    __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
    template <typename T>
    __device__ __forceinline__ T operator()(T a, T b) const { return a > b ? a : b; }
};

// v reduced over the block by op (identity: op's neutral value); every thread gets the result.
// blockDim.x a multiple of 32, at most 1024; all threads must call it. Fixed order: deterministic.
template <typename T, typename Op>
__device__ __forceinline__ T block_reduce(T v, Op op, T identity) {
    __shared__ T part[32];
    __shared__ T total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T t = lane < n_warps ? part[lane] : identity;
        for (int o = 16; o > 0; o >>= 1) t = op(t, __shfl_xor_sync(0xffffffffu, t, o));
        if (lane == 0) total = t;
    }
    __syncthreads();
    T r = total;
    __syncthreads();  // total and part may be rewritten by the next call
    return r;
}

__device__ __forceinline__ float block_sum(float v) { return block_reduce(v, SumOp(), 0.0f); }

#define BF(p) (reinterpret_cast<__nv_bfloat16*>(p))
#define CBF(p) (reinterpret_cast<const __nv_bfloat16*>(p))
