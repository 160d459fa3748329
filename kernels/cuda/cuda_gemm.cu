// cuda_gemm.cu: out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias through cuBLASLt, bf16 operands,
// fp32 accumulation, bias added in the epilogue. Row-major tensors seen column-major: the weight is
// a (C x OC) matrix used transposed, the input a (C x N) one, the output (OC x N) = row-major (N,OC).
// Each shape's descriptors, layouts and chosen algorithm are made once and kept in the context
// (llm.c's wart of creating them per call is avoided); only the bias pointer is set per call.
#include "cuda_internal.h"

static GemmPlan* plan_for(CudaContext* ctx, int N, int C, int OC, int has_bias, int out_f32) {
    for (int i = 0; i < ctx->n_plans; i++) {
        GemmPlan* p = &ctx->plans[i];
        if (p->N == N && p->C == C && p->OC == OC && p->has_bias == has_bias && p->out_f32 == out_f32) return p;
    }
    if (ctx->capturing) FATAL("GEMM %dx%dx%d first seen during graph capture: run the step once before capturing", N, C, OC);
    if (ctx->n_plans == CUDA_MAX_GEMM_PLANS) FATAL("more than %d GEMM shapes in one context", CUDA_MAX_GEMM_PLANS);
    GemmPlan* p = &ctx->plans[ctx->n_plans];
    p->N = N, p->C = C, p->OC = OC, p->has_bias = has_bias, p->out_f32 = out_f32;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb));
    if (has_bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        cudaDataType_t bias_type = CUDA_R_16BF;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type));
    }
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, C, OC, C));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, C, N, C));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->d, out_f32 ? CUDA_R_32F : CUDA_R_16BF, OC, N, OC));
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &ctx->workspace_bytes, sizeof ctx->workspace_bytes));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx->lt, p->desc, p->a, p->b, p->d, p->d, pref, 1, &result, &found));
    cublasLtMatmulPreferenceDestroy(pref);
    if (found == 0) FATAL("cuBLASLt has no algorithm for a bf16 GEMM of N=%d C=%d OC=%d", N, C, OC);
    p->algo = result.algo;
    ctx->n_plans++;
    return p;
}

extern "C" void cuda_matmul_forward(CudaContext* ctx, void* out, int out_f32, const bf16* inp, const bf16* weight,
                                    const bf16* bias, int N, int C, int OC) {
    if (N == 0) return;
    GemmPlan* p = plan_for(ctx, N, C, OC, bias != NULL, out_f32 != 0);
    if (bias)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    const float alpha = 1.0f, beta = 0.0f;
    CUBLAS_CHECK(cublasLtMatmul(ctx->lt, p->desc, &alpha, weight, p->a, inp, p->b, &beta, out, p->d, out, p->d,
                                &p->algo, ctx->workspace, ctx->workspace_bytes, ctx->stream));
}
