// ops_cpu.c: the CPU backend of kernels/ops.h. fp32; matmuls through OpenBLAS (cblas_sgemm),
// everything else plain loops parallelised with OpenMP. The time goes to the matmuls; the rest is
// memory-bound and small.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../ops.h"

// Below this many rows (batched decode) OpenBLAS 0.3.21's sgemm runs far under memory bandwidth:
// measured on 2 cores, 3072x1024 weights: 22-54 GFLOP/s for 2-8 rows against 80-113 for
// matmul_few_rows; at 16 rows sgemm wins (145 against 112).
#define FEW_ROWS 16

// out (N,OC) = inp (N,C) @ weight (OC,C)^T for a few rows: each weight row is read from memory once
// and dotted with every input row while it sits in L1.
static void matmul_few_rows(float* out, const float* inp, const float* weight, int N, int C, int OC) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; o++) {
        const float* w = weight + (size_t)o * C;
        for (int n = 0; n < N; n++) {
            const float* x = inp + (size_t)n * C;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int c = 0; c < C; c++) acc += w[c] * x[c];
            out[(size_t)n * OC + o] = acc;
        }
    }
}

static void matmul_forward_cpu(float* out, const float* inp, const float* weight, const float* bias,
                               int N, int C, int OC) {
    if (N == 1)  // batch-1 decode: sgemv streams the weight at memory bandwidth
        cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, C, 1.0f, weight, C, inp, 1, 0.0f, out, 1);
    else if (N < FEW_ROWS)
        matmul_few_rows(out, inp, weight, N, C, OC);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, out,
                    OC);
    if (bias) {
#pragma omp parallel for if (N * OC > 65536)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
    }
}

static void rmsnorm_forward_cpu(float* out, const float* inp, const float* weight, float eps, int N, int C) {
#pragma omp parallel for if (N * C > 65536)
    for (int n = 0; n < N; n++) {
        const float* x = inp + (size_t)n * C;
        float* o = out + (size_t)n * C;
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        float rstd = 1.0f / sqrtf((float)(ss / C) + eps);
        for (int c = 0; c < C; c++) o[c] = weight[c] * (x[c] * rstd);
    }
}

static void rope_forward_cpu(float* x, const int* pos, const float* inv_freq, int N, int H, int HS) {
    int half = HS / 2;
#pragma omp parallel for if (N * H * HS > 65536)
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < half; j++) {
            // fp32 angle as transformers computes it (position * inv_freq in fp32)
            float angle = (float)pos[n] * inv_freq[j];
            float c = cosf(angle), s = sinf(angle);
            for (int h = 0; h < H; h++) {
                float* v = x + ((size_t)n * H + h) * HS;
                float a = v[j], b = v[j + half];
                v[j] = a * c - b * s;
                v[j + half] = b * c + a * s;
            }
        }
    }
}

static void embedding_forward_cpu(float* out, const int* tokens, const float* wte, int N, int C) {
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * C, wte + (size_t)tokens[n] * C, sizeof(float) * C);
}

static void swiglu_forward_cpu(float* gate, const float* up, int N, int F) {
    size_t total = (size_t)N * F;
#pragma omp parallel for if (total > 65536)
    for (size_t i = 0; i < total; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

static void residual_forward_cpu(float* x, const float* y, int N, int C) {
    size_t total = (size_t)N * C;
#pragma omp parallel for if (total > 65536)
    for (size_t i = 0; i < total; i++) x[i] += y[i];
}

static void attention_forward_cpu(float* out, const float* q, const float* kcache, const float* vcache,
                                  const int* seq, const int* pos, int N, int NH, int NKV, int HS, int L,
                                  int prefix_seq, int prefix_len, float* scratch) {
    int group = NH / NKV;
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for schedule(dynamic, 1) if (N * NH > 1)
    for (int nh = 0; nh < N * NH; nh++) {
        int n = nh / NH, h = nh % NH, g = h / group;
        float* att = scratch + (size_t)omp_get_thread_num() * L;
        const float* qv = q + (size_t)nh * HS;
        size_t base = (size_t)seq[n] * L, prefix_base = (size_t)prefix_seq * L;
        int T = pos[n] + 1;
        float maxv = -INFINITY;
        for (int t = 0; t < T; t++) {
            const float* kv = kcache + (((t < prefix_len ? prefix_base : base) + t) * NKV + g) * HS;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int i = 0; i < HS; i++) dot += qv[i] * kv[i];
            att[t] = dot * scale;
            if (att[t] > maxv) maxv = att[t];
        }
        float sum = 0.0f;
        for (int t = 0; t < T; t++) {
            att[t] = expf(att[t] - maxv);
            sum += att[t];
        }
        float inv = 1.0f / sum;
        float* o = out + (size_t)nh * HS;
        memset(o, 0, sizeof(float) * HS);
        for (int t = 0; t < T; t++) {
            const float* vv = vcache + (((t < prefix_len ? prefix_base : base) + t) * NKV + g) * HS;
            float p = att[t] * inv;
            for (int i = 0; i < HS; i++) o[i] += p * vv[i];
        }
    }
}

static const KernelOps cpu_ops = {
    .name = "cpu",
    .matmul_forward = matmul_forward_cpu,
    .rmsnorm_forward = rmsnorm_forward_cpu,
    .rope_forward = rope_forward_cpu,
    .embedding_forward = embedding_forward_cpu,
    .swiglu_forward = swiglu_forward_cpu,
    .residual_forward = residual_forward_cpu,
    .attention_forward = attention_forward_cpu,
};

const KernelOps* kernels_cpu(void) { return &cpu_ops; }

int kernels_cpu_threads(void) { return omp_get_max_threads(); }
