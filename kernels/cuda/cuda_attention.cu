// cuda_attention.cu: causal GQA attention of N packed rows against the bf16 KV cache (prefill and
// decode alike, with the shared-prefix rule of ops.h's attention_forward).
//
// One block per (row, query head); its warps take the row's keys round-robin, two keys per step so
// that two loads are in flight, each lane holding HS/32 of the head's dimensions. Each warp keeps
// an online softmax (running max m, sum l, weighted values acc); the warps' partial results are
// merged through shared memory at the end. fp32 throughout; the output is rounded to bf16 once.
// This is the general, simple version: a tensor-core flash kernel for long prefills and a
// split-over-keys version for long decodes are the next steps (see docs/cuda_notes.md).
#include <math.h>

#include "cuda_internal.h"

#define ATT_WARPS 8
#define ATT_MAX_HS 256
#define ATT_DIMS_PER_LANE (ATT_MAX_HS / 32)

__device__ __forceinline__ size_t cache_at(int s, int p, int g, int L, int NKV, int HS) {
    return (((size_t)s * L + p) * NKV + g) * HS;
}

__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_kernel(__nv_bfloat16* out, const __nv_bfloat16* q, int q_stride, const __nv_bfloat16* kcache,
                     const __nv_bfloat16* vcache, const int* seq, const int* pos, int NH, int NKV, int HS, int L,
                     int prefix_seq, int prefix_len, float scale) {
    __shared__ float part_m[ATT_WARPS], part_l[ATT_WARPS];
    __shared__ float part_acc[ATT_WARPS][ATT_MAX_HS];
    int n = blockIdx.x, h = blockIdx.y;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int g = h / (NH / NKV);
    int s = seq[n], last = pos[n];
    const __nv_bfloat16* qrow = q + (size_t)n * q_stride + (size_t)h * HS;

    float qv[ATT_DIMS_PER_LANE], acc[ATT_DIMS_PER_LANE];
#pragma unroll
    for (int i = 0; i < ATT_DIMS_PER_LANE; i++) {
        int d = lane + 32 * i;
        qv[i] = d < HS ? bf(qrow[d]) * scale : 0.0f;
        acc[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int p0 = warp; p0 <= last; p0 += 2 * ATT_WARPS) {
        int p1 = p0 + ATT_WARPS;
        int has1 = p1 <= last;
        size_t b0 = cache_at(p0 < prefix_len ? prefix_seq : s, p0, g, L, NKV, HS);
        size_t b1 = has1 ? cache_at(p1 < prefix_len ? prefix_seq : s, p1, g, L, NKV, HS) : b0;
        float k0[ATT_DIMS_PER_LANE], k1[ATT_DIMS_PER_LANE], v0[ATT_DIMS_PER_LANE], v1[ATT_DIMS_PER_LANE];
#pragma unroll
        for (int i = 0; i < ATT_DIMS_PER_LANE; i++) {  // every load of both keys issued before any use
            int d = lane + 32 * i;
            int ok = d < HS;
            k0[i] = ok ? bf(kcache[b0 + d]) : 0.0f;
            k1[i] = ok ? bf(kcache[b1 + d]) : 0.0f;
            v0[i] = ok ? bf(vcache[b0 + d]) : 0.0f;
            v1[i] = ok ? bf(vcache[b1 + d]) : 0.0f;
        }
        float dot0 = 0.0f, dot1 = 0.0f;
#pragma unroll
        for (int i = 0; i < ATT_DIMS_PER_LANE; i++) {
            dot0 += qv[i] * k0[i];
            dot1 += qv[i] * k1[i];
        }
        dot0 = warp_sum(dot0);
        dot1 = has1 ? warp_sum(dot1) : -INFINITY;
        float m_new = fmaxf(m, fmaxf(dot0, dot1));
        float corr = expf(m - m_new), e0 = expf(dot0 - m_new), e1 = has1 ? expf(dot1 - m_new) : 0.0f;
        l = l * corr + e0 + e1;
#pragma unroll
        for (int i = 0; i < ATT_DIMS_PER_LANE; i++) acc[i] = acc[i] * corr + e0 * v0[i] + e1 * v1[i];
        m = m_new;
    }
    if (lane == 0) {
        part_m[warp] = m;
        part_l[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < ATT_DIMS_PER_LANE; i++) {
        int d = lane + 32 * i;
        if (d < HS) part_acc[warp][d] = acc[i];
    }
    __syncthreads();
    // warp 0 saw position 0, so the overall max is finite; warps that saw no key carry m = -inf, weight 0
    float M = part_m[0];
    for (int w = 1; w < ATT_WARPS; w++) M = fmaxf(M, part_m[w]);
    float total = 0.0f;
    for (int w = 0; w < ATT_WARPS; w++) total += part_l[w] * expf(part_m[w] - M);
    for (int d = threadIdx.x; d < HS; d += blockDim.x) {
        float o = 0.0f;
        for (int w = 0; w < ATT_WARPS; w++) o += part_acc[w][d] * expf(part_m[w] - M);
        out[((size_t)n * NH + h) * HS + d] = to_bf(o / total);
    }
}

extern "C" void cuda_attention_forward(CudaContext* ctx, bf16* out, const bf16* q, int q_stride, const bf16* kcache,
                                       const bf16* vcache, const int* seq, const int* pos, int N, int NH, int NKV,
                                       int HS, int L, int prefix_seq, int prefix_len) {
    if (N == 0) return;
    if (HS > ATT_MAX_HS) FATAL("head_dim %d exceeds the CUDA attention kernel's %d", HS, ATT_MAX_HS);
    if (NH % NKV) FATAL("%d query heads are not a multiple of %d KV heads", NH, NKV);
    dim3 grid(N, NH);
    attention_kernel<<<grid, ATT_WARPS * 32, 0, ctx->stream>>>(BF(out), CBF(q), q_stride, CBF(kcache), CBF(vcache),
                                                               seq, pos, NH, NKV, HS, L, prefix_seq, prefix_len,
                                                               1.0f / sqrtf((float)HS));
    CUDA_CHECK_LAUNCH();
}
