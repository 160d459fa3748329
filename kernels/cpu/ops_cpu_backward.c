// ops_cpu_backward.c: the backward ops of the CPU backend (see kernels/ops.h). fp32; matmuls
// through OpenBLAS; every reduction runs in a fixed order, so a fixed thread count gives bit-identical
// results run to run.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../ops.h"
#include "fast_exp.h"
#include "ops_cpu.h"

void matmul_backward_cpu(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                         const float* weight, int N, int C, int OC) {
    // dinp (N,C) = dout (N,OC) @ weight (OC,C)
    if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C, 0.0f, dinp, C);
    // dweight (OC,C) += dout^T (OC,N) @ inp (N,C)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
#pragma omp parallel for if (N * OC > 65536)
        for (int o = 0; o < OC; o++) {
            float acc = 0.0f;
            for (int n = 0; n < N; n++) acc += dout[(size_t)n * OC + o];
            dbias[o] += acc;
        }
    }
}

void rmsnorm_backward_cpu(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                          float eps, int N, int C) {
    // per row: r = 1/sqrt(mean(x^2) + eps), y = w x r
    //   dw += dy x r;   dx = r w dy - (r^3 / C) x sum(w dy x)
    float* r = xmalloc(sizeof(float) * (size_t)N * 2);
    float* k = r + N;
#pragma omp parallel for if (N * C > 65536)
    for (int n = 0; n < N; n++) {
        const float* x = inp + (size_t)n * C;
        const float* dy = dout + (size_t)n * C;
        double ss = 0.0, dot = 0.0;
        for (int c = 0; c < C; c++) {
            ss += (double)x[c] * x[c];
            dot += (double)weight[c] * dy[c] * x[c];
        }
        r[n] = 1.0f / sqrtf((float)(ss / C) + eps);
        k[n] = (float)(dot * (double)r[n] * r[n] * r[n] / C);
    }
    // weight gradient before dx, since dinp may alias dout; rows summed in order per channel
#pragma omp parallel for if (N * C > 65536)
    for (int c = 0; c < C; c++) {
        float acc = 0.0f;
        for (int n = 0; n < N; n++) acc += dout[(size_t)n * C + c] * inp[(size_t)n * C + c] * r[n];
        dweight[c] += acc;
    }
#pragma omp parallel for if (N * C > 65536)
    for (int n = 0; n < N; n++) {
        const float* x = inp + (size_t)n * C;
        const float* dy = dout + (size_t)n * C;
        float* dx = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) dx[c] = r[n] * weight[c] * dy[c] - k[n] * x[c];
    }
    free(r);
}

void rope_backward_cpu(float* dx, const int* pos, const float* inv_freq, int N, int H, int HS) {
    rope_rotate_cpu(dx, pos, inv_freq, N, H, HS, -1.0f);  // a rotation's transpose turns the other way
}

void swiglu_backward_cpu(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int N, int F) {
    size_t total = (size_t)N * F;
#pragma omp parallel for simd if (total > 65536)
    for (size_t i = 0; i < total; i++) {
        float g = gate[i];
        float sig = 1.0f / (1.0f + exp_fast(-g));
        float silu = g * sig;
        float d = dh[i];
        dup[i] = d * silu;
        dgate[i] = d * up[i] * sig * (1.0f + g * (1.0f - sig));
    }
}

// Rows [t0, t0 + m) of head h of one sequence (q, dout, dq at that sequence's first row; k, v, dk, dv
// at its first row and KV group g), as matrix products over the keys 0..t0+m-1 they see:
//   P = softmax(scale Q K^T) (causal), dP = dO V^T, dS = P (dP - rowsum(P dP)) scale,
//   dQ = dS K, dK += dS^T Q, dV += P^T dO.
// P and dP: (m, t0 + m) each, in scratch.
static void attention_backward_block(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                                     const float* v, int t0, int m, int NH, int NKV, int HS, float scale, float* scratch) {
    int n_keys = t0 + m, ldq = NH * HS, ldk = NKV * HS;
    float* P = scratch;
    float* dP = scratch + (size_t)m * n_keys;
    const float* qb = q + (size_t)t0 * ldq;
    const float* dob = dout + (size_t)t0 * ldq;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n_keys, HS, scale, qb, ldq, k, ldk, 0.0f, P, n_keys);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n_keys, HS, 1.0f, dob, ldq, v, ldk, 0.0f, dP, n_keys);
    for (int i = 0; i < m; i++) {  // the causal softmax, then dS in dP's place
        float* p = P + (size_t)i * n_keys;
        float* d = dP + (size_t)i * n_keys;
        int valid = t0 + i + 1;
        float maxv = -INFINITY;
        for (int u = 0; u < valid; u++) maxv = p[u] > maxv ? p[u] : maxv;
        float inv = 1.0f / exp_shifted_sum(p, valid, maxv), pdp = 0.0f;
#pragma omp simd reduction(+ : pdp)
        for (int u = 0; u < valid; u++) {
            p[u] *= inv;
            pdp += p[u] * d[u];
        }
#pragma omp simd
        for (int u = 0; u < valid; u++) d[u] = p[u] * (d[u] - pdp) * scale;
        for (int u = valid; u < n_keys; u++) p[u] = 0.0f, d[u] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, HS, n_keys, 1.0f, dP, n_keys, k, ldk, 0.0f,
                dq + (size_t)t0 * ldq, ldq);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_keys, HS, m, 1.0f, dP, n_keys, qb, ldq, 1.0f, dk, ldk);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_keys, HS, m, 1.0f, P, n_keys, dob, ldq, 1.0f, dv, ldk);
}

void attention_backward_cpu(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                            const float* v, int B, int T, int NH, int NKV, int HS, float* scratch) {
    // One task per (sequence, KV group): it owns that slice of dk and dv, so no two threads add into the
    // same place and the order of additions is fixed (the matrix products inside run on this thread).
    // Query blocks of ATTENTION_BLOCK_ROWS / 2 rows keep P and dP within the scratch the forward needs.
    int group = NH / NKV, block = ATTENTION_BLOCK_ROWS / 2;
    float scale = 1.0f / sqrtf((float)HS);
    size_t N = (size_t)B * T;
    memset(dk, 0, sizeof(float) * N * NKV * HS);
    memset(dv, 0, sizeof(float) * N * NKV * HS);
#pragma omp parallel for schedule(dynamic, 1) if (B * NKV > 1)
    for (int bg = 0; bg < B * NKV; bg++) {
        int b = bg / NKV, g = bg % NKV;
        float* sc = scratch + (size_t)omp_get_thread_num() * ATTENTION_BLOCK_ROWS * T;
        size_t row0 = (size_t)b * T, kv = (row0 * NKV + g) * HS;
        for (int hh = 0; hh < group; hh++) {
            size_t qo = (row0 * NH + (size_t)(g * group + hh)) * HS;
            for (int t0 = 0; t0 < T; t0 += block)
                attention_backward_block(dq + qo, dk + kv, dv + kv, dout + qo, q + qo, k + kv, v + kv, t0,
                                         T - t0 < block ? T - t0 : block, NH, NKV, HS, scale, sc);
        }
    }
}

void embedding_backward_cpu(float* dwte, const float* dout, const int* tokens, int N, int C) {
    for (int n = 0; n < N; n++) {
        float* d = dwte + (size_t)tokens[n] * C;
        const float* s = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) d[c] += s[c];
    }
}
