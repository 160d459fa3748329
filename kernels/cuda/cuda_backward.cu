// cuda_backward.cu: the backward of every forward op (the CUDA twin of kernels/cpu/ops_cpu_backward.c)
// and the fp32 -> bf16 packing that feeds gradients to the GEMMs. Every reduction has a fixed order:
// a thread or a block owns each output and walks its inputs in index order; no atomics.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

extern "C" {
#include "cuda_train_ops.h"
}

static int blocks_for(size_t n, int threads) {
    size_t b = (n + threads - 1) / threads;
    return (int)(b < 65535 ? (b ? b : 1) : 65535);
}

// ---------------------------------------------------------------------------------------------
// column sums over many rows, deterministically: rows cut into a fixed number of chunks (a function
// of N alone); partial[chunk][c] sums its rows in order, then each column adds its chunks in order

static int row_chunks(int N) {
    int chunks = (N + 63) / 64;
    return chunks < 1 ? 1 : chunks > 256 ? 256 : chunks;
}

// out[c] += sum over chunks of partial[chunk][c]
__global__ void column_chunks_kernel(float* out, const float* partial, int chunks, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = 0.0f;
    for (int k = 0; k < chunks; k++) acc += partial[(size_t)k * C + c];
    out[c] += acc;
}

// ---------------------------------------------------------------------------------------------
// matmul

// partial[chunk][o] = sum of dout (N,OC) over the chunk's rows, in order
__global__ void bias_partial_kernel(float* partial, const __nv_bfloat16* dout, int N, int OC, int rows_per_chunk) {
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= OC) return;
    int n0 = blockIdx.y * rows_per_chunk, n1 = min(N, n0 + rows_per_chunk);
    float acc = 0.0f;
    for (int n = n0; n < n1; n++) acc += bf(dout[(size_t)n * OC + o]);
    partial[(size_t)blockIdx.y * OC + o] = acc;
}

extern "C" void cuda_matmul_backward(CudaContext* ctx, float* dinp, float* dweight, float* dbias, const bf16* dout,
                                     const bf16* inp, const bf16* weight, int N, int C, int OC) {
    if (N == 0) return;
    // dinp (N,C) = dout (N,OC) @ weight (OC,C): column-major (C x N) = weight stored (C x OC) times dout stored (OC x N)
    if (dinp) cuda_gemm(ctx, 0, 0, C, N, OC, weight, C, dout, OC, dinp, C, 1, 0, NULL);
    // dweight (OC,C) += dout^T @ inp: column-major (C x OC) += inp stored (C x N) times (dout stored (OC x N))^T
    cuda_gemm(ctx, 0, 1, C, OC, N, inp, C, dout, OC, dweight, C, 1, 1, NULL);
    if (dbias) {
        int chunks = row_chunks(N), per = (N + chunks - 1) / chunks;
        float* partial = (float*)cuda_scratch(ctx, sizeof(float) * (size_t)chunks * OC);
        bias_partial_kernel<<<dim3(ceil_div(OC, 256), chunks), 256, 0, ctx->stream>>>(partial, CBF(dout), N, OC, per);
        CUDA_CHECK_LAUNCH();
        column_chunks_kernel<<<ceil_div(OC, 256), 256, 0, ctx->stream>>>(dbias, partial, chunks, OC);
        CUDA_CHECK_LAUNCH();
    }
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: per row r = 1/sqrt(mean(x^2) + eps), y = w x r;  dw += dy x r;  dx = r w dy - (r^3/C) x sum(w dy x)

template <typename T>
__device__ __forceinline__ float load_f(const T* p, size_t i);
template <>
__device__ __forceinline__ float load_f<float>(const float* p, size_t i) { return p[i]; }
template <>
__device__ __forceinline__ float load_f<__nv_bfloat16>(const __nv_bfloat16* p, size_t i) { return bf(p[i]); }


// where input row r starts (see cuda_rmsnorm_backward)
__device__ __forceinline__ size_t in_row(int r, int group, size_t group_stride, int C) {
    return (size_t)(r / group) * group_stride + (size_t)(r % group) * C;
}

// one block per row: r[n] and k[n] = (r^3/C) sum(w dy x)
template <typename T>
__global__ void rmsnorm_stats_kernel(float* r, float* k, const float* dout, const T* inp, int group,
                                     size_t group_stride, const __nv_bfloat16* w, float eps, int C) {
    size_t row = (size_t)blockIdx.x * C, xrow = in_row(blockIdx.x, group, group_stride, C);
    float ss = 0.0f, dot = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float x = load_f(inp, xrow + c);
        ss += x * x;
        dot += bf(w[c]) * dout[row + c] * x;
    }
    ss = block_sum(ss);
    dot = block_sum(dot);
    if (threadIdx.x == 0) {
        float rr = 1.0f / sqrtf(ss / C + eps);
        r[blockIdx.x] = rr;
        k[blockIdx.x] = dot * rr * rr * rr / C;
    }
}

