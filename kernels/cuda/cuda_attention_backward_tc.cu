// cuda_attention_backward_tc.cu: the attention backward on the tensor cores (WMMA bf16 16x16x16,
// fp32 accumulation), flash style: the softmax is rebuilt tile by tile from the forward's
// logsumexp, scores never leave shared memory. Two kernels, each output owned by one block (no
// atomics, deterministic):
//   dk/dv: block = (64-key tile, KV head, sequence); loops the group's query heads and the query
//          tiles at or after the keys (causal): S^T = K Q^T, P^T, dP^T = V dO^T, dS^T = P^T (dP^T - D),
//          dV += P^T dO, dK += dS^T Q.
//   dq:    block = (64-query tile, query head, sequence); loops the key tiles up to the diagonal:
//          S = Q K^T, P, dP = dO V^T, dS = P (dP - D), dQ += dS K.
// lse and D (= rowsum(P dP)) come from the stats pass of cuda_attention_backward.cu. Head sizes that
// are multiples of 16 up to 128 (shared memory); others use the CUDA-core kernels.
#include <math.h>

#include "cuda_wmma.h"

extern "C" {
#include "cuda_train_ops.h"
}

#define TB WMMA_TILE  // rows of every tile (queries or keys)

void cuda_attention_backward_tc(CudaContext* ctx, float* dq, float* dk, float* dv, const float* lse, const float* D,
                                const float* dout, const bf16* q, const bf16* k, const bf16* v, int B, int T, int NH,
                                int NKV, int HS);

__host__ __device__ static inline size_t al32(size_t x) { return (x + 31) / 32 * 32; }

// shared-memory carving, the same on host (size) and device (offsets)
struct BwdLayout {
    int ldh, lds, ldp, ldo;  // bf16 head rows, fp32 64-wide scores, bf16 64-wide, fp32 head rows
    size_t a, b, c, d, s, dp, p, ds, acc1, acc2, lse, dd, bytes;
};

__host__ __device__ static inline BwdLayout bwd_layout(int HS) {
    BwdLayout L;
    L.ldh = HS + 8, L.lds = TB + 4, L.ldp = TB + 8, L.ldo = HS + 4;
    size_t at = 0, h = sizeof(__nv_bfloat16) * TB * L.ldh;
    L.a = at, at = al32(at + h);  // K (dkdv) or Q (dq)
    L.b = at, at = al32(at + h);  // V or dO
    L.c = at, at = al32(at + h);  // Q or K
    L.d = at, at = al32(at + h);  // dO or V
    L.s = at, at = al32(at + sizeof(float) * TB * L.lds);
    L.dp = at, at = al32(at + sizeof(float) * TB * L.lds);
    L.p = at, at = al32(at + sizeof(__nv_bfloat16) * TB * L.ldp);
    L.ds = at, at = al32(at + sizeof(__nv_bfloat16) * TB * L.ldp);
    L.acc1 = at, at = al32(at + sizeof(float) * TB * L.ldo);
    L.acc2 = at, at = al32(at + sizeof(float) * TB * L.ldo);
    L.lse = at, at = al32(at + sizeof(float) * TB);
    L.dd = at, at = al32(at + sizeof(float) * TB);
    L.bytes = at;
    return L;
}

// rows [r0, r0+64) of a (B*T, H, HS) bf16 tensor, head h, sequence b, into smem (zeros past T)
__device__ static void load_bf_tile(__nv_bfloat16* dst, int ld, const __nv_bfloat16* src, int b, int T, int r0, int H,
                                    int h, int HS) {
    int vec = HS / 8;
    for (int i = threadIdx.x; i < TB * vec; i += blockDim.x) {
        int r = i / vec, c = (i % vec) * 8;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (r0 + r < T) v = *(const uint4*)(src + (((size_t)b * T + r0 + r) * H + h) * HS + c);
        *(uint4*)(dst + r * ld + c) = v;
    }
}

