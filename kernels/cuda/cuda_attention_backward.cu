// cuda_attention_backward.cu: the backward of causal GQA attention over B sequences of T rows (the
// training layout: k, v (B*T, NKV, HS), no cache), softmax recomputed, in three deterministic passes:
//   stats: per (row, head) lse = log sum_u exp(s_u) and D = sum_u P_u (dout . v_u)
//   dq:    per (row, head)  dq = scale * sum_u P_u (dout . v_u - D) k_u
//   dk,dv: per (key row, KV head) dv = sum_{h in group, t >= u} P_tu dout_t,
//          dk = scale * sum_{h, t >= u} P_tu (dout_t . v_u - D_t) q_t
// Each output has one owner that walks its terms in a fixed order (warps round-robin, merged in warp
// order): no atomics, bit-identical run to run. CUDA-core arithmetic: the simple version, correct
// first; a tensor-core flash backward is the next step for speed.
#include <math.h>

#include "cuda_internal.h"

extern "C" {
#include "cuda_train_ops.h"
}

#define AB_WARPS 8
#define AB_MAX_HS 256
#define AB_DPL (AB_MAX_HS / 32)

// lanes hold dims d = lane + 32 i
__device__ __forceinline__ float dot_bf_bf(const float* a, const __nv_bfloat16* b, int lane, int HS) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < AB_DPL; i++) {
        int d = lane + 32 * i;
        if (d < HS) s += a[i] * bf(b[d]);
    }
    return warp_sum(s);
}

__device__ __forceinline__ float dot_f(const float* a, const float* b, int lane, int HS) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < AB_DPL; i++) {
        int d = lane + 32 * i;
        if (d < HS) s += a[i] * b[d];
    }
    return warp_sum(s);
}

__device__ __forceinline__ void load_lane_bf(float* dst, const __nv_bfloat16* src, int lane, int HS) {
#pragma unroll
    for (int i = 0; i < AB_DPL; i++) {
        int d = lane + 32 * i;
        dst[i] = d < HS ? bf(src[d]) : 0.0f;
    }
}

__device__ __forceinline__ void load_lane_f(float* dst, const float* src, int lane, int HS) {
#pragma unroll
    for (int i = 0; i < AB_DPL; i++) {
        int d = lane + 32 * i;
        dst[i] = d < HS ? src[d] : 0.0f;
    }
}

// grid (B*T, NH): lse and D of each (row, head)
__global__ void __launch_bounds__(AB_WARPS * 32)
    att_bwd_stats_kernel(float* lse, float* Dout, const float* dout, const __nv_bfloat16* q, const __nv_bfloat16* k,
                         const __nv_bfloat16* v, int T, int NH, int NKV, int HS, float scale) {
    __shared__ float sm[AB_WARPS], sl[AB_WARPS], sd[AB_WARPS];
    int row = blockIdx.x, h = blockIdx.y, b = row / T, t = row % T, g = h / (NH / NKV);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float qv[AB_DPL], dov[AB_DPL];
    load_lane_bf(qv, q + ((size_t)row * NH + h) * HS, lane, HS);
    load_lane_f(dov, dout + ((size_t)row * NH + h) * HS, lane, HS);
    float m = -INFINITY, l = 0.0f, dacc = 0.0f;
    for (int u = warp; u <= t; u += AB_WARPS) {
        size_t kv = ((size_t)(b * T + u) * NKV + g) * HS;
        float s = scale * dot_bf_bf(qv, k + kv, lane, HS);
        float dp = dot_bf_bf(dov, v + kv, lane, HS);
        float m_new = fmaxf(m, s);
        float corr = expf(m - m_new), e = expf(s - m_new);
        l = l * corr + e;
        dacc = dacc * corr + e * dp;
        m = m_new;
    }
    if (lane == 0) sm[warp] = m, sl[warp] = l, sd[warp] = dacc;
    __syncthreads();
    if (threadIdx.x == 0) {
        float M = sm[0];
        for (int w = 1; w < AB_WARPS; w++) M = fmaxf(M, sm[w]);
        float L = 0.0f, Dsum = 0.0f;
        for (int w = 0; w < AB_WARPS; w++) {
            float f = expf(sm[w] - M);  // warps that saw no key: m = -inf, weight 0
            L += sl[w] * f;
            Dsum += sd[w] * f;
        }
        lse[(size_t)row * NH + h] = M + logf(L);
        Dout[(size_t)row * NH + h] = Dsum / L;
    }
}