// partial[chunk][c] = sum over the chunk's rows, in order, of dout x r
template <typename T>
__global__ void rmsnorm_dweight_kernel(float* partial, const float* dout, const T* inp, int group, size_t group_stride,
                                       const float* r, int N, int C, int rows_per_chunk) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int n0 = blockIdx.y * rows_per_chunk, n1 = min(N, n0 + rows_per_chunk);
    float acc = 0.0f;
    for (int n = n0; n < n1; n++) acc += dout[(size_t)n * C + c] * load_f(inp, in_row(n, group, group_stride, C) + c) * r[n];
    partial[(size_t)blockIdx.y * C + c] = acc;
}

template <typename T>
__global__ void rmsnorm_dinp_kernel(float* dinp, const float* dout, const T* inp, int group, size_t group_stride,
                                    const __nv_bfloat16* w, const float* r, const float* k, int C) {
    size_t row = (size_t)blockIdx.x * C, xrow = in_row(blockIdx.x, group, group_stride, C);
    float rr = r[blockIdx.x], kk = k[blockIdx.x];
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        dinp[row + c] = rr * bf(w[c]) * dout[row + c] - kk * load_f(inp, xrow + c);
}

template <typename T>
static void rmsnorm_backward(CudaContext* ctx, float* dinp, float* dweight, const float* dout, const T* inp, int group,
                             size_t group_stride, const __nv_bfloat16* w, float eps, int N, int C) {
    int chunks = row_chunks(N), per = (N + chunks - 1) / chunks;
    float* r = (float*)cuda_scratch(ctx, sizeof(float) * (2 * (size_t)N + (size_t)chunks * C));
    float* k = r + N;
    float* partial = k + N;
    int threads = C >= 1024 ? 1024 : (C + 31) / 32 * 32;
    rmsnorm_stats_kernel<T><<<N, threads, 0, ctx->stream>>>(r, k, dout, inp, group, group_stride, w, eps, C);
    CUDA_CHECK_LAUNCH();
    // the weight gradient first: dinp may alias dout
    rmsnorm_dweight_kernel<T><<<dim3(ceil_div(C, 256), chunks), 256, 0, ctx->stream>>>(partial, dout, inp, group,
                                                                                          group_stride, r, N, C, per);
    CUDA_CHECK_LAUNCH();
    column_chunks_kernel<<<ceil_div(C, 256), 256, 0, ctx->stream>>>(dweight, partial, chunks, C);
    CUDA_CHECK_LAUNCH();
    rmsnorm_dinp_kernel<T><<<N, threads, 0, ctx->stream>>>(dinp, dout, inp, group, group_stride, w, r, k, C);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_rmsnorm_backward(CudaContext* ctx, float* dinp, float* dweight, const float* dout, const void* inp,
                                      int inp_bf16, int group, size_t group_stride, const bf16* weight, float eps, int N,
                                      int C) {
    if (N == 0) return;
    if (inp_bf16)
        rmsnorm_backward(ctx, dinp, dweight, dout, (const __nv_bfloat16*)inp, group, group_stride, CBF(weight), eps, N,
                         C);
    else
        rmsnorm_backward(ctx, dinp, dweight, dout, (const float*)inp, group, group_stride, CBF(weight), eps, N, C);
}

// ---------------------------------------------------------------------------------------------
// SwiGLU, RoPE, packing

__global__ void swiglu_backward_kernel(float* dgate, float* dup, const float* dh, const __nv_bfloat16* gateup, int N,
                                       int F) {
    size_t total = (size_t)N * F;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t n = i / F, f = i % F;
        float g = bf(gateup[n * 2 * F + f]), u = bf(gateup[n * 2 * F + F + f]);
        float sig = 1.0f / (1.0f + expf(-g));
        float d = dh[i];
        dup[i] = d * g * sig;
        dgate[i] = d * u * sig * (1.0f + g * (1.0f - sig));
    }
}

extern "C" void cuda_swiglu_backward(CudaContext* ctx, float* dgate, float* dup, const float* dh, const bf16* gateup,
                                     int N, int F) {
    size_t total = (size_t)N * F;
    if (total == 0) return;
    swiglu_backward_kernel<<<blocks_for(total, 256), 256, 0, ctx->stream>>>(dgate, dup, dh, CBF(gateup), N, F);
    CUDA_CHECK_LAUNCH();
}

// one thread per (row, head, pair j): the inverse rotation
__global__ void rope_backward_kernel(float* dx, const int* pos, const float* inv_freq, int N, int H, int HS) {
    int half = HS / 2;
    size_t total = (size_t)N * H * half;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        int j = (int)(i % half);
        size_t nh = i / half;
        int n = (int)(nh / H);
        float angle = (float)pos[n] * inv_freq[j];
        float c = cosf(angle), s = sinf(angle);
        float* v = dx + nh * HS;
        float a = v[j], b = v[j + half];
        v[j] = a * c + b * s;
        v[j + half] = b * c - a * s;
    }
}

