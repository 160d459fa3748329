// cuda_attention.cu: causal GQA attention of N packed rows against the bf16 KV cache (prefill and
// decode alike, with the shared-prefix rule of ops.h's attention_forward).
//
// One block per (row, query head); its warps take the row's keys round-robin, two keys per step so
// that two loads are in flight, each lane holding HS/32 of the head's dimensions. Each warp keeps
// an online softmax (running max m, sum l, weighted values acc); the warps' partial results are
// merged through shared memory at the end. fp32 throughout; the output is rounded to bf16 once.
// Long contexts with few rows (decode) split each row's keys over several blocks whose partial
// results a second kernel merges (flash-decoding), so a batch-1 step still fills the GPU. Rows in
// runs (prefill) go to the tensor-core kernel (cuda_attention_prefill.cu).
#include <math.h>

#include "cuda_internal.h"

#define ATT_WARPS 8
#define ATT_MAX_HS 256
#define ATT_DIMS_PER_LANE (ATT_MAX_HS / 32)

__device__ __forceinline__ size_t cache_at(int s, int p, int g, int L, int NKV, int HS) {
    return (((size_t)s * L + p) * NKV + g) * HS;
}

// grid (N, NH, splits): block (n, h, s) takes the s-th of `splits` equal runs of row n's keys
// 0..pos[n]. With one split it writes the output; with more, its (max, sum, weighted values)
// go to partial (N, NH, splits, HS + 2) for attention_combine_kernel.
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_kernel(__nv_bfloat16* out, float* partial, const __nv_bfloat16* q, int q_stride,
                     const __nv_bfloat16* kcache, const __nv_bfloat16* vcache, const int* seq, const int* pos, int NH,
                     int NKV, int HS, int L, int prefix_seq, int prefix_len, float scale) {
    __shared__ float part_m[ATT_WARPS], part_l[ATT_WARPS];
    __shared__ float part_acc[ATT_WARPS][ATT_MAX_HS];
    int n = blockIdx.x, h = blockIdx.y, split = blockIdx.z, splits = gridDim.z;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int g = h / (NH / NKV);
    int s = seq[n];
    int span = (pos[n] + splits) / splits;  // keys 0..pos[n] in `splits` runs of span
    int first = split * span, last = min(pos[n], first + span - 1);
    const __nv_bfloat16* qrow = q + (size_t)n * q_stride + (size_t)h * HS;

    float qv[ATT_DIMS_PER_LANE], acc[ATT_DIMS_PER_LANE];
#pragma unroll
    for (int i = 0; i < ATT_DIMS_PER_LANE; i++) {
        int d = lane + 32 * i;
        qv[i] = d < HS ? bf(qrow[d]) * scale : 0.0f;
        acc[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int p0 = first + warp; p0 <= last; p0 += 2 * ATT_WARPS) {
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
    // warps that saw no key carry m = -inf and weight 0; with one split warp 0 saw position 0, so the
    // max is finite. A later split may see no key at all: it reports m = -inf, l = 0.
    float M = part_m[0];
    for (int w = 1; w < ATT_WARPS; w++) M = fmaxf(M, part_m[w]);
    float total = 0.0f;
    for (int w = 0; w < ATT_WARPS; w++) total += M == -INFINITY ? 0.0f : part_l[w] * expf(part_m[w] - M);
    float* mine = partial ? partial + (((size_t)n * NH + h) * splits + split) * (HS + 2) : NULL;
    for (int d = threadIdx.x; d < HS; d += blockDim.x) {
        float o = 0.0f;
        for (int w = 0; w < ATT_WARPS && M != -INFINITY; w++) o += part_acc[w][d] * expf(part_m[w] - M);
        if (mine)
            mine[d] = o;
        else
            out[((size_t)n * NH + h) * HS + d] = to_bf(o / total);
    }
    if (mine && threadIdx.x == 0) mine[HS] = M, mine[HS + 1] = total;
}

// grid (N, NH): merges the splits' partial (max, sum, weighted values) into the output
__global__ void attention_combine_kernel(__nv_bfloat16* out, const float* partial, int NH, int HS, int splits) {
    int n = blockIdx.x, h = blockIdx.y;
    const float* base = partial + ((size_t)n * NH + h) * splits * (HS + 2);
    float M = -INFINITY;
    for (int s = 0; s < splits; s++) M = fmaxf(M, base[(size_t)s * (HS + 2) + HS]);
    float total = 0.0f;
    for (int s = 0; s < splits; s++) {
        const float* p = base + (size_t)s * (HS + 2);
        if (p[HS] != -INFINITY) total += p[HS + 1] * expf(p[HS] - M);
    }
    for (int d = threadIdx.x; d < HS; d += blockDim.x) {
        float o = 0.0f;
        for (int s = 0; s < splits; s++) {
            const float* p = base + (size_t)s * (HS + 2);
            if (p[HS] != -INFINITY) o += p[d] * expf(p[HS] - M);
        }
        out[((size_t)n * NH + h) * HS + d] = to_bf(o / total);
    }
}

extern "C" void cuda_attention_forward(CudaContext* ctx, bf16* out, const bf16* q, int q_stride, const bf16* kcache,
                                       const bf16* vcache, const int* seq, const int* pos, int N, int NH, int NKV,
                                       int HS, int L, int prefix_seq, int prefix_len) {
    if (N == 0) return;
    if (HS > ATT_MAX_HS) FATAL("head_dim %d exceeds the CUDA attention kernel's %d", HS, ATT_MAX_HS);
    if (NH % NKV) FATAL("%d query heads are not a multiple of %d KV heads", NH, NKV);
    dim3 grid(N, NH, 1);
    attention_kernel<<<grid, ATT_WARPS * 32, 0, ctx->stream>>>(BF(out), NULL, CBF(q), q_stride, CBF(kcache),
                                                               CBF(vcache), seq, pos, NH, NKV, HS, L, prefix_seq,
                                                               prefix_len, 1.0f / sqrtf((float)HS));
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_attention_forward_split(CudaContext* ctx, bf16* out, const bf16* q, int q_stride,
                                             const bf16* kcache, const bf16* vcache, const int* seq, const int* pos,
                                             int N, int NH, int NKV, int HS, int L, int prefix_seq, int prefix_len,
                                             int splits, float* partial) {
    if (splits <= 1) {
        cuda_attention_forward(ctx, out, q, q_stride, kcache, vcache, seq, pos, N, NH, NKV, HS, L, prefix_seq,
                               prefix_len);
        return;
    }
    if (N == 0) return;
    if (HS > ATT_MAX_HS) FATAL("head_dim %d exceeds the CUDA attention kernel's %d", HS, ATT_MAX_HS);
    if (NH % NKV) FATAL("%d query heads are not a multiple of %d KV heads", NH, NKV);
    dim3 grid(N, NH, splits);
    attention_kernel<<<grid, ATT_WARPS * 32, 0, ctx->stream>>>(BF(out), partial, CBF(q), q_stride, CBF(kcache),
                                                               CBF(vcache), seq, pos, NH, NKV, HS, L, prefix_seq,
                                                               prefix_len, 1.0f / sqrtf((float)HS));
    CUDA_CHECK_LAUNCH();
    attention_combine_kernel<<<dim3(N, NH), 128, 0, ctx->stream>>>(BF(out), partial, NH, HS, splits);
    CUDA_CHECK_LAUNCH();
}
