// cuda_gemv.cu: out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias for a few rows (decode, N <= 8):
// memory-bound, so one warp per output channel streams its weight row once with 16-byte loads and
// dots it with every input row (kept hot in L1). Several loads are in flight per lane (unrolled),
// and thousands of warps cover the weight matrix: the aim is the copy bandwidth. Needs C % 8 == 0
// (16-byte rows); cuda_matmul_forward falls back to cuBLASLt otherwise.
#include "cuda_internal.h"

#define GEMV_WARPS 8

__device__ __forceinline__ void bf16x8_to_f32(uint4 v, float* f) {
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 p = __bfloat1622float2(h[i]);
        f[2 * i] = p.x, f[2 * i + 1] = p.y;
    }
}

template <int NR>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    gemv_kernel(void* out, int out_f32, const __nv_bfloat16* inp, const __nv_bfloat16* weight,
                const __nv_bfloat16* bias, int C, int OC) {
    int o = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (o >= OC) return;
    const uint4* w = reinterpret_cast<const uint4*>(weight + (size_t)o * C);
    float acc[NR];
#pragma unroll
    for (int n = 0; n < NR; n++) acc[n] = 0.0f;
    int chunks = C / 8;
#pragma unroll 4
    for (int c8 = lane; c8 < chunks; c8 += 32) {
        float wf[8];
        bf16x8_to_f32(w[c8], wf);
#pragma unroll
        for (int n = 0; n < NR; n++) {
            float xf[8];
            bf16x8_to_f32(reinterpret_cast<const uint4*>(inp + (size_t)n * C)[c8], xf);
#pragma unroll
            for (int i = 0; i < 8; i++) acc[n] += wf[i] * xf[i];
        }
    }
#pragma unroll
    for (int n = 0; n < NR; n++) {
        float s = warp_sum(acc[n]);
        if (lane == 0) {
            if (bias) s += bf(bias[o]);
            if (out_f32)
                reinterpret_cast<float*>(out)[(size_t)n * OC + o] = s;
            else
                reinterpret_cast<__nv_bfloat16*>(out)[(size_t)n * OC + o] = to_bf(s);
        }
    }
}

int cuda_gemv_supported(int N, int C) { return N >= 1 && N <= 8 && C % 8 == 0; }

void cuda_gemv(CudaContext* ctx, void* out, int out_f32, const bf16* inp, const bf16* weight, const bf16* bias, int N,
               int C, int OC) {
    dim3 grid(ceil_div(OC, GEMV_WARPS)), block(GEMV_WARPS * 32);
    const __nv_bfloat16 *x = CBF(inp), *w = CBF(weight), *b = CBF(bias);
    switch (N) {
        case 1: gemv_kernel<1><<<grid, block, 0, ctx->stream>>>(out, out_f32, x, w, b, C, OC); break;
        case 2: gemv_kernel<2><<<grid, block, 0, ctx->stream>>>(out, out_f32, x, w, b, C, OC); break;
        case 3: gemv_kernel<3><<<grid, block, 0, ctx->stream>>>(out, out_f32, x, w, b, C, OC); break;
        case 4: gemv_kernel<4><<<grid, block, 0, ctx->stream>>>(out, out_f32, x, w, b, C, OC); break;
        case 5: gemv_kernel<5><<<grid, block, 0, ctx->stream>>>(out, out_f32, x, w, b, C, OC); break;
        case 6: gemv_kernel<6><<<grid, block, 0, ctx->stream>>>(out, out_f32, x, w, b, C, OC); break;
        case 7: gemv_kernel<7><<<grid, block, 0, ctx->stream>>>(out, out_f32, x, w, b, C, OC); break;
        default: gemv_kernel<8><<<grid, block, 0, ctx->stream>>>(out, out_f32, x, w, b, C, OC); break;
    }
    CUDA_CHECK_LAUNCH();
}
