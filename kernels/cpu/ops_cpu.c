// ops_cpu.c: the CPU backend of kernels/ops.h. fp32; matmuls through OpenBLAS (cblas_sgemm),
// everything else plain loops parallelised with OpenMP. The time goes to the matmuls; the rest is
// memory-bound and small.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../ops.h"
#include "fast_exp.h"
#include "ops_cpu.h"

// Below this many rows (batched decode) OpenBLAS 0.3.21's sgemm runs far under memory bandwidth:
// measured on 2 cores, 3072x1024 weights: 22-54 GFLOP/s for 2-8 rows. matmul_few_rows reads each
// weight once per call instead (see bench/few_rows.c for its rate against sgemm per row count).
#define FEW_ROWS 16

typedef float f32x8 __attribute__((vector_size(32)));

static inline f32x8 load8(const float* p) {
    f32x8 v;
    memcpy(&v, p, sizeof v);  // unaligned
    return v;
}

// out[n][o + i] for the NN input rows x (NN, C) and the OO weight rows w (OO, C), i < OO: every weight
// vector loaded once serves NN rows, every input vector OO weight rows; NN x OO accumulators of 8 lanes
// (at most 8 of them, with 2 + 4 loads: inside the 16 vector registers), then a fixed-order lane sum
// and the scalar tail of C.
static inline __attribute__((always_inline)) void few_rows_tile(float* out, const float* x, const float* w, int C, int OC,
                                                                const int NN, const int OO) {
    f32x8 acc[2][4];
    for (int i = 0; i < OO; i++)
        for (int n = 0; n < NN; n++) acc[i][n] = (f32x8){0};
    int c = 0;
    for (; c + 8 <= C; c += 8) {
        f32x8 wv[2];
        for (int i = 0; i < OO; i++) wv[i] = load8(w + (size_t)i * C + c);
        for (int n = 0; n < NN; n++) {
            f32x8 xv = load8(x + (size_t)n * C + c);
            for (int i = 0; i < OO; i++) acc[i][n] += wv[i] * xv;
        }
    }
    for (int i = 0; i < OO; i++)
        for (int n = 0; n < NN; n++) {
            f32x8 a = acc[i][n];
            float sum = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
            for (int k = c; k < C; k++) sum += w[(size_t)i * C + k] * x[(size_t)n * C + k];
            out[(size_t)n * OC + i] = sum;
        }
}

// out (N,OC) = inp (N,C) @ weight (OC,C)^T for a few rows (N < FEW_ROWS): two weight rows at a time
// against blocks of up to 4 input rows, so each weight row is read from memory once while it serves
// every input row from L1.
static void matmul_few_rows(float* out, const float* inp, const float* weight, int N, int C, int OC) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; o += 2) {
        const float* w = weight + (size_t)o * C;
        int two = o + 1 < OC;
        for (int n = 0; n < N; n += 4) {
            const float* x = inp + (size_t)n * C;
            float* y = out + (size_t)n * OC + o;
            switch ((N - n < 4 ? N - n : 4) * 2 + two) {
            case 2: few_rows_tile(y, x, w, C, OC, 1, 1); break;
            case 3: few_rows_tile(y, x, w, C, OC, 1, 2); break;
            case 4: few_rows_tile(y, x, w, C, OC, 2, 1); break;
            case 5: few_rows_tile(y, x, w, C, OC, 2, 2); break;
            case 6: few_rows_tile(y, x, w, C, OC, 3, 1); break;
            case 7: few_rows_tile(y, x, w, C, OC, 3, 2); break;
            case 8: few_rows_tile(y, x, w, C, OC, 4, 1); break;
            default: few_rows_tile(y, x, w, C, OC, 4, 2); break;
            }
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
    .rmsnorm_forward = rmsnorm_forward_cpu,
    .rope_forward = rope_forward_cpu,
    .embedding_forward = embedding_forward_cpu,
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
