// cuda_attention.cu: causal GQA attention of N packed rows against the bf16 KV cache (prefill and
// decode alike, with the shared-prefix rule of ops.h's attention_forward).
//
// One block per (row, KV head, chunk of up to 8 of that KV head's query heads): every key and value a
// block loads serves all of its query heads, so with Qwen3's GQA (4 query heads per KV head) each K/V
// row is read from memory once, not 4 times. Its warps take the row's keys round-robin, two keys per
// step so that two loads are in flight, each lane holding HS/32 of the head's dimensions. Each warp
// keeps one online softmax per query head (running max m, sum l, weighted values acc); the warps'
// partial results are merged through shared memory at the end. fp32 throughout; the output is rounded
// to bf16 once. Long contexts with few rows (decode) split each row's keys over several blocks whose
// partial results a second kernel merges (flash-decoding), so a batch-1 step still fills the GPU. Rows
// in runs (prefill) go to the tensor-core kernel (cuda_attention_prefill.cu).
#include <math.h>

#include "cuda_internal.h"

#define ATT_WARPS 8
#define ATT_MAX_HS 256

__device__ __forceinline__ size_t cache_at(int s, int p, int g, int L, int NKV, int HS) {
    return (((size_t)s * L + p) * NKV + g) * HS;
}

// query heads one block serves (registers: GH x DPL x 2 floats a lane; shared: 32 KB either way)
static int heads_per_block(int HS) { return HS <= 128 ? 8 : 4; }

// grid (N, NKV * chunks, splits), chunks = ceil(group / GH), group = NH / NKV: block (n, y, s) serves
// query heads [g*group + c*GH, +GH) of KV head g = y / chunks (c = y % chunks) over the s-th of `splits`
// equal runs of row n's keys 0..pos[n]. DPL: head dims per lane (HS <= 32 * DPL). With one split it
// writes the output; with more, each head's (max, sum, weighted values) go to partial
// (N, NH, splits, HS + 2) for attention_combine_kernel.
template <int DPL, int GH>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_kernel(__nv_bfloat16* out, float* partial, const __nv_bfloat16* q, int q_stride,
                     const __nv_bfloat16* kcache, const __nv_bfloat16* vcache, const int* seq, const int* pos, int NH,
                     int NKV, int HS, int L, int prefix_seq, int prefix_len, float scale) {
    __shared__ float part_m[ATT_WARPS][GH], part_l[ATT_WARPS][GH];
    __shared__ float part_acc[ATT_WARPS][GH][DPL * 32];
    int group = NH / NKV, chunks = (group + GH - 1) / GH;
    int n = blockIdx.x, g = blockIdx.y / chunks, h0 = g * group + (blockIdx.y % chunks) * GH;
    int nh = min(GH, g * group + group - h0);  // this block's query heads: h0 .. h0 + nh - 1
    int split = blockIdx.z, splits = gridDim.z;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int s = seq[n];
    int span = (pos[n] + splits) / splits;  // keys 0..pos[n] in `splits` runs of span
    int first = split * span, last = min(pos[n], first + span - 1);

    float qv[GH][DPL], acc[GH][DPL], m[GH], l[GH];
#pragma unroll
    for (int j = 0; j < GH; j++) {
        const __nv_bfloat16* qrow = q + (size_t)n * q_stride + (size_t)(h0 + j) * HS;
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            int d = lane + 32 * i;
            qv[j][i] = j < nh && d < HS ? bf(qrow[d]) * scale : 0.0f;
            acc[j][i] = 0.0f;
        }
        m[j] = -INFINITY, l[j] = 0.0f;
    }
    for (int p0 = first + warp; p0 <= last; p0 += 2 * ATT_WARPS) {
        int p1 = p0 + ATT_WARPS;
        int has1 = p1 <= last;
        size_t b0 = cache_at(p0 < prefix_len ? prefix_seq : s, p0, g, L, NKV, HS);
        size_t b1 = has1 ? cache_at(p1 < prefix_len ? prefix_seq : s, p1, g, L, NKV, HS) : b0;
        float k0[DPL], k1[DPL], v0[DPL], v1[DPL];
#pragma unroll
        for (int i = 0; i < DPL; i++) {  // every load of both keys issued before any use, once for all heads
            int d = lane + 32 * i;
            int ok = d < HS;
            k0[i] = ok ? bf(kcache[b0 + d]) : 0.0f;
            k1[i] = ok ? bf(kcache[b1 + d]) : 0.0f;
            v0[i] = ok ? bf(vcache[b0 + d]) : 0.0f;
            v1[i] = ok ? bf(vcache[b1 + d]) : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < GH; j++) {
            if (j >= nh) break;  // block-uniform: every lane takes the same branch
            float dot0 = 0.0f, dot1 = 0.0f;
#pragma unroll
            for (int i = 0; i < DPL; i++) {
                dot0 += qv[j][i] * k0[i];
                dot1 += qv[j][i] * k1[i];
            }
            dot0 = warp_sum(dot0);
            dot1 = has1 ? warp_sum(dot1) : -INFINITY;
            float m_new = fmaxf(m[j], fmaxf(dot0, dot1));
            float corr = expf(m[j] - m_new), e0 = expf(dot0 - m_new), e1 = has1 ? expf(dot1 - m_new) : 0.0f;
            l[j] = l[j] * corr + e0 + e1;
#pragma unroll
            for (int i = 0; i < DPL; i++) acc[j][i] = acc[j][i] * corr + e0 * v0[i] + e1 * v1[i];
            m[j] = m_new;
        }
    }