// grid (B*T, NH): dq of each (row, head)
__global__ void __launch_bounds__(AB_WARPS * 32)
    att_bwd_dq_kernel(float* dq, const float* lse, const float* Dv, const float* dout, const __nv_bfloat16* q,
                      const __nv_bfloat16* k, const __nv_bfloat16* v, int T, int NH, int NKV, int HS, float scale) {
    __shared__ float part[AB_WARPS][AB_MAX_HS];
    int row = blockIdx.x, h = blockIdx.y, b = row / T, t = row % T, g = h / (NH / NKV);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float qv[AB_DPL], dov[AB_DPL], acc[AB_DPL];
    load_lane_bf(qv, q + ((size_t)row * NH + h) * HS, lane, HS);
    load_lane_f(dov, dout + ((size_t)row * NH + h) * HS, lane, HS);
#pragma unroll
    for (int i = 0; i < AB_DPL; i++) acc[i] = 0.0f;
    float my_lse = lse[(size_t)row * NH + h], my_D = Dv[(size_t)row * NH + h];
    for (int u = warp; u <= t; u += AB_WARPS) {
        size_t kv = ((size_t)(b * T + u) * NKV + g) * HS;
        float s = scale * dot_bf_bf(qv, k + kv, lane, HS);
        float dp = dot_bf_bf(dov, v + kv, lane, HS);
        float ds = expf(s - my_lse) * (dp - my_D);
#pragma unroll
        for (int i = 0; i < AB_DPL; i++) {
            int d = lane + 32 * i;
            if (d < HS) acc[i] += ds * bf(k[kv + d]);
        }
    }
#pragma unroll
    for (int i = 0; i < AB_DPL; i++) {
        int d = lane + 32 * i;
        if (d < HS) part[warp][d] = acc[i];
    }
    __syncthreads();
    for (int d = threadIdx.x; d < HS; d += blockDim.x) {
        float sum = 0.0f;
        for (int w = 0; w < AB_WARPS; w++) sum += part[w][d];
        dq[((size_t)row * NH + h) * HS + d] = scale * sum;
    }
}

// grid (B*T, NKV): dk, dv of each (key row, KV head); pairs (t, h) with t >= u, t-major
__global__ void __launch_bounds__(AB_WARPS * 32)
    att_bwd_dkdv_kernel(float* dk, float* dv, const float* lse, const float* Dv, const float* dout,
                        const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int T, int NH, int NKV,
                        int HS, float scale) {
    __shared__ float part_k[AB_WARPS][AB_MAX_HS], part_v[AB_WARPS][AB_MAX_HS];
    int row = blockIdx.x, g = blockIdx.y, b = row / T, u = row % T, group = NH / NKV;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    size_t kv = ((size_t)row * NKV + g) * HS;
    float kk[AB_DPL], vv[AB_DPL], ak[AB_DPL], av[AB_DPL];
    load_lane_bf(kk, k + kv, lane, HS);
    load_lane_bf(vv, v + kv, lane, HS);
#pragma unroll
    for (int i = 0; i < AB_DPL; i++) ak[i] = av[i] = 0.0f;
    int pairs = (T - u) * group;
    for (int idx = warp; idx < pairs; idx += AB_WARPS) {
        int t = u + idx / group, h = g * group + idx % group;
        size_t qi = ((size_t)(b * T + t) * NH + h) * HS;
        float s = scale * dot_bf_bf(kk, q + qi, lane, HS);
        float dp = dot_f(vv, dout + qi, lane, HS);
        size_t sh = (size_t)(b * T + t) * NH + h;
        float p = expf(s - lse[sh]);
        float ds = p * (dp - Dv[sh]);
#pragma unroll
        for (int i = 0; i < AB_DPL; i++) {
            int d = lane + 32 * i;
            if (d < HS) {
                av[i] += p * dout[qi + d];
                ak[i] += ds * bf(q[qi + d]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < AB_DPL; i++) {
        int d = lane + 32 * i;
        if (d < HS) part_k[warp][d] = ak[i], part_v[warp][d] = av[i];
    }
    __syncthreads();
    for (int d = threadIdx.x; d < HS; d += blockDim.x) {
        float sk = 0.0f, sv = 0.0f;
        for (int w = 0; w < AB_WARPS; w++) sk += part_k[w][d], sv += part_v[w][d];
        dk[kv + d] = scale * sk;
        dv[kv + d] = sv;
    }
}

extern "C" void cuda_attention_backward(CudaContext* ctx, float* dq, float* dk, float* dv, const float* dout,
                                        const bf16* q, const bf16* k, const bf16* v, int B, int T, int NH, int NKV,
                                        int HS) {
    if (B * T == 0) return;
    if (HS > AB_MAX_HS) FATAL("head_dim %d exceeds the attention backward's %d", HS, AB_MAX_HS);
    if (NH % NKV) FATAL("%d query heads are not a multiple of %d KV heads", NH, NKV);
    size_t rows = (size_t)B * T;
    float* lse = (float*)cuda_scratch(ctx, sizeof(float) * 2 * rows * NH);
    float* D = lse + rows * NH;
    float scale = 1.0f / sqrtf((float)HS);
    dim3 grid_q((unsigned)rows, NH), grid_kv((unsigned)rows, NKV);
    att_bwd_stats_kernel<<<grid_q, AB_WARPS * 32, 0, ctx->stream>>>(lse, D, dout, CBF(q), CBF(k), CBF(v), T, NH, NKV, HS,
                                                                    scale);
    CUDA_CHECK_LAUNCH();
    att_bwd_dq_kernel<<<grid_q, AB_WARPS * 32, 0, ctx->stream>>>(dq, lse, D, dout, CBF(q), CBF(k), CBF(v), T, NH, NKV,
                                                                 HS, scale);
    CUDA_CHECK_LAUNCH();
    att_bwd_dkdv_kernel<<<grid_kv, AB_WARPS * 32, 0, ctx->stream>>>(dk, dv, lse, D, dout, CBF(q), CBF(k), CBF(v), T, NH,
                                                                    NKV, HS, scale);
    CUDA_CHECK_LAUNCH();
}
