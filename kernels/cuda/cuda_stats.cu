// cuda_stats.cu: the calibration statistics of pruning (prune/importance.c) reduced on the device,
// so only small tables cross to the host: per row the cosines between residual-stream boundaries,
// per sequence the mean |activation| of each MLP neuron and hidden channel and the mean norm of
// each attention head. Double accumulation, a fixed order per output: deterministic.
#include <math.h>

#include "cuda_internal.h"

extern "C" {
#include "cuda_stats.h"
}

// grid (rows): out[r][p][q] for p < q (the rest untouched); res (P, N, C) fp32
__global__ void boundary_cosines_kernel(double* out, const float* res, int P, int N, int C) {
    extern __shared__ double norms[];  // (P)
    int r = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
    for (int p = warp; p < P; p += n_warps) {
        const float* a = res + ((size_t)p * N + r) * C;
        double s = 0.0;
        for (int c = lane; c < C; c += 32) s += (double)a[c] * a[c];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) norms[p] = sqrt(s);
    }
    __syncthreads();
    int pairs = P * (P - 1) / 2;
    for (int k = warp; k < pairs; k += n_warps) {
        int p = 0, rem = k;  // k-th pair (p, q), p < q, p-major
        while (rem >= P - 1 - p) rem -= P - 1 - p, p++;
        int q = p + 1 + rem;
        const float *a = res + ((size_t)p * N + r) * C, *b = res + ((size_t)q * N + r) * C;
        double s = 0.0;
        for (int c = lane; c < C; c += 32) s += (double)a[c] * b[c];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) out[((size_t)r * P + p) * P + q] = s / (norms[p] * norms[q] + 1e-30);
    }
}

extern "C" void cuda_boundary_cosines(CudaContext* ctx, double* out, const float* res, int P, int N, int rows, int C) {
    if (rows == 0) return;
    boundary_cosines_kernel<<<rows, 256, sizeof(double) * P, ctx->stream>>>(out, res, P, N, C);
    CUDA_CHECK_LAUNCH();
}

// grid (ceil(W/256), L, nb): out[b][l][i] = mean over t < T of |x[l][b*T + t][i]|; x (L, N, W)
__global__ void mean_abs_kernel(double* out, const __nv_bfloat16* x, int L, int N, int T, int W) {
    int i = blockIdx.x * blockDim.x + threadIdx.x, l = blockIdx.y, b = blockIdx.z;
    if (i >= W) return;
    const __nv_bfloat16* base = x + ((size_t)l * N + (size_t)b * T) * W + i;
    double s = 0.0;
    for (int t = 0; t < T; t++) s += fabs((double)bf(base[(size_t)t * W]));
    out[((size_t)b * L + l) * W + i] = s / T;
}

extern "C" void cuda_mean_abs(CudaContext* ctx, double* out, const bf16* x, int L, int N, int T, int nb, int W) {
    if (nb == 0) return;
    mean_abs_kernel<<<dim3(ceil_div(W, 256), L, nb), 256, 0, ctx->stream>>>(out, CBF(x), L, N, T, W);
    CUDA_CHECK_LAUNCH();
}

// grid (NH, L, nb), one warp per block walking t: out[b][l][h] = mean over t of ||att[l][b*T+t][h]||
__global__ void mean_head_norm_kernel(double* out, const __nv_bfloat16* att, int L, int N, int T, int NH, int HS) {
    int h = blockIdx.x, l = blockIdx.y, b = blockIdx.z, lane = threadIdx.x;
    double total = 0.0;
    for (int t = 0; t < T; t++) {
        const __nv_bfloat16* v = att + (((size_t)l * N + (size_t)b * T + t) * NH + h) * HS;
        double s = 0.0;
        for (int d = lane; d < HS; d += 32) s += (double)bf(v[d]) * bf(v[d]);
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        total += sqrt(s);
    }
    if (lane == 0) out[((size_t)b * L + l) * NH + h] = total / T;
}

extern "C" void cuda_mean_head_norms(CudaContext* ctx, double* out, const bf16* att, int L, int N, int T, int nb, int NH,
                                     int HS) {
    if (nb == 0) return;
    mean_head_norm_kernel<<<dim3(NH, L, nb), 32, 0, ctx->stream>>>(out, CBF(att), L, N, T, NH, HS);
    CUDA_CHECK_LAUNCH();
}

// grid (ceil(C/256), nb): out[b][ch] = sum over the 2L+1 norm sites (xn1 of each layer, xn2 of each
// layer, xnf) of the mean over t of |x[b*T + t][ch]|, sites in the CPU's order
__global__ void channel_sites_kernel(double* out, const __nv_bfloat16* xn1, const __nv_bfloat16* xn2,
                                     const __nv_bfloat16* xnf, int L, int N, int T, int C) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (ch >= C) return;
    double site_sum = 0.0;
    for (int site = 0; site <= 2 * L; site++) {
        const __nv_bfloat16* x = site == 2 * L ? xnf : (site % 2 ? xn2 : xn1) + (size_t)(site / 2) * N * C;
        double s = 0.0;
        for (int t = 0; t < T; t++) s += fabs((double)bf(x[((size_t)b * T + t) * C + ch]));
        site_sum += s / T;
    }
    out[(size_t)b * C + ch] = site_sum;
}

extern "C" void cuda_channel_site_means(CudaContext* ctx, double* out, const bf16* xn1, const bf16* xn2, const bf16* xnf,
                                        int L, int N, int T, int nb, int C) {
    if (nb == 0) return;
    channel_sites_kernel<<<dim3(ceil_div(C, 256), nb), 256, 0, ctx->stream>>>(out, CBF(xn1), CBF(xn2), CBF(xnf), L, N, T,
                                                                             C);
    CUDA_CHECK_LAUNCH();
}
