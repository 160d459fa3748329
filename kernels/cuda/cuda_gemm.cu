// cuda_gemm.cu: every matrix product of the backend through cuBLASLt: bf16 operands, fp32
// accumulation, bias in the epilogue, bf16 or fp32 output, optionally added into the output
// (weight gradients). Row-major tensors are seen column-major: a row-major (R, C) matrix is a
// column-major (C, R) one. Each shape's descriptors, layouts and chosen algorithm are made once and
// kept in the context (llm.c's wart of creating them per call is avoided); only the bias pointer is
// set per call.
#include "cuda_internal.h"

static GemmPlan* plan_for(CudaContext* ctx, const GemmPlan* key) {
    for (int i = 0; i < ctx->n_plans; i++) {
        GemmPlan* p = &ctx->plans[i];
        if (p->transa == key->transa && p->transb == key->transb && p->m == key->m && p->n == key->n &&
            p->k == key->k && p->lda == key->lda && p->ldb == key->ldb && p->ldd == key->ldd && p->d_f32 == key->d_f32 &&
            p->accumulate == key->accumulate && p->has_bias == key->has_bias)
            return p;
    }
    if (ctx->capturing)
        FATAL("GEMM m=%d n=%d k=%d first seen during graph capture: run the step once before capturing", key->m, key->n,
              key->k);
    if (ctx->n_plans == CUDA_MAX_GEMM_PLANS) FATAL("more than %d GEMM shapes in one context", CUDA_MAX_GEMM_PLANS);
    GemmPlan* p = &ctx->plans[ctx->n_plans];
    *p = *key;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = p->transa ? CUBLAS_OP_T : CUBLAS_OP_N, tb = p->transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (p->has_bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        cudaDataType_t bias_type = CUDA_R_16BF;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type));
    }
    // stored shapes: op(A) is m x k, op(B) is k x n
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, p->transa ? p->k : p->m, p->transa ? p->m : p->k, p->lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, p->transb ? p->n : p->k, p->transb ? p->k : p->n, p->ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->d, p->d_f32 ? CUDA_R_32F : CUDA_R_16BF, p->m, p->n, p->ldd));
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &ctx->workspace_bytes, sizeof ctx->workspace_bytes));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx->lt, p->desc, p->a, p->b, p->d, p->d, pref, 1, &result, &found));
    cublasLtMatmulPreferenceDestroy(pref);
    if (found == 0)
        FATAL("cuBLASLt has no algorithm for a bf16 GEMM m=%d n=%d k=%d (transa %d, transb %d)", p->m, p->n, p->k,
              p->transa, p->transb);
    p->algo = result.algo;
    ctx->n_plans++;
    return p;
}

void cuda_gemm(CudaContext* ctx, int transa, int transb, int m, int n, int k, const bf16* A, int lda, const bf16* B,
               int ldb, void* D, int ldd, int d_f32, int accumulate, const bf16* bias) {
    if (m == 0 || n == 0) return;
    GemmPlan key = {transa != 0, transb != 0, m, n, k, lda, ldb, ldd, d_f32 != 0, accumulate != 0, bias != NULL};
    GemmPlan* p = plan_for(ctx, &key);
    if (bias)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    CUBLAS_CHECK(cublasLtMatmul(ctx->lt, p->desc, &alpha, A, p->a, B, p->b, &beta, D, p->d, D, p->d, &p->algo,
                                ctx->workspace, ctx->workspace_bytes, ctx->stream));
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