extern "C" void cuda_rope_backward(CudaContext* ctx, float* dx, const int* pos, const float* inv_freq, int N, int H,
                                   int HS) {
    size_t total = (size_t)N * H * (HS / 2);
    if (total == 0) return;
    rope_backward_kernel<<<blocks_for(total, 256), 256, 0, ctx->stream>>>(dx, pos, inv_freq, N, H, HS);
    CUDA_CHECK_LAUNCH();
}

__global__ void bf16_to_f32_kernel(float* dst, const __nv_bfloat16* src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = bf(src[i]);
}

extern "C" void cuda_bf16_to_f32(CudaContext* ctx, float* dst, const bf16* src, size_t n) {
    if (n == 0) return;
    bf16_to_f32_kernel<<<blocks_for(n, 256), 256, 0, ctx->stream>>>(dst, CBF(src), n);
    CUDA_CHECK_LAUNCH();
}

__global__ void add_f32_kernel(float* dst, const float* src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] += src[i];
}

extern "C" void cuda_add_f32(CudaContext* ctx, float* dst, const float* src, size_t n) {
    if (n == 0) return;
    add_f32_kernel<<<blocks_for(n, 256), 256, 0, ctx->stream>>>(dst, src, n);
    CUDA_CHECK_LAUNCH();
}

__global__ void pack_bf16_kernel(__nv_bfloat16* dst, int ld_dst, const float* src, int ld_src, int rows, int cols) {
    size_t total = (size_t)rows * cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / cols, c = i % cols;
        dst[r * ld_dst + c] = to_bf(src[r * ld_src + c]);
    }
}

extern "C" void cuda_pack_bf16(CudaContext* ctx, bf16* dst, int ld_dst, const float* src, int ld_src, int rows,
                               int cols) {
    size_t total = (size_t)rows * cols;
    if (total == 0) return;
    pack_bf16_kernel<<<blocks_for(total, 256), 256, 0, ctx->stream>>>(BF(dst), ld_dst, src, ld_src, rows, cols);
    CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------
// embedding: rows grouped by token on the host (a stable counting sort), one block per distinct
// token adds its rows in row order, as the CPU does

__global__ void embedding_backward_kernel(float* dwte, const float* dout, const int* uniq, const int* start,
                                          const int* rows, int C) {
    int u = blockIdx.x;
    float* d = dwte + (size_t)uniq[u] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = d[c];
        for (int i = start[u]; i < start[u + 1]; i++) acc += dout[(size_t)rows[i] * C + c];
        d[c] = acc;
    }
}

static int compare_ll(const void* a, const void* b) {
    long long x = *(const long long*)a, y = *(const long long*)b;
    return (x > y) - (x < y);
}

extern "C" void cuda_embedding_backward(CudaContext* ctx, float* dwte, const float* dout, const int* host_tokens, int N,
                                        int C) {
    if (N == 0) return;
    // host: order rows by (token, row): rows of one token stay in row order
    long long* keyed = (long long*)xmalloc(sizeof(long long) * (size_t)N);
    for (int n = 0; n < N; n++) keyed[n] = (long long)host_tokens[n] * N + n;
    qsort(keyed, (size_t)N, sizeof(long long), compare_ll);
    int* order = (int*)xmalloc(sizeof(int) * (size_t)N);
    for (int n = 0; n < N; n++) order[n] = (int)(keyed[n] % N);
    free(keyed);
    int* pack = (int*)xmalloc(sizeof(int) * (3 * (size_t)N + 1));
    int *uniq = pack, *start = pack + N, *rows = pack + 2 * N + 1;
    int n_uniq = 0;
    for (int i = 0; i < N; i++) {
        if (i == 0 || host_tokens[order[i]] != host_tokens[order[i - 1]]) {
            uniq[n_uniq] = host_tokens[order[i]];
            start[n_uniq++] = i;
        }
        rows[i] = order[i];
    }
    start[n_uniq] = N;
    // device copy: uniq (n_uniq), start (n_uniq + 1), rows (N), packed contiguously
    int* dev = (int*)cuda_scratch(ctx, sizeof(int) * (3 * (size_t)N + 2));
    int *d_uniq = dev, *d_start = dev + n_uniq, *d_rows = d_start + n_uniq + 1;
    cuda_upload(ctx, d_uniq, uniq, sizeof(int) * n_uniq);
    cuda_upload(ctx, d_start, start, sizeof(int) * (n_uniq + 1));
    cuda_upload(ctx, d_rows, rows, sizeof(int) * N);
    int threads = C >= 256 ? 256 : (C + 31) / 32 * 32;
    embedding_backward_kernel<<<n_uniq, threads, 0, ctx->stream>>>(dwte, dout, d_uniq, d_start, d_rows, C);
    CUDA_CHECK_LAUNCH();
    cuda_synchronize(ctx);  // the scratch holds the index until the kernel is done
    free(order);
    free(pack);
}