// the same from fp32 (dO), rounded to bf16
__device__ static void load_f_tile(__nv_bfloat16* dst, int ld, const float* src, int b, int T, int r0, int H, int h,
                                   int HS) {
    for (int i = threadIdx.x; i < TB * HS; i += blockDim.x) {
        int r = i / HS, c = i % HS;
        float v = r0 + r < T ? src[(((size_t)b * T + r0 + r) * H + h) * HS + c] : 0.0f;
        dst[r * ld + c] = to_bf(v);
    }
}

// the softmax probability of query position qp for key position kp from the raw score s and the
// query's log-sum-exp; 0 where the key is masked (after the query, or either past the sequence)
__device__ __forceinline__ float softmax_p(float s, float lse, int qp, int kp, int T, float scale) {
    return kp < T && qp < T && qp >= kp ? expf(scale * s - lse) : 0.0f;
}

// the query tile's operands of one head: Q and dO (bf16), and each row's lse and D
__device__ static void load_query_tile(__nv_bfloat16* Qs, __nv_bfloat16* dOs, float* lse_s, float* D_s, int ld,
                                       const __nv_bfloat16* q, const float* dout, const float* lse, const float* Dv,
                                       int b, int T, int q0, int NH, int h, int HS) {
    load_bf_tile(Qs, ld, q, b, T, q0, NH, h, HS);
    load_f_tile(dOs, ld, dout, b, T, q0, NH, h, HS);
    for (int r = threadIdx.x; r < TB; r += blockDim.x) {
        bool ok = q0 + r < T;
        lse_s[r] = ok ? lse[((size_t)b * T + q0 + r) * NH + h] : 0.0f;
        D_s[r] = ok ? Dv[((size_t)b * T + q0 + r) * NH + h] : 0.0f;
    }
}

