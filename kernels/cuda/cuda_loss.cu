// cuda_loss.cu: the loss of a chunk of rows over the whole vocabulary and its gradient, one block
// per row, the same formulas as distill/loss.c's row_loss (CE, forward KL(teacher || student),
// reverse KL, temperature, T^2). The logits are read a few times and overwritten once with the
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
        row_kd[blockIdx.x] = kd_on ? t2 * kl : 0.0;
    }
}

extern "C" void cuda_loss_rows(CudaContext* ctx, float* z, const float* zt, const int* targets, int R, int V,
                               const CudaLossConfig* cfg, float scale, double* row_ce, double* row_kd) {
    if (R == 0) return;
    if (cfg->kd != 0 && cfg->kd != 1 && cfg->kd != 2) FATAL("CUDA loss: KD kind %d is not forward or reverse KL", cfg->kd);
    if (cfg->ce_weight != 0.0f && !targets) FATAL("CUDA loss: cross-entropy without targets");
    loss_rows_kernel<<<R, LOSS_THREADS, 0, ctx->stream>>>(z, zt, targets, V, *cfg, scale, row_ce, row_kd);
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
