// cuda_loss.cu: the loss of a chunk of rows over the whole vocabulary and its gradient, one block
// per row, the same formulas as distill/loss.c's row_loss (CE, forward KL(teacher || student),
// reverse KL, top-k KL, temperature, T^2). The logits are read a few times and overwritten once with the
// gradient; probabilities are never stored. Sums accumulate in double, exponentials in fp32.
#include <math.h>

#include "cuda_internal.h"

extern "C" {
#include "cuda_train_ops.h"
}

#define LOSS_THREADS 1024



__global__ void __launch_bounds__(LOSS_THREADS)
    loss_rows_kernel(float* z, const float* zt, const int* targets, int V, CudaLossConfig cfg, float scale,
                     double* row_ce, double* row_kd) {
    float* zr = z + (size_t)blockIdx.x * V;
    const float* tr = zt ? zt + (size_t)blockIdx.x * V : NULL;
    const bool ce_on = cfg.ce_weight != 0.0f, kd_on = cfg.kd != 0 && tr;
    const float T = cfg.temperature > 0 ? cfg.temperature : 1.0f;
    const float t2 = cfg.t2_scaling ? T * T : 1.0f;
    float mz = -INFINITY, mt = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        mz = fmaxf(mz, zr[i]);
        if (kd_on) mt = fmaxf(mt, tr[i]);
    }
    mz = block_reduce(mz, MaxOp(), -INFINITY);
    mt = kd_on ? block_reduce(mt, MaxOp(), -INFINITY) : 0.0f;
    double s1 = 0.0, sz = 0.0, st = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        if (ce_on) s1 += expf(zr[i] - mz);
        if (kd_on) {
            sz += expf((zr[i] - mz) / T);
            st += expf((tr[i] - mt) / T);
        }
    }
    s1 = ce_on ? block_reduce(s1, SumOp(), 0.0) : 1.0;
    if (kd_on) {
        sz = block_reduce(sz, SumOp(), 0.0);
        st = block_reduce(st, SumOp(), 0.0);
    }
    const float lse1 = mz + (float)log(s1);
    const float lz = kd_on ? mz / T + (float)log(sz) : 0.0f, lt = kd_on ? mt / T + (float)log(st) : 0.0f;
    const int y = targets ? targets[blockIdx.x] : 0;
    const double ce = ce_on ? (double)lse1 - zr[y] : 0.0;  // read before the gradient overwrites z
    double kl = 0.0;
    if (kd_on) {
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            float lq = tr[i] / T - lt, lp = zr[i] / T - lz;
            if (cfg.kd == 1) {
                float pt = expf(lq);
                if (pt > 0.0f) kl += (double)pt * (lq - lp);
            } else {
                float p = expf(lp);
                if (p > 0.0f) kl += (double)p * (lp - lq);
            }
        }
        kl = block_reduce(kl, SumOp(), 0.0);  // also the barrier after which z may be overwritten
    } else {
        __syncthreads();
    }
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float zi = zr[i];
        float dz = 0.0f;
        if (ce_on) dz += cfg.ce_weight * expf(zi - lse1) - (i == y ? cfg.ce_weight : 0.0f);
        if (kd_on) {
            float lp = zi / T - lz, lq = tr[i] / T - lt, p = expf(lp);
            if (cfg.kd == 1)
                dz += cfg.kd_weight * t2 * (p - expf(lq)) / T;
            else
                dz += cfg.kd_weight * t2 * p * (lp - lq - (float)kl) / T;
        }
        zr[i] = dz * scale;
    }
    if (threadIdx.x == 0) {
        row_ce[blockIdx.x] = ce;
        if (row_kd) row_kd[blockIdx.x] = kd_on ? t2 * kl : 0.0;
    }
}

// ---------------------------------------------------------------------------------------------
// top-k KD: the teacher's K largest logits found by a radix select on their order-preserving bit
// keys (4 passes of 8 bits; counts are integers, so shared-memory atomics stay deterministic), ties
// at the threshold taken lowest index first (as the CPU's heap keeps them), the list ordered by a
// serial scan of per-thread counts. Then KL over the K tokens, both sides renormalised there.

__device__ __forceinline__ uint32_t order_key(float x) {
    uint32_t u = __float_as_uint(x);
    return (u & 0x80000000u) ? ~u : u | 0x80000000u;  // larger float, larger key
}

