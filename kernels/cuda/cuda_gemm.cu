// cuda_gemm.cu: every matrix product of the backend through cuBLASLt: bf16 operands, fp32
// accumulation, bias in the epilogue, bf16 or fp32 output, optionally added into the output
// (weight gradients). Row-major tensors are seen column-major: a row-major (R, C) matrix is a
// column-major (C, R) one. Each shape's descriptors, layouts and chosen algorithm are made once and
// kept in the context (llm.c's wart of creating them per call is avoided); which ones are kept, and
// which is evicted when the cache is full, is decided by kernels/gemm_plan_cache.c (plain C, tested
// on the CPU). Only the bias pointer is set per call.
//
// Bias: the epilogue adds a bf16 bias only to a bf16 output; cuBLASLt wants the bias in the output's
// type, so an fp32 output gets its bf16 bias from a small kernel after the product instead. If the
// heuristic offers no algorithm for a biased plan, the plan is remade without the epilogue and the
// kernel adds the bias. With no algorithm at all, the message names the shape, types and alignments.
#include "cuda_internal.h"

void cuda_gemm_plan_destroy(GemmPlan* p) {
    if (p->a) cublasLtMatrixLayoutDestroy(p->a);
    if (p->b) cublasLtMatrixLayoutDestroy(p->b);
    if (p->d) cublasLtMatrixLayoutDestroy(p->d);
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    memset(p, 0, sizeof *p);
}

// makes p for key; 0, or -1 when cuBLASLt offers no algorithm (p is left empty)
static int plan_make(CudaContext* ctx, const GemmKey* key, GemmPlan* p) {
    memset(p, 0, sizeof *p);
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = key->transa ? CUBLAS_OP_T : CUBLAS_OP_N, tb = key->transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (key->bias_epilogue) {  // bf16 output only (see above)
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        cudaDataType_t bias_type = CUDA_R_16BF;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type));
    }
    // stored shapes: op(A) is m x k, op(B) is k x n
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, key->transa ? key->k : key->m, key->transa ? key->m : key->k,
                                            key->lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, key->transb ? key->n : key->k, key->transb ? key->k : key->n,
                                            key->ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->d, key->d_f32 ? CUDA_R_32F : CUDA_R_16BF, key->m, key->n, key->ldd));
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ctx->workspace_bytes,
                                                      sizeof ctx->workspace_bytes));
    // the pointers' actual alignment (a per-layer slice of an arena can be less aligned than 256 bytes)
    uint32_t align[3] = {(uint32_t)key->align_a, (uint32_t)key->align_b, (uint32_t)key->align_d};
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align[0], sizeof align[0]));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align[1], sizeof align[1]));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align[2], sizeof align[2]));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align[2], sizeof align[2]));
    cublasLtMatmulHeuristicResult_t result;
    memset(&result, 0, sizeof result);
    int found = 0;
    // not CUBLAS_CHECK: "not supported" is an answer here, not a crash
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(ctx->lt, p->desc, p->a, p->b, p->d, p->d, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
        cuda_gemm_plan_destroy(p);
        return -1;
    }
    p->algo = result.algo;
    return 0;
}

// the plan for key (made, or found in the cache); the key's epilogue may be dropped (see above)
static GemmPlan* plan_for(CudaContext* ctx, GemmKey* key) {
    int build, evict;
    int slot = gemm_plan_cache_slot(&ctx->plan_cache, key, &build, &evict);
    GemmPlan* p = &ctx->plans[slot];
    if (!build) return p;
    if (ctx->capturing)
        FATAL("GEMM m=%d n=%d k=%d first seen during graph capture: run the step once before capturing", key->m, key->n,
              key->k);
    if (evict) cuda_gemm_plan_destroy(p);
    if (plan_make(ctx, key, p) == 0) return p;
    if (key->bias_epilogue) {  // remake without the epilogue, under its own key; the kernel adds the bias
        GemmKey plain = *key;
        plain.bias_epilogue = 0;
        if (plan_make(ctx, &plain, p) == 0) {
            gemm_plan_cache_mark_no_epilogue(&ctx->plan_cache, slot);  // the key stays as callers look it up
            return p;
        }
    }
    FATAL("cuBLASLt offers no algorithm for a GEMM m=%d n=%d k=%d (transa %d, transb %d, lda %d, ldb %d, ldd %d): bf16 "
          "operands, %s output%s, operand alignments %d/%d/%d bytes",
          key->m, key->n, key->k, key->transa, key->transb, key->lda, key->ldb, key->ldd, key->d_f32 ? "fp32" : "bf16",
          key->bias_epilogue ? " with a bias" : "", key->align_a, key->align_b, key->align_d);
}

// D (m,n) column-major, leading dimension ldd, += bias (m) broadcast over the columns
__global__ void add_bias_kernel(void* D, int d_f32, const bf16* bias, int m, int n, int ldd) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)m * n) return;
    int row = (int)(idx % (size_t)m), col = (int)(idx / (size_t)m);
    size_t at = (size_t)col * ldd + row;
    if (d_f32) ((float*)D)[at] += __bfloat162float(bias[row]);
    else ((bf16*)D)[at] = __float2bfloat16(__bfloat162float(((bf16*)D)[at]) + __bfloat162float(bias[row]));
}

void cuda_gemm(CudaContext* ctx, int transa, int transb, int m, int n, int k, const bf16* A, int lda, const bf16* B,
               int ldb, void* D, int ldd, int d_f32, int accumulate, const bf16* bias) {
    if (m == 0 || n == 0) return;
    GemmKey key;
    memset(&key, 0, sizeof key);
    key.transa = transa != 0, key.transb = transb != 0, key.m = m, key.n = n, key.k = k;
    key.lda = lda, key.ldb = ldb, key.ldd = ldd, key.d_f32 = d_f32 != 0, key.accumulate = accumulate != 0;
    key.bias_epilogue = bias && !d_f32;
    key.align_a = gemm_alignment(A), key.align_b = gemm_alignment(B), key.align_d = gemm_alignment(D);
    GemmPlan* p = plan_for(ctx, &key);
    int slot = (int)(p - ctx->plans);
    int epilogue = bias && gemm_plan_cache_epilogue(&ctx->plan_cache, slot);
    if (epilogue)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    CUBLAS_CHECK(cublasLtMatmul(ctx->lt, p->desc, &alpha, A, p->a, B, p->b, &beta, D, p->d, D, p->d, &p->algo,
                                ctx->workspace, ctx->workspace_bytes, ctx->stream));
    if (bias && !epilogue) {
        size_t total = (size_t)m * n;
        add_bias_kernel<<<(unsigned)((total + 255) / 256), 256, 0, ctx->stream>>>(D, d_f32, bias, m, n, ldd);
        CUDA_CHECK(cudaGetLastError());
    }
}

// out (N,OC) = inp (N,C) @ weight (OC,C)^T. Column-major: out is (OC x N) = op(A) B with A = the
// weight stored (C x OC) used transposed and B = the input stored (C x N).
extern "C" void cuda_matmul_forward(CudaContext* ctx, void* out, int out_f32, const bf16* inp, const bf16* weight,
                                    const bf16* bias, int N, int C, int OC) {
    if (N == 0) return;
    if (ctx->gemv && cuda_gemv_supported(N, C))  // decode: a few rows, bound by reading the weights
        cuda_gemv(ctx, out, out_f32, inp, weight, bias, N, C, OC);
    else
        cuda_gemm(ctx, 1, 0, OC, N, C, weight, C, inp, C, out, OC, out_f32, 0, bias);
}
