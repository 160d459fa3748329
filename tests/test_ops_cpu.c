// test_ops_cpu.c: every CPU op against a naive double-precision reference on random inputs, on both
// sides of each size-dependent path (sgemv / few-rows kernel / sgemm), with sentinels after each
// output buffer to catch out-of-bounds writes (the ggml test-backend-ops pattern).
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "kernels/cpu/fast_exp.h"
#include "kernels/ops.h"
#include "models/model.h"

#define SENTINEL 12345.678f
#define PAD 16

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) {  // uniform in [-1, 1)
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static float* rand_buf(size_t n) {
    float* x = malloc(sizeof(float) * (n + PAD));
    for (size_t i = 0; i < n; i++) x[i] = frand();
    for (int i = 0; i < PAD; i++) x[n + i] = SENTINEL;
    return x;
}

static void expect_sentinels(const float* x, size_t n, const char* what) {
    for (int i = 0; i < PAD; i++) cr_expect_eq(x[n + i], SENTINEL, "%s: write past the end", what);
}

Test(ops_cpu, matmul_every_path_matches_naive) {
    const KernelOps* op = kernels_cpu();
    int Ns[] = {1, 2, 3, 7, 15, 16, 17, 40};
    int C = 67, OC = 45;
    for (unsigned k = 0; k < sizeof Ns / sizeof Ns[0]; k++) {
        int N = Ns[k];
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            float *x = rand_buf((size_t)N * C), *w = rand_buf((size_t)OC * C), *b = rand_buf(OC);
            float* out = rand_buf((size_t)N * OC);
            float* ref = malloc(sizeof(float) * N * OC);
            for (int n = 0; n < N; n++)
                for (int o = 0; o < OC; o++) {
                    double acc = with_bias ? b[o] : 0.0;
                    for (int c = 0; c < C; c++) acc += (double)x[n * C + c] * w[o * C + c];
                    ref[n * OC + o] = (float)acc;
                }
            op->matmul_forward(out, x, w, with_bias ? b : NULL, N, C, OC);
            double err = rel_l2(out, ref, (size_t)N * OC);
            cr_expect_leq(err, 1e-6, "N=%d bias=%d: rel L2 %.3g", N, with_bias, err);
            expect_sentinels(out, (size_t)N * OC, "matmul");
            free(x), free(w), free(b), free(out), free(ref);
        }
    }
}

// matmul_forward_16 and embedding_forward_16: the weights rounded to bf16 / fp16, the reference in
// double from the same 16-bit values widened; every path (one row, few rows, widened sgemm) with OC
// past WIDEN_ROWS so the product runs in two column blocks, and C not a multiple of the 8 lanes.
Test(ops_cpu, sixteen_bit_matmul_and_embedding_every_path_match_naive) {
    const KernelOps* op = kernels_cpu();
    int Ns[] = {1, 2, 3, 5, 15, 16, 40};
    int C = 67, OC = WIDEN_ROWS + 45;
    WeightType types[] = {WEIGHT_BF16, WEIGHT_F16};
    float* scratch = malloc(sizeof(float) * WIDEN_ROWS * C);
    for (int t = 0; t < 2; t++) {
        float* wf = rand_buf((size_t)OC * C);
        uint16_t* w = malloc(sizeof(uint16_t) * (size_t)OC * C);
        for (size_t i = 0; i < (size_t)OC * C; i++) {
            w[i] = f32_to_16(wf[i], types[t]);
            wf[i] = f32_from_16(w[i], types[t]);
        }
        for (unsigned k = 0; k < sizeof Ns / sizeof Ns[0]; k++) {
            int N = Ns[k];
            float *x = rand_buf((size_t)N * C), *b = rand_buf(OC), *out = rand_buf((size_t)N * OC);
            float* ref = malloc(sizeof(float) * N * OC);
            for (int n = 0; n < N; n++)
                for (int o = 0; o < OC; o++) {
                    double acc = b[o];
                    for (int c = 0; c < C; c++) acc += (double)x[n * C + c] * wf[(size_t)o * C + c];
                    ref[n * OC + o] = (float)acc;
                }
            op->matmul_forward_16(out, x, w, types[t], b, N, C, OC, scratch);
            double err = rel_l2(out, ref, (size_t)N * OC);
            cr_expect_leq(err, 1e-6, "%s N=%d: rel L2 %.3g", weight_type_name(types[t]), N, err);
            expect_sentinels(out, (size_t)N * OC, "matmul_forward_16");
            free(x), free(b), free(out), free(ref);
        }
        int tokens[] = {3, 0, OC - 1, 3};
        float* emb = rand_buf(4 * (size_t)C);
        op->embedding_forward_16(emb, tokens, w, types[t], 4, C);
        for (int n = 0; n < 4; n++)
            for (int c = 0; c < C; c++)
                cr_assert_eq(emb[n * C + c], wf[(size_t)tokens[n] * C + c], "embedding row %d col %d", n, c);
        expect_sentinels(emb, 4 * (size_t)C, "embedding_forward_16");
        free(emb), free(w), free(wf);
    }
    free(scratch);
}