// grid (key tiles, NKV, B), 4 warps
__global__ void __launch_bounds__(128)
    att_bwd_dkdv_tc_kernel(float* dk, float* dv, const float* lse, const float* Dv, const float* dout,
                           const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int T, int NH,
                           int NKV, int HS, float scale) {
    extern __shared__ __align__(128) unsigned char smem[];
    const BwdLayout Lo = bwd_layout(HS);
    __nv_bfloat16 *Ks = (__nv_bfloat16*)(smem + Lo.a), *Vs = (__nv_bfloat16*)(smem + Lo.b);
    __nv_bfloat16 *Qs = (__nv_bfloat16*)(smem + Lo.c), *dOs = (__nv_bfloat16*)(smem + Lo.d);
    float *St = (float*)(smem + Lo.s), *dPt = (float*)(smem + Lo.dp);
    __nv_bfloat16 *Pt = (__nv_bfloat16*)(smem + Lo.p), *dSt = (__nv_bfloat16*)(smem + Lo.ds);
    float *dKs = (float*)(smem + Lo.acc1), *dVs = (float*)(smem + Lo.acc2);
    float *lse_s = (float*)(smem + Lo.lse), *D_s = (float*)(smem + Lo.dd);
    const int k0 = blockIdx.x * TB, g = blockIdx.y, b = blockIdx.z, group = NH / NKV;
    load_bf_tile(Ks, Lo.ldh, k, b, T, k0, NKV, g, HS);
    load_bf_tile(Vs, Lo.ldh, v, b, T, k0, NKV, g, HS);
    for (int i = threadIdx.x; i < TB * HS; i += blockDim.x) {
        dKs[(i / HS) * Lo.ldo + i % HS] = 0.0f;
        dVs[(i / HS) * Lo.ldo + i % HS] = 0.0f;
    }
    for (int hh = 0; hh < group; hh++) {
        int h = g * group + hh;
        for (int q0 = k0; q0 < T; q0 += TB) {  // query tiles at or after the keys (tiles are aligned)
            __syncthreads();  // the previous iteration is done with Qs, dOs, Pt, dSt
            load_query_tile(Qs, dOs, lse_s, D_s, Lo.ldh, q, dout, lse, Dv, b, T, q0, NH, h, HS);
            __syncthreads();
            warp_abt(St, Lo.lds, Ks, Qs, Lo.ldh, HS);    // S^T (keys x queries) = K Q^T
            warp_abt(dPt, Lo.lds, Vs, dOs, Lo.ldh, HS);  // dP^T = V dO^T
            __syncthreads();
            for (int i = threadIdx.x; i < TB * TB; i += blockDim.x) {
                int kr = i / TB, qc = i % TB;
                float p = softmax_p(St[kr * Lo.lds + qc], lse_s[qc], q0 + qc, k0 + kr, T, scale);
                Pt[kr * Lo.ldp + qc] = to_bf(p);
                dSt[kr * Lo.ldp + qc] = to_bf(p * (dPt[kr * Lo.lds + qc] - D_s[qc]));
            }
            __syncthreads();
            warp_acc_ab(dVs, Lo.ldo, Pt, Lo.ldp, dOs, Lo.ldh, HS);   // dV += P^T dO
            warp_acc_ab(dKs, Lo.ldo, dSt, Lo.ldp, Qs, Lo.ldh, HS);   // dK += dS^T Q
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < TB * HS; i += blockDim.x) {
        int r = i / HS, c = i % HS;
        if (k0 + r >= T) continue;
        size_t at = (((size_t)b * T + k0 + r) * NKV + g) * HS + c;
        dk[at] = scale * dKs[r * Lo.ldo + c];
        dv[at] = dVs[r * Lo.ldo + c];
    }
}

// grid (query tiles, NH, B), 4 warps
__global__ void __launch_bounds__(128)
    att_bwd_dq_tc_kernel(float* dq, const float* lse, const float* Dv, const float* dout, const __nv_bfloat16* q,
                         const __nv_bfloat16* k, const __nv_bfloat16* v, int T, int NH, int NKV, int HS, float scale) {
    extern __shared__ __align__(128) unsigned char smem[];
    const BwdLayout Lo = bwd_layout(HS);
    __nv_bfloat16 *Qs = (__nv_bfloat16*)(smem + Lo.a), *dOs = (__nv_bfloat16*)(smem + Lo.b);
    __nv_bfloat16 *Ks = (__nv_bfloat16*)(smem + Lo.c), *Vs = (__nv_bfloat16*)(smem + Lo.d);
    float *S = (float*)(smem + Lo.s), *dP = (float*)(smem + Lo.dp);
    __nv_bfloat16* dS = (__nv_bfloat16*)(smem + Lo.ds);
    float* dQs = (float*)(smem + Lo.acc1);
    float *lse_s = (float*)(smem + Lo.lse), *D_s = (float*)(smem + Lo.dd);
    const int q0 = blockIdx.x * TB, h = blockIdx.y, b = blockIdx.z, g = h / (NH / NKV);
    load_query_tile(Qs, dOs, lse_s, D_s, Lo.ldh, q, dout, lse, Dv, b, T, q0, NH, h, HS);
    for (int i = threadIdx.x; i < TB * HS; i += blockDim.x) dQs[(i / HS) * Lo.ldo + i % HS] = 0.0f;
    for (int k0 = 0; k0 <= q0; k0 += TB) {  // key tiles up to the diagonal
        __syncthreads();
        load_bf_tile(Ks, Lo.ldh, k, b, T, k0, NKV, g, HS);
        load_bf_tile(Vs, Lo.ldh, v, b, T, k0, NKV, g, HS);
        __syncthreads();
        warp_abt(S, Lo.lds, Qs, Ks, Lo.ldh, HS);    // S = Q K^T
        warp_abt(dP, Lo.lds, dOs, Vs, Lo.ldh, HS);  // dP = dO V^T
        __syncthreads();
        for (int i = threadIdx.x; i < TB * TB; i += blockDim.x) {
            int qr = i / TB, kc = i % TB;
            float p = softmax_p(S[qr * Lo.lds + kc], lse_s[qr], q0 + qr, k0 + kc, T, scale);
            dS[qr * Lo.ldp + kc] = to_bf(p * (dP[qr * Lo.lds + kc] - D_s[qr]));
        }
        __syncthreads();
        warp_acc_ab(dQs, Lo.ldo, dS, Lo.ldp, Ks, Lo.ldh, HS);  // dQ += dS K
    }
    __syncthreads();
    for (int i = threadIdx.x; i < TB * HS; i += blockDim.x) {
        int r = i / HS, c = i % HS;
        if (q0 + r < T) dq[(((size_t)b * T + q0 + r) * NH + h) * HS + c] = scale * dQs[r * Lo.ldo + c];
    }
}

extern "C" int cuda_attention_backward_tc_supported(int HS) { return HS % 16 == 0 && HS >= 16 && HS <= 128; }

// one warp per (row, head): D = dO . O, the rowsum of P dP that the softmax backward subtracts
__global__ void att_bwd_D_kernel(float* D, const float* dout, const __nv_bfloat16* out, size_t rows_heads, int HS) {
    size_t w = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x & 31;
    if (w >= rows_heads) return;
    const float* a = dout + w * HS;
    const __nv_bfloat16* o = out + w * HS;
    float s = 0.0f;
    for (int d = lane; d < HS; d += 32) s += a[d] * bf(o[d]);
    s = warp_sum(s);
    if (lane == 0) D[w] = s;
}

extern "C" void cuda_attention_backward_flash(CudaContext* ctx, float* dq, float* dk, float* dv, const float* dout,
                                              const bf16* out, const float* lse, const bf16* q, const bf16* k,
                                              const bf16* v, int B, int T, int NH, int NKV, int HS) {
    if (B * T == 0) return;
    if (!cuda_attention_backward_tc_supported(HS)) FATAL("head_dim %d: the tensor-core attention backward needs a multiple of 16 up to 128", HS);
    if (NH % NKV) FATAL("%d query heads are not a multiple of %d KV heads", NH, NKV);
    size_t rh = (size_t)B * T * NH;
    float* D = (float*)cuda_scratch(ctx, sizeof(float) * rh);
    att_bwd_D_kernel<<<(unsigned)((rh * 32 + 255) / 256), 256, 0, ctx->stream>>>(D, dout, CBF(out), rh, HS);
    CUDA_CHECK_LAUNCH();
    cuda_attention_backward_tc(ctx, dq, dk, dv, lse, D, dout, q, k, v, B, T, NH, NKV, HS);
}

void cuda_attention_backward_tc(CudaContext* ctx, float* dq, float* dk, float* dv, const float* lse, const float* D,
                                const float* dout, const bf16* q, const bf16* k, const bf16* v, int B, int T, int NH,
                                int NKV, int HS) {
    BwdLayout Lo = bwd_layout(HS);
    CUDA_CHECK(cudaFuncSetAttribute(att_bwd_dkdv_tc_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)Lo.bytes));
    CUDA_CHECK(cudaFuncSetAttribute(att_bwd_dq_tc_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)Lo.bytes));
    float scale = 1.0f / sqrtf((float)HS);
    int tiles = (T + TB - 1) / TB;
    att_bwd_dkdv_tc_kernel<<<dim3(tiles, NKV, B), 128, Lo.bytes, ctx->stream>>>(dk, dv, lse, D, dout, CBF(q), CBF(k),
                                                                                CBF(v), T, NH, NKV, HS, scale);
    CUDA_CHECK_LAUNCH();
    att_bwd_dq_tc_kernel<<<dim3(tiles, NH, B), 128, Lo.bytes, ctx->stream>>>(dq, lse, D, dout, CBF(q), CBF(k), CBF(v), T,
                                                                             NH, NKV, HS, scale);
    CUDA_CHECK_LAUNCH();
}