// per row: idx (K) the chosen tokens, grad (K) scale * d(kd part)/dz at them; row_kd = T^2-scaled KL
__global__ void __launch_bounds__(LOSS_THREADS)
    topk_kd_kernel(const float* z, const float* zt, int V, int K, CudaLossConfig cfg, float scale, int* idx_out,
                   float* grad_out, double* row_kd) {
    __shared__ int hist[256];
    __shared__ uint32_t prefix_s;
    __shared__ int remaining_s;
    __shared__ int gt_off[LOSS_THREADS + 1], eq_off[LOSS_THREADS + 1];
    const float* zr = z + (size_t)blockIdx.x * V;
    const float* tr = zt + (size_t)blockIdx.x * V;
    int* idx = idx_out + (size_t)blockIdx.x * K;
    float* grad = grad_out + (size_t)blockIdx.x * K;
    const float T = cfg.temperature > 0 ? cfg.temperature : 1.0f;
    const float t2 = cfg.t2_scaling ? T * T : 1.0f;
    if (threadIdx.x == 0) prefix_s = 0, remaining_s = K;
    uint32_t mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        uint32_t prefix = prefix_s;
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            uint32_t k = order_key(tr[i]);
            if ((k & mask) == prefix) atomicAdd(&hist[(k >> shift) & 255], 1);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int need = remaining_s, cum = 0, digit = 0;
            for (int b = 255; b >= 0; b--) {
                if (cum + hist[b] >= need) {
                    digit = b;
                    break;
                }
                cum += hist[b];
            }
            remaining_s = need - cum;  // how many of this digit's bucket are still wanted
            prefix_s = prefix | ((uint32_t)digit << shift);
        }
        mask |= 255u << shift;
        __syncthreads();
    }
    const uint32_t tau = prefix_s;
    const int take_eq = remaining_s, n_gt = K - take_eq;
    // contiguous chunks per thread, so index order is thread order
    int chunk = (V + blockDim.x - 1) / blockDim.x, lo = threadIdx.x * chunk, hi = min(V, lo + chunk);
    int my_gt = 0, my_eq = 0;
    for (int i = lo; i < hi; i++) {
        uint32_t k = order_key(tr[i]);
        my_gt += k > tau, my_eq += k == tau;
    }
    gt_off[threadIdx.x] = my_gt, eq_off[threadIdx.x] = my_eq;
    __syncthreads();
    if (threadIdx.x == 0) {  // exclusive scans
        int a = 0, b = 0;
        for (int t = 0; t < (int)blockDim.x; t++) {
            int ga = gt_off[t], eb = eq_off[t];
            gt_off[t] = a, eq_off[t] = b;
            a += ga, b += eb;
        }
    }
    __syncthreads();
    int at_gt = gt_off[threadIdx.x], at_eq = eq_off[threadIdx.x];
    for (int i = lo; i < hi; i++) {
        uint32_t k = order_key(tr[i]);
        if (k > tau) idx[at_gt++] = i;
        else if (k == tau && at_eq < take_eq) idx[n_gt + at_eq++] = i;
        else if (k == tau) at_eq++;
    }
    __syncthreads();
    // the two renormalised distributions over the K tokens
    float ms = -INFINITY, mk = -INFINITY;
    for (int j = threadIdx.x; j < K; j += blockDim.x) ms = fmaxf(ms, zr[idx[j]] / T), mk = fmaxf(mk, tr[idx[j]] / T);
    ms = block_reduce(ms, MaxOp(), -INFINITY);
    mk = block_reduce(mk, MaxOp(), -INFINITY);
    double ss = 0.0, sk = 0.0;
    for (int j = threadIdx.x; j < K; j += blockDim.x) ss += expf(zr[idx[j]] / T - ms), sk += expf(tr[idx[j]] / T - mk);
    ss = block_reduce(ss, SumOp(), 0.0);
    sk = block_reduce(sk, SumOp(), 0.0);
    // logf of the (double) sums: the double log's slow path spilled registers to the stack
    const float lz = ms + logf((float)ss), lt = mk + logf((float)sk);
    double kl = 0.0;
    for (int j = threadIdx.x; j < K; j += blockDim.x) {
        float lp = zr[idx[j]] / T - lz, lq = tr[idx[j]] / T - lt, q = expf(lq);
        if (q > 0.0f) kl += (double)q * (lq - lp);
        grad[j] = scale * cfg.kd_weight * t2 * (expf(lp) - q) / T;
    }
    kl = block_reduce(kl, SumOp(), 0.0);
    if (threadIdx.x == 0) row_kd[blockIdx.x] = t2 * kl;
}