#pragma unroll
    for (int j = 0; j < GH; j++) {
        if (lane == 0) {
            part_m[warp][j] = m[j];
            part_l[warp][j] = l[j];
        }
#pragma unroll
        for (int i = 0; i < DPL; i++) part_acc[warp][j][lane + 32 * i] = acc[j][i];
    }
    __syncthreads();
    // warps that saw no key carry m = -inf and weight 0; with one split warp 0 saw position 0, so the
    // max is finite. A later split may see no key at all: it reports m = -inf, l = 0.
    for (int j = 0; j < nh; j++) {
        float M = part_m[0][j];
        for (int w = 1; w < ATT_WARPS; w++) M = fmaxf(M, part_m[w][j]);
        float total = 0.0f;
        for (int w = 0; w < ATT_WARPS; w++) total += M == -INFINITY ? 0.0f : part_l[w][j] * expf(part_m[w][j] - M);
        int h = h0 + j;
        float* mine = partial ? partial + (((size_t)n * NH + h) * splits + split) * (HS + 2) : NULL;
        for (int d = threadIdx.x; d < HS; d += blockDim.x) {
            float o = 0.0f;
            for (int w = 0; w < ATT_WARPS && M != -INFINITY; w++) o += part_acc[w][j][d] * expf(part_m[w][j] - M);
            if (mine)
                mine[d] = o;
            else
                out[((size_t)n * NH + h) * HS + d] = to_bf(o / total);
        }
        if (mine && threadIdx.x == 0) mine[HS] = M, mine[HS + 1] = total;
    }
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

// the kernel for HS (head dims per lane, query heads per block) over (N, NKV * chunks, splits)
static void launch_attention(CudaContext* ctx, bf16* out, float* partial, const bf16* q, int q_stride,
                             const bf16* kcache, const bf16* vcache, const int* seq, const int* pos, int N, int NH,
                             int NKV, int HS, int L, int prefix_seq, int prefix_len, int splits) {
    if (HS > ATT_MAX_HS) FATAL("head_dim %d exceeds the CUDA attention kernel's %d", HS, ATT_MAX_HS);
    if (NH % NKV) FATAL("%d query heads are not a multiple of %d KV heads", NH, NKV);
    int GH = heads_per_block(HS), chunks = ceil_div(NH / NKV, GH);
    dim3 grid(N, NKV * chunks, splits);
    float scale = 1.0f / sqrtf((float)HS);
    if (HS <= 128)
        attention_kernel<4, 8><<<grid, ATT_WARPS * 32, 0, ctx->stream>>>(BF(out), partial, CBF(q), q_stride,
                                                                          CBF(kcache), CBF(vcache), seq, pos, NH, NKV,
                                                                          HS, L, prefix_seq, prefix_len, scale);
    else
        attention_kernel<8, 4><<<grid, ATT_WARPS * 32, 0, ctx->stream>>>(BF(out), partial, CBF(q), q_stride,
                                                                          CBF(kcache), CBF(vcache), seq, pos, NH, NKV,
                                                                          HS, L, prefix_seq, prefix_len, scale);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_attention_forward(CudaContext* ctx, bf16* out, const bf16* q, int q_stride, const bf16* kcache,
                                       const bf16* vcache, const int* seq, const int* pos, int N, int NH, int NKV,
                                       int HS, int L, int prefix_seq, int prefix_len) {
    if (N == 0) return;
    launch_attention(ctx, out, NULL, q, q_stride, kcache, vcache, seq, pos, N, NH, NKV, HS, L, prefix_seq, prefix_len, 1);
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
    launch_attention(ctx, out, partial, q, q_stride, kcache, vcache, seq, pos, N, NH, NKV, HS, L, prefix_seq,
                     prefix_len, splits);
    attention_combine_kernel<<<dim3(N, NH), 128, 0, ctx->stream>>>(BF(out), partial, NH, HS, splits);
    CUDA_CHECK_LAUNCH();
}
