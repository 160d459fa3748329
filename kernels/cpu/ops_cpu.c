// ops_cpu.c: the CPU backend of kernels/ops.h. fp32 activations; matmuls in matmul_cpu.c (OpenBLAS
// and a few-rows kernel), everything else plain loops parallelised with OpenMP. The time goes to the
// matmuls; the rest is memory-bound and small.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../ops.h"
#include "fast_exp.h"
#include "ops_cpu.h"

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

void rope_rotate_cpu(float* x, const int* pos, const float* inv_freq, int N, int H, int HS, float direction) {
    int half = HS / 2;
#pragma omp parallel for if (N * H * HS > 65536)
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < half; j++) {
            // fp32 angle as transformers computes it (position * inv_freq in fp32)
            float angle = (float)pos[n] * inv_freq[j];
            float c = cosf(angle), s = direction * sinf(angle);
            for (int h = 0; h < H; h++) {
                float* v = x + ((size_t)n * H + h) * HS;
                float a = v[j], b = v[j + half];
                v[j] = a * c - b * s;
                v[j + half] = b * c + a * s;
            }
        }
    }
}

static void rope_forward_cpu(float* x, const int* pos, const float* inv_freq, int N, int H, int HS) {
    rope_rotate_cpu(x, pos, inv_freq, N, H, HS, 1.0f);
}

static void embedding_forward_cpu(float* out, const int* tokens, const float* wte, int N, int C) {
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * C, wte + (size_t)tokens[n] * C, sizeof(float) * C);
}

static void swiglu_forward_cpu(float* gate, const float* up, int N, int F) {
    size_t total = (size_t)N * F;
#pragma omp parallel for simd if (total > 65536)
    for (size_t i = 0; i < total; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + exp_fast(-g)) * up[i];
    }
}

static void residual_forward_cpu(float* x, const float* y, int N, int C) {
    size_t total = (size_t)N * C;
#pragma omp parallel for if (total > 65536)
    for (size_t i = 0; i < total; i++) x[i] += y[i];
}

// One query row against positions 0..pos of its sequence (decode, and short runs of rows).
static void attend_row(float* o, const float* qv, const float* kcache, const float* vcache, size_t base,
                       size_t prefix_base, int prefix_len, int T, int g, int NKV, int HS, float scale, float* att) {
    float maxv = -INFINITY;
    for (int t = 0; t < T; t++) {
        const float* kv = kcache + (((t < prefix_len ? prefix_base : base) + t) * NKV + g) * HS;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int i = 0; i < HS; i++) dot += qv[i] * kv[i];
        att[t] = dot * scale;
        if (att[t] > maxv) maxv = att[t];
    }
    float inv = 1.0f / exp_shifted_sum(att, T, maxv);
    memset(o, 0, sizeof(float) * HS);
    for (int t = 0; t < T; t++) {
        const float* vv = vcache + (((t < prefix_len ? prefix_base : base) + t) * NKV + g) * HS;
        float p = att[t] * inv;
        for (int i = 0; i < HS; i++) o[i] += p * vv[i];
    }
}

// m rows of one sequence at positions p0..p0+m-1, one head: scores = Q K^T and out = P V through sgemm
// (keys below prefix_len from the prefix slot, the rest from the row's own slot), causal mask, softmax.
static void attend_block(float* out, const float* q, const float* kcache, const float* vcache, size_t base,
                         size_t prefix_base, int prefix_len, int p0, int m, int h, int g, int NH, int NKV, int HS,
                         float scale, float* S) {
    int T = p0 + m;  // keys 0..p0+m-1
    int split = prefix_len < T ? prefix_len : T;
    int ldq = NH * HS, ldk = NKV * HS;
    const float* qh = q + (size_t)h * HS;
    // S (m, T) = Q_h (m, HS) @ K (T, HS)^T, in two column ranges
    if (split > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, split, HS, scale, qh, ldq,
                    kcache + (prefix_base * NKV + g) * HS, ldk, 0.0f, S, T);
    if (T > split)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, T - split, HS, scale, qh, ldq,
                    kcache + ((base + split) * NKV + g) * HS, ldk, 0.0f, S + split, T);
    for (int i = 0; i < m; i++) {  // causal mask and softmax, row by row
        float* row = S + (size_t)i * T;
        int valid = p0 + i + 1;
        float maxv = -INFINITY;
        for (int t = 0; t < valid; t++) maxv = row[t] > maxv ? row[t] : maxv;
        float inv = 1.0f / exp_shifted_sum(row, valid, maxv);
        for (int t = 0; t < valid; t++) row[t] *= inv;
        for (int t = valid; t < T; t++) row[t] = 0.0f;
    }
    // out_h (m, HS) = P (m, T) @ V (T, HS)
    float* oh = out + (size_t)h * HS;
    if (split > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, HS, split, 1.0f, S, T,
                    vcache + (prefix_base * NKV + g) * HS, ldk, 0.0f, oh, ldq);
    if (T > split)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, HS, T - split, 1.0f, S + split, T,
                    vcache + ((base + split) * NKV + g) * HS, ldk, split > 0 ? 1.0f : 0.0f, oh, ldq);
}