// z[row][idx[j]] += grad[j]: the top-k KD gradient onto the CE gradient (distinct indices per row)
__global__ void scatter_add_kernel(float* z, int V, int K, const int* idx, const float* grad) {
    for (int j = threadIdx.x; j < K; j += blockDim.x)
        z[(size_t)blockIdx.x * V + idx[(size_t)blockIdx.x * K + j]] += grad[(size_t)blockIdx.x * K + j];
}

extern "C" void cuda_loss_rows(CudaContext* ctx, float* z, const float* zt, const int* targets, int R, int V,
                               const CudaLossConfig* cfg, float scale, double* row_ce, double* row_kd) {
    if (R == 0) return;
    if (cfg->kd < 0 || cfg->kd > 3) FATAL("CUDA loss: KD kind %d is not KL, reverse KL or top-k", cfg->kd);
    if (cfg->ce_weight != 0.0f && !targets) FATAL("CUDA loss: cross-entropy without targets");
    if (cfg->kd != 3 || !zt) {
        loss_rows_kernel<<<R, LOSS_THREADS, 0, ctx->stream>>>(z, zt, targets, V, *cfg, scale, row_ce, row_kd);
        CUDA_CHECK_LAUNCH();
        return;
    }
    // top-k: the KD part first (it needs the student's logits), then CE over the vocabulary (which
    // overwrites the logits with its gradient), then the KD gradient added at the K tokens
    int K = cfg->topk < V ? cfg->topk : V;
    if (K < 1 || K > 4096) FATAL("CUDA loss: top-k KD needs k in [1, 4096], not %d", cfg->topk);
    int* idx = (int*)cuda_scratch(ctx, (sizeof(int) + sizeof(float)) * (size_t)R * K);
    float* grad = (float*)(idx + (size_t)R * K);
    topk_kd_kernel<<<R, LOSS_THREADS, 0, ctx->stream>>>(z, zt, V, K, *cfg, scale, idx, grad, row_kd);
    CUDA_CHECK_LAUNCH();
    CudaLossConfig ce_only = *cfg;
    ce_only.kd = 0;
    loss_rows_kernel<<<R, LOSS_THREADS, 0, ctx->stream>>>(z, NULL, targets, V, ce_only, scale, row_ce, NULL);
    CUDA_CHECK_LAUNCH();
    scatter_add_kernel<<<R, 256, 0, ctx->stream>>>(z, V, K, idx, grad);
    CUDA_CHECK_LAUNCH();
}

// one block per row, as hidden_loss's row loop
__global__ void hidden_loss_kernel(int kind, const float* s, const float* t, int N, int C, float scale, float* d,
                                   double* row) {
    size_t at = (size_t)blockIdx.x * C;
    const float *a = s + at, *b = t + at;
    float* g = d + at;
    if (kind == 1) {
        double ab = 0.0, aa = 0.0, bb = 0.0;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            ab += (double)a[c] * b[c];
            aa += (double)a[c] * a[c];
            bb += (double)b[c] * b[c];
        }
        ab = block_reduce(ab, SumOp(), 0.0);
        aa = block_reduce(aa, SumOp(), 0.0);
        bb = block_reduce(bb, SumOp(), 0.0);
        double na = sqrt(aa) + 1e-12, nb = sqrt(bb) + 1e-12, cosv = ab / (na * nb);
        for (int c = threadIdx.x; c < C; c += blockDim.x)
            g[c] = (float)(scale / N * -(b[c] / (na * nb) - cosv * a[c] / (na * na)));
        if (threadIdx.x == 0) row[blockIdx.x] = 1.0 - cosv;
    } else {
        double acc = 0.0;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            double diff = (double)a[c] - b[c];
            acc += diff * diff;
            g[c] = (float)(scale * 2.0 * diff / ((double)N * C));
        }
        acc = block_reduce(acc, SumOp(), 0.0);
        if (threadIdx.x == 0) row[blockIdx.x] = acc / C;
    }
}

extern "C" void cuda_hidden_loss(CudaContext* ctx, int kind, const float* s, const float* t, int N, int C, float scale,
                                 float* d, double* row) {
    if (N == 0) return;
    if (kind != 1 && kind != 2) FATAL("CUDA hidden loss: kind %d is not cosine (1) or MSE (2)", kind);
    int threads = C >= 1024 ? 1024 : (C + 31) / 32 * 32;
    hidden_loss_kernel<<<N, threads, 0, ctx->stream>>>(kind, s, t, N, C, scale, d, row);
    CUDA_CHECK_LAUNCH();
}
