// cuda_forward.cu: the forward pass's small ops: embedding, RMSNorm (alone and fused with the
// residual add), the q/k norm + RoPE + KV-cache store of one attention layer, SwiGLU, row gather.
// Each is memory-bound: one pass over its tensors, fp32 arithmetic, bf16 storage.
#include "cuda_internal.h"


static int row_threads(int C) {  // threads per row for the per-row kernels: a multiple of 32, <= 1024
    int t = ((C + 3) / 4 + 31) / 32 * 32;
    return t < 64 ? 64 : t > 1024 ? 1024 : t;
}

// ---------------------------------------------------------------------------------------------

// out (N,C) fp32 = wte[tokens[n]] (V,C) bf16; one block per row
__global__ void embedding_kernel(float* out, const int* tokens, const __nv_bfloat16* wte, int C) {
    int n = blockIdx.x;
    const __nv_bfloat16* row = wte + (size_t)tokens[n] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) out[(size_t)n * C + c] = bf(row[c]);
}

extern "C" void cuda_embedding_forward(CudaContext* ctx, float* out, const int* tokens, const bf16* wte, int N, int C) {
    if (N == 0) return;
    embedding_kernel<<<N, row_threads(C), 0, ctx->stream>>>(out, tokens, CBF(wte), C);
    CUDA_CHECK_LAUNCH();
}

// x (N,C) fp32 (+= y (N,C) bf16 when y is not NULL); out (N,C) bf16 = weight * x * rstd(x); one block per row
__global__ void residual_rmsnorm_kernel(float* x, const __nv_bfloat16* y, __nv_bfloat16* out, const __nv_bfloat16* weight,
                                        float eps, int C) {
    size_t row = (size_t)blockIdx.x * C;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = x[row + c];
        if (y) {
            v += bf(y[row + c]);
            x[row + c] = v;
        }
        ss += v * v;
    }
    float rstd = 1.0f / sqrtf(block_sum(ss) / C + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x) out[row + c] = to_bf(bf(weight[c]) * (x[row + c] * rstd));
}

__global__ void residual_kernel(float* x, const __nv_bfloat16* y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] += bf(y[i]);
}