Test(ops_cpu, rmsnorm_rope_swiglu_match_naive) {
    const KernelOps* op = kernels_cpu();
    int N = 5, H = 3, HS = 8, C = H * HS;
    float *x = rand_buf((size_t)N * C), *w = rand_buf(C), *out = rand_buf((size_t)N * C);
    op->rmsnorm_forward(out, x, w, 1e-6f, N, C);
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[n * C + c] * x[n * C + c];
        double r = 1.0 / sqrt(ss / C + 1e-6);
        for (int c = 0; c < C; c++) cr_expect_float_eq(out[n * C + c], (float)(w[c] * x[n * C + c] * r), 1e-6);
    }
    expect_sentinels(out, (size_t)N * C, "rmsnorm");
    // RoPE, rotate-half pairs (j, j + HS/2): a rotation keeps each pair's norm and turns it by pos * inv_freq
    int pos[5] = {0, 1, 2, 17, 1000};
    float inv_freq[4] = {1.0f, 0.1f, 0.01f, 0.001f};
    float* r = malloc(sizeof(float) * N * C);
    memcpy(r, x, sizeof(float) * N * C);
    op->rope_forward(r, pos, inv_freq, N, H, HS);
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            for (int j = 0; j < HS / 2; j++) {
                const float* a = x + (n * H + h) * HS;
                const float* b = r + (n * H + h) * HS;
                double ang = (double)pos[n] * inv_freq[j];
                cr_expect_float_eq(b[j], (float)(a[j] * cos(ang) - a[j + HS / 2] * sin(ang)), 2e-4);
                cr_expect_float_eq(b[j + HS / 2], (float)(a[j + HS / 2] * cos(ang) + a[j] * sin(ang)), 2e-4);
            }
    // SwiGLU
    float *g = rand_buf((size_t)N * C), *u = rand_buf((size_t)N * C);
    float* g0 = malloc(sizeof(float) * N * C);
    memcpy(g0, g, sizeof(float) * N * C);
    op->swiglu_forward(g, u, N, C);
    for (int i = 0; i < N * C; i++) cr_expect_float_eq(g[i], (float)(g0[i] / (1 + exp(-g0[i])) * u[i]), 1e-6);
    expect_sentinels(g, (size_t)N * C, "swiglu");
    free(x), free(w), free(out), free(r), free(g), free(u), free(g0);
}

// Runs the attention op on random q/k/v and checks every output against a naive double computation.
static void check_attention(int S, int L, int NH, int NKV, int HS, int N, const int* seq, const int* pos) {
    const KernelOps* op = kernels_cpu();
    float *q = rand_buf((size_t)N * NH * HS), *k = rand_buf((size_t)S * L * NKV * HS), *v = rand_buf((size_t)S * L * NKV * HS);
    float* out = rand_buf((size_t)N * NH * HS);
    float* scratch = malloc(sizeof(float) * (size_t)kernels_cpu_threads() * ATTENTION_BLOCK_ROWS * L);
    double* sc = malloc(sizeof(double) * (size_t)L);
    for (int prefix_len = 0; prefix_len <= 2; prefix_len += 2) {  // 2: positions < 2 come from sequence 0
        op->attention_forward(out, q, k, v, seq, pos, N, NH, NKV, HS, L, 0, prefix_len, scratch);
        for (int n = 0; n < N; n++)
            for (int h = 0; h < NH; h++) {
                int g = h / (NH / NKV);
                double mx = -1e30, sum = 0;
                for (int t = 0; t <= pos[n]; t++) {
                    int s_t = t < prefix_len ? 0 : seq[n];
                    double d = 0;
                    for (int i = 0; i < HS; i++) d += (double)q[(n * NH + h) * HS + i] * k[((s_t * L + t) * NKV + g) * HS + i];
                    sc[t] = d / sqrt((double)HS);
                    mx = fmax(mx, sc[t]);
                }
                for (int t = 0; t <= pos[n]; t++) sum += sc[t] = exp(sc[t] - mx);
                for (int i = 0; i < HS; i++) {
                    double o = 0;
                    for (int t = 0; t <= pos[n]; t++) {
                        int s_t = t < prefix_len ? 0 : seq[n];
                        o += sc[t] / sum * v[((s_t * L + t) * NKV + g) * HS + i];
                    }
                    cr_expect_float_eq(out[(n * NH + h) * HS + i], (float)o, 1e-5, "N %d prefix %d n %d h %d i %d", N,
                                       prefix_len, n, h, i);
                }
            }
        expect_sentinels(out, (size_t)N * NH * HS, "attention");
    }
    free(q), free(k), free(v), free(out), free(scratch), free(sc);
}

Test(ops_cpu, attention_single_rows_match_naive) {
    // two sequences (S=2, L=6), GQA 3 query heads per KV head, rows too short for the block path
    int seq[4] = {0, 0, 1, 1}, pos[4] = {0, 5, 2, 3};
    check_attention(2, 6, 6, 2, 4, 4, seq, pos);
}

Test(ops_cpu, attention_blocks_match_naive) {
    // a prefill run of 70 rows of sequence 1 at positions 3..72 (blocks of 64 + 6) beside 9 rows of
    // sequence 2 (one block of the matrix-product path) and a lone decode row of sequence 0
    enum { N = 80 };
    int seq[N], pos[N];
    for (int i = 0; i < 70; i++) seq[i] = 1, pos[i] = 3 + i;
    for (int i = 0; i < 9; i++) seq[70 + i] = 2, pos[70 + i] = 10 + i;
    seq[79] = 0, pos[79] = 40;
    check_attention(3, 80, 4, 2, 8, N, seq, pos);
}

Test(ops_cpu, exp_fast_is_within_a_few_ulp_of_exp) {
    double worst = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
        double want = exp((double)x), got = exp_fast(x);
        worst = fmax(worst, fabs(got - want) / want);
    }
    cr_expect_leq(worst, 5e-7, "max relative error %.3g", worst);
    cr_expect_eq(exp_fast(0.0f), 1.0f);
    cr_expect(exp_fast(-INFINITY) >= 0.0f && exp_fast(-INFINITY) < 1e-37f);
    cr_expect(isfinite(exp_fast(1000.0f)));
}