#define MIN_BLOCK_ROWS 8  // shorter runs of rows go through attend_row

static void attention_forward_cpu(float* out, const float* q, const float* kcache, const float* vcache,
                                  const int* seq, const int* pos, int N, int NH, int NKV, int HS, int L,
                                  int prefix_seq, int prefix_len, float* scratch) {
    int group = NH / NKV;
    float scale = 1.0f / sqrtf((float)HS);
    // blocks: runs of rows of one sequence at consecutive positions, cut at ATTENTION_BLOCK_ROWS
    int n_blocks = 0;
    int* starts = xmalloc(sizeof(int) * (size_t)(N + 1));
    for (int n = 0; n < N;) {
        int m = 1;
        while (n + m < N && m < ATTENTION_BLOCK_ROWS && seq[n + m] == seq[n] && pos[n + m] == pos[n] + m) m++;
        starts[n_blocks++] = n;
        n += m;
    }
    starts[n_blocks] = N;
    size_t prefix_base = (size_t)prefix_seq * L;
#pragma omp parallel for schedule(dynamic, 1) if (n_blocks * NH > 1)
    for (int bh = 0; bh < n_blocks * NH; bh++) {
        int b = bh / NH, h = bh % NH, g = h / group;
        int n0 = starts[b], m = starts[b + 1] - n0;
        float* S = scratch + (size_t)omp_get_thread_num() * ATTENTION_BLOCK_ROWS * L;
        size_t base = (size_t)seq[n0] * L;
        if (m >= MIN_BLOCK_ROWS) {
            attend_block(out + (size_t)n0 * NH * HS, q + (size_t)n0 * NH * HS, kcache, vcache, base, prefix_base,
                         prefix_len, pos[n0], m, h, g, NH, NKV, HS, scale, S);
        } else {
            for (int n = n0; n < n0 + m; n++)
                attend_row(out + ((size_t)n * NH + h) * HS, q + ((size_t)n * NH + h) * HS, kcache, vcache, base,
                           prefix_base, prefix_len, pos[n] + 1, g, NKV, HS, scale, S);
        }
    }
    free(starts);
}

static const KernelOps cpu_ops = {
    .name = "cpu",
    .matmul_forward = matmul_forward_cpu,
    .matmul_forward_16 = matmul_forward_16_cpu,
    .rmsnorm_forward = rmsnorm_forward_cpu,
    .rope_forward = rope_forward_cpu,
    .embedding_forward = embedding_forward_cpu,
    .embedding_forward_16 = embedding_forward_16_cpu,
    .swiglu_forward = swiglu_forward_cpu,
    .residual_forward = residual_forward_cpu,
    .attention_forward = attention_forward_cpu,
    .matmul_backward = matmul_backward_cpu,
    .rmsnorm_backward = rmsnorm_backward_cpu,
    .rope_backward = rope_backward_cpu,
    .swiglu_backward = swiglu_backward_cpu,
    .attention_backward = attention_backward_cpu,
    .embedding_backward = embedding_backward_cpu,
};

const KernelOps* kernels_cpu(void) { return &cpu_ops; }

int kernels_cpu_threads(void) { return omp_get_max_threads(); }