extern "C" void cuda_residual_forward(CudaContext* ctx, float* x, const bf16* y, int N, int C) {
    size_t n = (size_t)N * C;
    if (n == 0) return;
    int blocks = (int)(n / 256 + 1 < 65536 ? n / 256 + 1 : 65536);
    residual_kernel<<<blocks, 256, 0, ctx->stream>>>(x, CBF(y), n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_rmsnorm_forward(CudaContext* ctx, bf16* out, const float* inp, const bf16* weight, float eps, int N,
                                     int C) {
    if (N == 0) return;
    residual_rmsnorm_kernel<<<N, row_threads(C), 0, ctx->stream>>>((float*)inp, NULL, BF(out), CBF(weight), eps, C);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_residual_rmsnorm_forward(CudaContext* ctx, float* x, const bf16* y, bf16* out, const bf16* weight,
                                              float eps, int N, int C) {
    if (N == 0) return;
    residual_rmsnorm_kernel<<<N, row_threads(C), 0, ctx->stream>>>(x, CBF(y), BF(out), CBF(weight), eps, C);
    CUDA_CHECK_LAUNCH();
}

// One warp per (row, head slot): slots [0,NH) are q heads, [NH,NH+NKV) k heads, then v heads.
// q, k: optional per-head RMSNorm, then rotate-half RoPE; q to q_out (may be qkv: each lane reads its
// pair before writing it), k to the cache.
// v: copied to the cache. qkv (N,QKV); caches (S,L,NKV,HS).
__global__ void qkv_prepare_kernel(const __nv_bfloat16* qkv, __nv_bfloat16* q_out, int q_stride,
                                   __nv_bfloat16* kcache, __nv_bfloat16* vcache, const __nv_bfloat16* q_norm,
                                   const __nv_bfloat16* k_norm, const int* seq, const int* pos, const float* inv_freq,
                                   float eps, int N, int NH, int NKV, int HS, int L) {
    int slots = NH + 2 * NKV;
    long long gw = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (gw >= (long long)N * slots) return;  // whole warps leave together
    int lane = threadIdx.x & 31;
    int n = (int)(gw / slots), slot = (int)(gw % slots);
    const __nv_bfloat16* x = qkv + (size_t)n * slots * HS + (size_t)slot * HS;
    int p = pos[n];
    if (slot >= NH + NKV) {
        int g = slot - NH - NKV;
        __nv_bfloat16* dst = vcache + (((size_t)seq[n] * L + p) * NKV + g) * HS;
        for (int d = lane; d < HS; d += 32) dst[d] = x[d];
        return;
    }
    int is_q = slot < NH;
    const __nv_bfloat16* w = is_q ? q_norm : k_norm;
    float rstd = 1.0f;
    if (w) {
        float ss = 0.0f;
        for (int d = lane; d < HS; d += 32) {
            float v = bf(x[d]);
            ss += v * v;
        }
        rstd = 1.0f / sqrtf(warp_sum(ss) / HS + eps);
    }
    __nv_bfloat16* dst = is_q ? q_out + (size_t)n * q_stride + (size_t)slot * HS
                              : kcache + (((size_t)seq[n] * L + p) * NKV + (slot - NH)) * HS;
    int half = HS / 2;
    for (int j = lane; j < half; j += 32) {
        float a = bf(x[j]), b = bf(x[j + half]);
        if (w) {
            a = bf(w[j]) * (a * rstd);
            b = bf(w[j + half]) * (b * rstd);
        }
        float angle = (float)p * inv_freq[j];  // fp32, as transformers and the CPU compute it
        float c = cosf(angle), s = sinf(angle);
        dst[j] = to_bf(a * c - b * s);
        dst[j + half] = to_bf(b * c + a * s);
    }
}

extern "C" void cuda_qkv_prepare(CudaContext* ctx, const bf16* qkv, bf16* q_out, int q_stride, bf16* kcache,
                                 bf16* vcache, const bf16* q_norm, const bf16* k_norm, const int* seq, const int* pos,
                                 const float* inv_freq, float eps, int N, int NH, int NKV, int HS, int L) {
    if (N == 0) return;
    long long warps = (long long)N * (NH + 2 * NKV);
    qkv_prepare_kernel<<<ceil_div(warps, 4), 128, 0, ctx->stream>>>(CBF(qkv), BF(q_out), q_stride, BF(kcache),
                                                                     BF(vcache), CBF(q_norm), CBF(k_norm), seq, pos,
                                                                     inv_freq, eps, N, NH, NKV, HS, L);
    CUDA_CHECK_LAUNCH();
}

// h (N,F) = silu(gate) * up from gateup (N,2F)
__global__ void swiglu_kernel(__nv_bfloat16* h, const __nv_bfloat16* gateup, int N, int F) {
    size_t total = (size_t)N * F;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t n = i / F, f = i % F;
        float g = bf(gateup[n * 2 * F + f]), u = bf(gateup[n * 2 * F + F + f]);
        h[i] = to_bf(g / (1.0f + expf(-g)) * u);
    }
}

extern "C" void cuda_swiglu_forward(CudaContext* ctx, bf16* h, const bf16* gateup, int N, int F) {
    size_t total = (size_t)N * F;
    if (total == 0) return;
    int blocks = (int)(total / 256 + 1 < 65536 ? total / 256 + 1 : 65536);
    swiglu_kernel<<<blocks, 256, 0, ctx->stream>>>(BF(h), CBF(gateup), N, F);
    CUDA_CHECK_LAUNCH();
}

// out (n,C) = inp[rows[i]] (N,C); one block per output row
__global__ void gather_rows_kernel(__nv_bfloat16* out, const __nv_bfloat16* inp, const int* rows, int C) {
    const __nv_bfloat16* src = inp + (size_t)rows[blockIdx.x] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) out[(size_t)blockIdx.x * C + c] = src[c];
}

extern "C" void cuda_gather_rows(CudaContext* ctx, bf16* out, const bf16* inp, const int* rows, int n, int C) {
    if (n == 0) return;
    gather_rows_kernel<<<n, row_threads(C), 0, ctx->stream>>>(BF(out), CBF(inp), rows, C);
    CUDA_CHECK_LAUNCH();
}

// one block per row: (value, index) max over V, lowest index among equals
__global__ void decode_advance_kernel(int* tokens, int* pos, const float* logits, int V) {
    __shared__ float best_v[32];
    __shared__ int best_i[32];
    const float* row = logits + (size_t)blockIdx.x * V;
    float v = -INFINITY;
    int idx = 0x7fffffff;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (row[i] > v) v = row[i], idx = i;  // i grows, so the first max of this thread's stride stays
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ov > v || (ov == v && oi < idx)) v = ov, idx = oi;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) best_v[warp] = v, best_i[warp] = idx;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++)
            if (best_v[w] > v || (best_v[w] == v && best_i[w] < idx)) v = best_v[w], idx = best_i[w];
        tokens[blockIdx.x] = idx == 0x7fffffff ? 0 : idx;  // all-NaN logits: a valid id, not an out-of-range read
        pos[blockIdx.x] += 1;
    }
}

extern "C" void cuda_decode_advance(CudaContext* ctx, int* tokens, int* pos, const float* logits, int B, int V) {
    if (B == 0) return;
    decode_advance_kernel<<<B, 1024, 0, ctx->stream>>>(tokens, pos, logits, V);
    CUDA_CHECK_LAUNCH();
}
