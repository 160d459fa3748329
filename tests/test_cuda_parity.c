// test_cuda_parity.c: the CUDA backend against the CPU backend (ggml's test-backend-ops pattern).
// Every op on fresh random inputs at several shapes, odd ones included; the CPU op runs on the same
// bf16-rounded inputs in fp32, and the two are compared by normalized MSE with bf16-appropriate
// tolerances. Device outputs are poisoned (all bytes 0xFF: NaN in bf16 and fp32) before each call,
// so an unwritten element shows up as a NaN, and sit between guard bands that must stay poisoned
// (out-of-bounds writes). Then whole models: logits of packed prefill + decode on the HF fixtures,
// the tiny preset and a medium random model, and greedy decoding. Skips without a CUDA build or device.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evals/throughput_cuda.h"
#include "helpers.h"
#include "kernels/dtype.h"
#include "kernels/hash.h"
#include "models/forward.h"
#include "models/model.h"

#ifndef ARBOR_HAVE_CUDA
Test(cuda_parity, skipped) { cr_skip_test("arbor was built without CUDA (ARBOR_CUDA=OFF or no nvcc)"); }
#else
#include "kernels/cuda/cuda_ops.h"
#include "evals/perplexity.h"
#include "mmlu/mmlu_eval.h"
#include "prune/importance.h"
#include "models/cuda_model.h"
#include "models/tokenizer/tokenizer.h"
#include "cuda_parity_helpers.h"

// ---------------------------------------------------------------------------------------------
// ops

Test(cuda_parity, matmul_matches_cpu) {
    CudaContext* ctx = ctx_or_skip();
    const KernelOps* cpu = kernels_cpu();
    // 1..8 rows with C % 8 == 0 take the GEMV kernel; each shape also runs with it off (cuBLASLt)
    int shapes[][3] = {{1, 64, 96},    {7, 45, 33},     {5, 72, 40},   {33, 128, 200}, {128, 256, 512},
                       {300, 1024, 384}, {2, 4096, 1}, {8, 1024, 3000}, {3, 4096, 257}, {1, 2560, 9728}};
    for (int use_gemv = 1; use_gemv >= 0; use_gemv--)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        cuda_set_gemv(ctx, use_gemv);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            for (int out_f32 = 0; out_f32 < 2; out_f32++) {
                uint64_t seed = s * 4 + with_bias * 2 + out_f32 + 1;
                float* inp = host_random((size_t)N * C, seed, -1, 1);
                float* w = host_random((size_t)OC * C, seed + 100, -0.1f, 0.1f);
                float* b = host_random((size_t)OC, seed + 200, -0.5f, 0.5f);
                float* ref = malloc(sizeof(float) * N * OC);
                float* out = malloc(sizeof(float) * N * OC);
                cpu->matmul_forward(ref, inp, w, with_bias ? b : NULL, N, C, OC);
                bf16 *dinp = upload_bf16(ctx, inp, (size_t)N * C), *dw = upload_bf16(ctx, w, (size_t)OC * C);
                bf16* db = upload_bf16(ctx, b, OC);
                Guarded g;
                void* dout = guarded_alloc(ctx, &g, (size_t)N * OC * (out_f32 ? 4 : 2));
                cuda_matmul_forward(ctx, dout, out_f32, dinp, dw, with_bias ? db : NULL, N, C, OC);
                if (out_f32)
                    cuda_download(ctx, out, dout, sizeof(float) * N * OC);
                else
                    cuda_download_bf16_as_f32(ctx, out, dout, (size_t)N * OC);
                double e = nmse(out, ref, (size_t)N * OC);
                cr_expect(e < (out_f32 ? 1e-10 : 2e-5), "matmul N=%d C=%d OC=%d bias=%d f32=%d gemv=%d: nmse %g", N, C,
                          OC, with_bias, out_f32, use_gemv, e);
                cr_expect(guards_intact(ctx, &g), "matmul N=%d C=%d OC=%d wrote outside its output", N, C, OC);
                guarded_free(&g);
                cuda_free(dinp), cuda_free(dw), cuda_free(db);
                free(inp), free(w), free(b), free(ref), free(out);
            }
        }
    }
    cuda_context_free(ctx);
}

Test(cuda_parity, embedding_and_gather_are_exact) {
    CudaContext* ctx = ctx_or_skip();
    int V = 1000, C = 200, N = 37;
    float* wte = host_random((size_t)V * C, 11, -1, 1);
    int tokens[37];
    for (int n = 0; n < N; n++) tokens[n] = (int)(splitmix64(n) % V);
    float* ref = malloc(sizeof(float) * N * C);
    kernels_cpu()->embedding_forward(ref, tokens, wte, N, C);
    bf16* dwte = upload_bf16(ctx, wte, (size_t)V * C);
    int* dtok = upload_ints(ctx, tokens, N);
    Guarded g;
    float* dout = guarded_alloc(ctx, &g, sizeof(float) * N * C);
    cuda_embedding_forward(ctx, dout, dtok, dwte, N, C);
    float* out = malloc(sizeof(float) * N * C);
    cuda_download(ctx, out, dout, sizeof(float) * N * C);
    cr_expect(memcmp(out, ref, sizeof(float) * N * C) == 0, "embedding rows differ from the CPU's");
    cr_expect(guards_intact(ctx, &g));

    // gather rows 5, 0, 36 of the table's first N rows (bf16 in, bf16 out: exact)
    int rows[3] = {5, 0, 36};
    int* drows = upload_ints(ctx, rows, 3);
    Guarded g2;
    bf16* dgath = guarded_alloc(ctx, &g2, sizeof(bf16) * 3 * C);
    cuda_gather_rows(ctx, dgath, dwte, drows, 3, C);
    float got[3 * 200];
    cuda_download_bf16_as_f32(ctx, got, dgath, 3 * (size_t)C);
    for (int i = 0; i < 3; i++)
        cr_expect(memcmp(got + i * C, wte + (size_t)rows[i] * C, sizeof(float) * C) == 0, "gathered row %d", rows[i]);
    cr_expect(guards_intact(ctx, &g2));
    guarded_free(&g), guarded_free(&g2);
    cuda_free(dwte), cuda_free(dtok), cuda_free(drows);
    free(wte), free(ref), free(out);
    cuda_context_free(ctx);
}

Test(cuda_parity, residual_rmsnorm_matches_cpu) {
    CudaContext* ctx = ctx_or_skip();
    const KernelOps* cpu = kernels_cpu();
    int shapes[][2] = {{1, 64}, {3, 45}, {17, 1000}, {64, 4096}, {2, 5120}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], C = shapes[s][1];
        float* x = host_random((size_t)N * C, 30 + s, -2, 2);
        float* y = host_random((size_t)N * C, 40 + s, -1, 1);
        float* w = host_random((size_t)C, 50 + s, 0.5f, 1.5f);
        // CPU: x += y; ref = rmsnorm(x) * w
        float* xr = malloc(sizeof(float) * N * C);
        float* ref = malloc(sizeof(float) * N * C);
        memcpy(xr, x, sizeof(float) * N * C);
        cpu->residual_forward(xr, y, N, C);
        cpu->rmsnorm_forward(ref, xr, w, 1e-6f, N, C);
        float* dx = cuda_malloc(sizeof(float) * N * C);
        cuda_upload(ctx, dx, x, sizeof(float) * N * C);
        bf16 *dy = upload_bf16(ctx, y, (size_t)N * C), *dw = upload_bf16(ctx, w, C);
        Guarded g;
        bf16* dout = guarded_alloc(ctx, &g, sizeof(bf16) * N * C);
        cuda_residual_rmsnorm_forward(ctx, dx, dy, dout, dw, 1e-6f, N, C);
        float* out = malloc(sizeof(float) * N * C);
        float* xo = malloc(sizeof(float) * N * C);
        cuda_download_bf16_as_f32(ctx, out, dout, (size_t)N * C);
        cuda_download(ctx, xo, dx, sizeof(float) * N * C);
        cr_expect(nmse(xo, xr, (size_t)N * C) < 1e-12, "residual N=%d C=%d", N, C);
        double e = nmse(out, ref, (size_t)N * C);
        cr_expect(e < 2e-5, "residual+rmsnorm N=%d C=%d: nmse %g", N, C, e);
        cr_expect(guards_intact(ctx, &g));
        // the plain rmsnorm (no residual) on the updated x
        cuda_memset(ctx, dout, 0xFF, sizeof(bf16) * N * C);
        cuda_rmsnorm_forward(ctx, dout, dx, dw, 1e-6f, N, C);
        cuda_download_bf16_as_f32(ctx, out, dout, (size_t)N * C);
        e = nmse(out, ref, (size_t)N * C);
        cr_expect(e < 2e-5, "rmsnorm N=%d C=%d: nmse %g", N, C, e);
        guarded_free(&g);
        cuda_free(dx), cuda_free(dy), cuda_free(dw);
        free(x), free(y), free(w), free(xr), free(ref), free(out), free(xo);
    }
    cuda_context_free(ctx);
}

Test(cuda_parity, swiglu_matches_cpu) {
    CudaContext* ctx = ctx_or_skip();
    int shapes[][2] = {{1, 96}, {7, 333}, {64, 3072}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], F = shapes[s][1];
        float* gateup = host_random((size_t)N * 2 * F, 60 + s, -4, 4);
        float* gate = malloc(sizeof(float) * N * F);
        float* up = malloc(sizeof(float) * N * F);
        for (int n = 0; n < N; n++) {
            memcpy(gate + (size_t)n * F, gateup + (size_t)n * 2 * F, sizeof(float) * F);
            memcpy(up + (size_t)n * F, gateup + (size_t)n * 2 * F + F, sizeof(float) * F);
        }
        kernels_cpu()->swiglu_forward(gate, up, N, F);
        bf16* dgu = upload_bf16(ctx, gateup, (size_t)N * 2 * F);
        Guarded g;
        bf16* dh = guarded_alloc(ctx, &g, sizeof(bf16) * N * F);
        cuda_swiglu_forward(ctx, dh, dgu, N, F);
        float* out = malloc(sizeof(float) * N * F);
        cuda_download_bf16_as_f32(ctx, out, dh, (size_t)N * F);
        double e = nmse(out, gate, (size_t)N * F);
        cr_expect(e < 2e-5, "swiglu N=%d F=%d: nmse %g", N, F, e);
        cr_expect(guards_intact(ctx, &g));
        guarded_free(&g);
        cuda_free(dgu);
        free(gateup), free(gate), free(up), free(out);
    }
    cuda_context_free(ctx);
}

// ---------------------------------------------------------------------------------------------
// q/k norm + RoPE + cache store, and attention

typedef struct {
    int N, NH, NKV, HS, S, L, qk_norm;
} AttShape;

// GQA ratios (query heads per KV head) 2, 1, 4, 8, 2, 4, 8, 16, 12: the decode kernel serves up to 8 (HS <= 128)
// or 4 (HS 256) query heads of one KV head per block, so 16 and 12 take several chunks of one group
static const AttShape att_shapes[] = {
    {5, 4, 2, 16, 3, 32, 1},   {9, 3, 3, 24, 2, 40, 0},    {33, 32, 8, 128, 4, 96, 1}, {6, 16, 2, 256, 2, 64, 1},
    {64, 16, 8, 64, 1, 200, 1}, {256, 8, 2, 128, 1, 512, 1}, {7, 32, 4, 128, 3, 300, 1}, {4, 16, 1, 64, 2, 80, 1},
    {3, 12, 1, 256, 2, 70, 0},
};

// distinct (seq, pos) slots, positions up to L-1: row r of a sequence takes a position in its own
// stride-wide band (a wrapped position would make two rows write one KV slot: a race, not a bug)
static void qkv_rows(const AttShape* a, size_t t, int* seq, int* pos) {
    int per_seq = (a->N + a->S - 1) / a->S;
    cr_assert_leq(per_seq, a->L, "shape %zu: %d rows per sequence do not fit %d positions", t, per_seq, a->L);
    int stride = a->L / per_seq;
    for (int n = 0; n < a->N; n++) {
        seq[n] = n % a->S;
        pos[n] = (n / a->S) * stride + (int)(splitmix64(n + 7 * t) % (uint64_t)stride);
    }
}

// runs without a GPU: the rows the qkv_prepare test stages never share a KV slot, and stay in range
Test(cuda_parity, qkv_prepare_rows_have_distinct_kv_slots) {
    for (size_t t = 0; t < sizeof att_shapes / sizeof att_shapes[0]; t++) {
        const AttShape* a = &att_shapes[t];
        int* seq = malloc(sizeof(int) * a->N);
        int* pos = malloc(sizeof(int) * a->N);
        qkv_rows(a, t, seq, pos);
        for (int n = 0; n < a->N; n++) {
            cr_assert(pos[n] >= 0 && pos[n] < a->L && seq[n] >= 0 && seq[n] < a->S, "shape %zu row %d", t, n);
            for (int m = n + 1; m < a->N; m++)
                cr_assert(seq[n] != seq[m] || pos[n] != pos[m], "shape %zu: rows %d and %d share a KV slot", t, n, m);
        }
        free(seq);
        free(pos);
    }
}

Test(cuda_parity, qkv_prepare_matches_cpu_norm_rope_and_store) {
    CudaContext* ctx = ctx_or_skip();
    const KernelOps* cpu = kernels_cpu();
    for (size_t t = 0; t < sizeof att_shapes / sizeof att_shapes[0]; t++) {
        AttShape a = att_shapes[t];
        int Q = a.NH * a.HS, KV = a.NKV * a.HS, QKV = Q + 2 * KV, N = a.N;
        float* qkv = host_random((size_t)N * QKV, 70 + t, -2, 2);
        float* qn = host_random(a.HS, 80 + t, 0.5f, 1.5f);
        float* kn = host_random(a.HS, 90 + t, 0.5f, 1.5f);
        int* seq = malloc(sizeof(int) * N);
        int* pos = malloc(sizeof(int) * N);
        qkv_rows(&a, t, seq, pos);
        float* inv_freq = malloc(sizeof(float) * a.HS / 2);
        for (int j = 0; j < a.HS / 2; j++) inv_freq[j] = 1.0f / powf(10000.0f, (float)(2 * j) / a.HS);
        // CPU: split, per-head norm, rope
        float* q = malloc(sizeof(float) * N * Q);
        float* k = malloc(sizeof(float) * N * KV);
        for (int n = 0; n < N; n++) {
            memcpy(q + (size_t)n * Q, qkv + (size_t)n * QKV, sizeof(float) * Q);
            memcpy(k + (size_t)n * KV, qkv + (size_t)n * QKV + Q, sizeof(float) * KV);
        }
        if (a.qk_norm) {
            cpu->rmsnorm_forward(q, q, qn, 1e-6f, N * a.NH, a.HS);
            cpu->rmsnorm_forward(k, k, kn, 1e-6f, N * a.NKV, a.HS);
        }
        cpu->rope_forward(q, pos, inv_freq, N, a.NH, a.HS);
        cpu->rope_forward(k, pos, inv_freq, N, a.NKV, a.HS);
        // GPU
        bf16* dqkv = upload_bf16(ctx, qkv, (size_t)N * QKV);
        bf16 *dqn = upload_bf16(ctx, qn, a.HS), *dkn = upload_bf16(ctx, kn, a.HS);
        int *dseq = upload_ints(ctx, seq, N), *dpos = upload_ints(ctx, pos, N);
        float* dfreq = cuda_malloc(sizeof(float) * a.HS / 2);
        cuda_upload(ctx, dfreq, inv_freq, sizeof(float) * a.HS / 2);
        size_t cache_n = (size_t)a.S * a.L * KV;
        Guarded gk, gv;
        bf16* dk = guarded_alloc(ctx, &gk, sizeof(bf16) * cache_n);
        bf16* dv = guarded_alloc(ctx, &gv, sizeof(bf16) * cache_n);
        cuda_qkv_prepare(ctx, dqkv, dqkv, QKV, dk, dv, a.qk_norm ? dqn : NULL, a.qk_norm ? dkn : NULL, dseq, dpos,
                         dfreq, 1e-6f, N, a.NH, a.NKV, a.HS, a.L);
        float* back = malloc(sizeof(float) * N * QKV);
        float* kc = malloc(sizeof(float) * cache_n);
        float* vc = malloc(sizeof(float) * cache_n);
        cuda_download_bf16_as_f32(ctx, back, dqkv, (size_t)N * QKV);
        cuda_download_bf16_as_f32(ctx, kc, dk, cache_n);
        cuda_download_bf16_as_f32(ctx, vc, dv, cache_n);
        float* gq = malloc(sizeof(float) * N * Q);
        float* gk_rows = malloc(sizeof(float) * N * KV);
        float* gv_rows = malloc(sizeof(float) * N * KV);
        float* ref_v = malloc(sizeof(float) * N * KV);
        for (int n = 0; n < N; n++) {
            size_t slot = ((size_t)seq[n] * a.L + pos[n]) * KV;
            memcpy(gq + (size_t)n * Q, back + (size_t)n * QKV, sizeof(float) * Q);
            memcpy(gk_rows + (size_t)n * KV, kc + slot, sizeof(float) * KV);
            memcpy(gv_rows + (size_t)n * KV, vc + slot, sizeof(float) * KV);
            memcpy(ref_v + (size_t)n * KV, qkv + (size_t)n * QKV + Q + KV, sizeof(float) * KV);
        }
        double eq = nmse(gq, q, (size_t)N * Q), ek = nmse(gk_rows, k, (size_t)N * KV);
        cr_expect(eq < 2e-5 && ek < 2e-5, "shape %zu: q nmse %g, k nmse %g", t, eq, ek);
        cr_expect(memcmp(gv_rows, ref_v, sizeof(float) * N * KV) == 0, "shape %zu: v not copied exactly", t);
        // every cache slot no row wrote is still poison (NaN); every written one is finite
        size_t written = 0, poisoned = 0;
        for (size_t i = 0; i < cache_n; i++) {
            written += isfinite(kc[i]) != 0;
            poisoned += isnan(vc[i]) != 0;
        }
        cr_expect_eq(written, (size_t)N * KV, "shape %zu: %zu k-cache values written, expected %zu", t, written,
                     (size_t)N * KV);
        cr_expect_eq(poisoned, cache_n - (size_t)N * KV, "shape %zu: v-cache slots written beyond the rows'", t);
        cr_expect(guards_intact(ctx, &gk) && guards_intact(ctx, &gv), "shape %zu: cache store out of bounds", t);
        guarded_free(&gk), guarded_free(&gv);
        cuda_free(dqkv), cuda_free(dqn), cuda_free(dkn), cuda_free(dseq), cuda_free(dpos), cuda_free(dfreq);
        free(qkv), free(qn), free(kn), free(seq), free(pos), free(inv_freq), free(q), free(k), free(back), free(kc);
        free(vc), free(gq), free(gk_rows), free(gv_rows), free(ref_v);
    }
    cuda_context_free(ctx);
}

// Row layouts: 0 one sequence at its last N positions (prefill); 1 rows scattered over sequences
// and positions (decode-like); 2 as 1 with a shared prefix read from another sequence; 3 a block of
// consecutive positions per sequence at its own offset (batched prefill of unequal prompts); 4 as
// 3 after a shared prefix (MMLU questions after the few-shot prompt).
#define ATT_MODES 5

static void attention_rows(AttShape a, int mode, uint64_t seed, int* seq, int* pos, int* prefix_seq, int* prefix_len) {
    int N = a.N, block = (N + a.S - 1) / a.S;
    *prefix_seq = 0, *prefix_len = 0;
    if (mode == 2 || mode == 4) *prefix_seq = a.S - 1, *prefix_len = mode == 2 ? a.L / 3 : a.L / 4;
    for (int n = 0; n < N; n++) {
        if (mode == 0) {
            seq[n] = 0, pos[n] = a.L - N + n;
        } else if (mode <= 2) {
            seq[n] = n % a.S;
            pos[n] = (int)(splitmix64(seed + n) % a.L);
            if (pos[n] < *prefix_len) pos[n] = *prefix_len + n % (a.L - *prefix_len);
        } else {
            int s = n / block, room = a.L - block - *prefix_len + 1;
            seq[n] = s;
            pos[n] = *prefix_len + (int)(splitmix64(seed + s) % room) + n % block;
        }
    }
}

static void attention_case(CudaContext* ctx, AttShape a, int mode, uint64_t seed) {
    int Q = a.NH * a.HS, KV = a.NKV * a.HS, QS = Q + 2 * KV, N = a.N;  // q rows strided as in qkv
    size_t cache_n = (size_t)a.S * a.L * KV;
    float* kc = host_random(cache_n, seed, -1, 1);
    float* vc = host_random(cache_n, seed + 1, -1, 1);
    float* qrows = host_random((size_t)N * QS, seed + 2, -1, 1);
    int* seq = malloc(sizeof(int) * N);
    int* pos = malloc(sizeof(int) * N);
    int prefix_seq, prefix_len;
    attention_rows(a, mode, seed, seq, pos, &prefix_seq, &prefix_len);
    float* q = malloc(sizeof(float) * N * Q);
    for (int n = 0; n < N; n++) memcpy(q + (size_t)n * Q, qrows + (size_t)n * QS, sizeof(float) * Q);
    float* ref = malloc(sizeof(float) * N * Q);
    float* scratch = malloc(sizeof(float) * (size_t)kernels_cpu_threads() * ATTENTION_BLOCK_ROWS * a.L);
    kernels_cpu()->attention_forward(ref, q, kc, vc, seq, pos, N, a.NH, a.NKV, a.HS, a.L, prefix_seq, prefix_len,
                                     scratch);
    bf16 *dk = upload_bf16(ctx, kc, cache_n), *dv = upload_bf16(ctx, vc, cache_n);
    bf16* dq = upload_bf16(ctx, qrows, (size_t)N * QS);
    int *dseq = upload_ints(ctx, seq, N), *dpos = upload_ints(ctx, pos, N);
    int* tiles = malloc(sizeof(int) * 4 * N);
    int n_tiles = cuda_attention_prefill_tiles(seq, pos, N, tiles);
    int* dtiles = upload_ints(ctx, tiles, 4 * n_tiles);
    float* out = malloc(sizeof(float) * N * Q);
    // kernel 0: the general one; 1: the tensor-core one (any rows: runs of one are tiles too);
    // 2: the general one with each row's keys split over 5 blocks (flash-decoding)
    float* partial = cuda_malloc(sizeof(float) * (size_t)N * a.NH * 5 * (a.HS + 2));
    for (int kernel = 0; kernel < 3; kernel++) {
        if (kernel == 1 && !cuda_attention_prefill_supported(a.HS)) continue;
        Guarded g;
        bf16* dout = guarded_alloc(ctx, &g, sizeof(bf16) * N * Q);
        if (kernel == 0)
            cuda_attention_forward(ctx, dout, dq, QS, dk, dv, dseq, dpos, N, a.NH, a.NKV, a.HS, a.L, prefix_seq,
                                   prefix_len);
        else if (kernel == 1)
            cuda_attention_prefill(ctx, dout, dq, QS, dk, dv, dtiles, n_tiles, a.NH, a.NKV, a.HS, a.L, prefix_seq,
                                   prefix_len, NULL);
        else
            cuda_attention_forward_split(ctx, dout, dq, QS, dk, dv, dseq, dpos, N, a.NH, a.NKV, a.HS, a.L, prefix_seq,
                                         prefix_len, 5, partial);
        cuda_download_bf16_as_f32(ctx, out, dout, (size_t)N * Q);
        double e = nmse(out, ref, (size_t)N * Q);
        // the tensor-core kernel rounds P to bf16 before P V: a little more error than the general one
        const char* names[] = {"general", "tensor-core", "split"};
        cr_expect(e < (kernel == 1 ? 1e-4 : 2e-5), "%s attention N=%d NH=%d NKV=%d HS=%d L=%d mode %d (%d tiles): nmse %g",
                  names[kernel], N, a.NH, a.NKV, a.HS, a.L, mode, n_tiles, e);
        cr_expect(guards_intact(ctx, &g), "%s attention wrote outside its output (mode %d)", names[kernel], mode);
        guarded_free(&g);
    }
    cuda_free(dk), cuda_free(dv), cuda_free(dq), cuda_free(dseq), cuda_free(dpos), cuda_free(dtiles), cuda_free(partial);
    free(kc), free(vc), free(qrows), free(seq), free(pos), free(q), free(ref), free(scratch), free(out), free(tiles);
}

Test(cuda_parity, attention_matches_cpu) {
    CudaContext* ctx = ctx_or_skip();
    for (size_t t = 0; t < sizeof att_shapes / sizeof att_shapes[0]; t++)
        for (int mode = 0; mode < ATT_MODES; mode++) attention_case(ctx, att_shapes[t], mode, 1000 + 10 * t + mode);
    cuda_context_free(ctx);
}

// ---------------------------------------------------------------------------------------------
// whole models

static int argmax(const float* v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

// frees a CPU model and its GPU twin with their caches and run states, then the context
static void free_both(Model* m, RunState* rs, KVCache* kc, CudaModel* g, CudaRunState* gs, CudaKVCache* gk, CudaContext* ctx) {
    cuda_runstate_free(gs);
    cuda_kvcache_free(gk);
    cuda_model_free(g);
    runstate_free(rs);
    kvcache_free(kc);
    model_free(m);
    cuda_context_free(ctx);
}

// 1 when the CPU's top-2 margin in ref (V) exceeds twice the largest |out - ref|: there the argmax
// must agree (the difference cannot reorder them); *top gets the CPU's argmax
static int margin_is_clear(const float* ref, const float* out, int V, int* top) {
    *top = argmax(ref, V);
    float maxdiff = 0, second = -INFINITY;
    for (int v = 0; v < V; v++) {
        maxdiff = fmaxf(maxdiff, fabsf(out[v] - ref[v]));
        if (v != *top && ref[v] > second) second = ref[v];
    }
    return ref[*top] - second > 2 * maxdiff;
}

// Packed prefill of three prompts of unequal length, then `steps` decode steps of all three fed
// with the CPU's greedy tokens. Returns the worst logits nmse; *argmax_checked/agreed count decode
// rows whose CPU top-2 margin exceeds twice the largest |gpu - cpu| logit difference (there the
// argmax must agree: the difference cannot reorder them) and those that did.
static double model_parity(CudaContext* ctx, Model* m, int steps, int* argmax_checked, int* argmax_agreed) {
    round_arena_to_bf16(m);  // both backends see the same weights
    const ModelConfig* c = &m->cfg;
    int V = c->vocab, lens[3] = {5, 11, 8}, S = 3, L = 64, N = 24;
    int tokens[24], seq[24], pos[24], n = 0;
    for (int s = 0; s < S; s++)
        for (int p = 0; p < lens[s]; p++, n++) {
            tokens[n] = (int)(splitmix64(97 * s + p) % V);
            seq[n] = s;
            pos[n] = p;
        }
    KVCache kc;
    RunState rs;
    kvcache_create(&kc, c, S, L);
    runstate_create(&rs, c, N, L);
    CudaModel g;
    cuda_model_create(&g, ctx, c);
    cuda_model_upload(&g, m);
    CudaKVCache gk;
    CudaRunState gs;
    cuda_kvcache_create(&gk, c, S, L);
    cuda_runstate_create(&gs, c, N, N);
    float* ref = malloc(sizeof(float) * N * V);
    float* out = malloc(sizeof(float) * N * V);
    Err e;
    cr_assert_eq(model_forward(m, &rs, &kc, tokens, seq, pos, N, NULL, N, ref, &e), 0, "%s", e.msg);
    cr_assert_eq(cuda_model_forward(&g, &gs, &gk, tokens, seq, pos, N, NULL, N, out, &e), 0, "%s", e.msg);
    double worst = nmse(out, ref, (size_t)N * V);
    // decode: one row per sequence; the GPU logits come back for rows {2, 0, 1} to exercise the gather
    int rows[3] = {2, 0, 1}, next[3], last[3] = {4, 15, 23};
    for (int s = 0; s < S; s++) next[s] = argmax(ref + (size_t)last[s] * V, V);
    *argmax_checked = *argmax_agreed = 0;
    for (int t = 0; t < steps; t++) {
        int dseq[3] = {0, 1, 2}, dpos[3];
        for (int s = 0; s < S; s++) dpos[s] = lens[s] + t;
        cr_assert_eq(model_forward(m, &rs, &kc, next, dseq, dpos, S, NULL, S, ref, &e), 0, "%s", e.msg);
        cr_assert_eq(cuda_model_forward(&g, &gs, &gk, next, dseq, dpos, S, rows, S, out, &e), 0, "%s", e.msg);
        for (int i = 0; i < S; i++) {
            const float* r = ref + (size_t)rows[i] * V;
            const float* o = out + (size_t)i * V;
            double en = nmse(o, r, V);
            if (en > worst) worst = en;
            int top;
            if (margin_is_clear(r, o, V, &top)) {
                ++*argmax_checked;
                *argmax_agreed += argmax(o, V) == top;
            }
        }
        for (int s = 0; s < S; s++) next[s] = argmax(ref + (size_t)s * V, V);
    }
    free(ref), free(out);
    cuda_runstate_free(&gs);
    cuda_kvcache_free(&gk);
    cuda_model_free(&g);
    runstate_free(&rs);
    kvcache_free(&kc);
    return worst;
}

static void check_model(CudaContext* ctx, Model* m, const char* what, int steps) {
    int checked = 0, agreed = 0;
    double worst = model_parity(ctx, m, steps, &checked, &agreed);
    cr_log_info("%s: worst logits nmse %.3g; decode argmax agreed %d of %d rows with a clear CPU margin", what, worst,
                agreed, checked);
    cr_expect(worst < 2e-3, "%s: logits nmse %g (bf16 activations)", what, worst);
    cr_expect_eq(agreed, checked, "%s: GPU argmax differs where the CPU's margin exceeds the logit error", what);
}

Test(cuda_parity, hf_fixture_models_match_cpu) {
    CudaContext* ctx = ctx_or_skip();
    for (int i = 0; i < N_HF_FIXTURES; i++) {
        Model m;
        load_fixture_model(&m, hf_fixture_names[i]);
        check_model(ctx, &m, hf_fixture_names[i], 8);
        model_free(&m);
    }
    cuda_context_free(ctx);
}

Test(cuda_parity, tiny_and_medium_random_models_match_cpu) {
    CudaContext* ctx = ctx_or_skip();
    Model m;
    tiny_random_model(&m, 7);
    check_model(ctx, &m, "tiny", 32);
    ModelConfig cfg = m.cfg;
    Err e;
    model_free(&m);
    // medium: real head size, GQA 4, untied, a vocabulary big enough for the lm_head to matter
    cfg.n_layers = 4, cfg.hidden = 512, cfg.ffn = 1536, cfg.n_heads = 8, cfg.n_kv_heads = 2, cfg.head_dim = 128;
    cfg.vocab = 8192, cfg.tie_embeddings = false;
    cr_assert_eq(config_validate(&cfg, "medium", &e), 0, "%s", e.msg);
    model_create(&m, &cfg);
    model_init_random(&m, 8);
    check_model(ctx, &m, "medium", 16);
    model_free(&m);
    cuda_context_free(ctx);
}

// The bench's chunked prefill (cuda_prefill_chunks): 3 prompts of 40 tokens in calls of 16 rows, so most
// calls start mid-prompt and read its earlier positions back from the cache; each prompt's last-token
// logits against the CPU's forward of all 120 rows at once. And the run state allocates what the
// memory plan counts (models/device_sizes.h), up to the allocator's granularity per buffer.
Test(cuda_parity, chunked_prefill_matches_cpu_and_the_memory_plan) {
    CudaContext* ctx = ctx_or_skip();
    ModelConfig cfg;
    Err e;
    config_preset("tiny", &cfg, &e);
    cfg.n_layers = 3, cfg.hidden = 256, cfg.ffn = 768, cfg.n_heads = 8, cfg.n_kv_heads = 2, cfg.head_dim = 64;
    cfg.vocab = 4096, cfg.max_positions = 128;
    cr_assert_eq(config_validate(&cfg, "chunked", &e), 0, "%s", e.msg);
    Model m;
    model_create(&m, &cfg);
    model_init_random(&m, 21);
    round_arena_to_bf16(&m);
    int B = 3, P = 40, N = B * P, V = cfg.vocab;
    int *tok = malloc(sizeof(int) * N), *seq = malloc(sizeof(int) * N), *pos = malloc(sizeof(int) * N), last[3];
    for (int i = 0; i < N; i++) tok[i] = (int)(splitmix64(300 + i) % V), seq[i] = i / P, pos[i] = i % P;
    for (int b = 0; b < B; b++) last[b] = b * P + P - 1;
    KVCache kc;
    RunState rs;
    kvcache_create(&kc, &cfg, B, P);
    runstate_create(&rs, &cfg, N, P);
    float* ref = malloc(sizeof(float) * B * V);
    cr_assert_eq(model_forward(&m, &rs, &kc, tok, seq, pos, N, last, B, ref, &e), 0, "%s", e.msg);
    CudaModel g;
    cuda_model_create(&g, ctx, &cfg);
    cuda_model_upload(&g, &m);
    CudaKVCache gk;
    CudaRunState gs;
    cuda_kvcache_create(&gk, &cfg, B, P);
    cuda_synchronize(ctx);
    size_t before = cuda_memory_used();
    cuda_runstate_create(&gs, &cfg, 16, B);
    size_t used = cuda_memory_used() - before, planned = runstate_device_bytes(&cfg, 16, B);
    cr_expect(used >= planned && used <= planned + 13 * ((size_t)2 << 20), "run state: %zu bytes in use, %zu planned", used,
              planned);
    float* out = malloc(sizeof(float) * B * V);
    cr_assert_eq(cuda_prefill_chunks(&g, &gs, &gk, tok, B, P, 0, out, &e), 0, "%s", e.msg);
    double err = nmse(out, ref, (size_t)B * V);
    cr_expect(err < 2e-3, "chunked prefill: last-token logits nmse %g (bf16 activations)", err);
    for (int b = 0; b < B; b++) {  // the next token agrees wherever the CPU's top-2 margin exceeds the logit error
        const float *o = out + (size_t)b * V, *r = ref + (size_t)b * V;
        int top;
        if (margin_is_clear(r, o, V, &top)) cr_expect_eq(argmax(o, V), top, "prompt %d's next token", b);
    }
    free(tok), free(seq), free(pos), free(ref), free(out);
    free_both(&m, &rs, &kc, &g, &gs, &gk, ctx);
}

// MMLU through the engine seam on both backends: a tiny-shaped random Qwen3 with the real vocabulary,
// one question per subject per 2, 1 shot. Predictions must agree wherever the CPU's margin between
// its top two letters exceeds twice the largest log-prob difference; the raw agreement is logged.
Test(cuda_parity, mmlu_predictions_agree_with_cpu) {
    char mmlu[4096], tokdir[4096];
    if (data_path(mmlu, sizeof mmlu, "mmlu") || data_path(tokdir, sizeof tokdir, "qwen3-tokenizer"))
        cr_skip_test("MMLU or the Qwen3 tokenizer is not under ARBOR_DATA (../shared/data)");
    CudaContext* probe = ctx_or_skip();
    cuda_context_free(probe);
    Err e;
    Tokenizer tok;
    cr_assert_eq(tokenizer_load(&tok, tokdir, &e), 0, "%s", e.msg);
    ModelConfig cfg;
    cr_assert_eq(config_preset("tiny", &cfg, &e), 0);
    cfg.vocab = 151936, cfg.hidden = 128, cfg.head_dim = 32, cfg.max_positions = 4096;
    Model m;
    model_create(&m, &cfg);
    model_init_random(&m, 5);
    round_arena_to_bf16(&m);
    MmluOptions o = {1, 2, 4, 0, "test", NULL, 0, MMLU_TRUNCATE_TOKENS};
    Engine cpu_en, gpu_en;
    MmluResult rc_cpu, rc_gpu;
    cr_assert_eq(engine_open(&cpu_en, &m, DEVICE_CPU, &e), 0, "%s", e.msg);
    cr_assert_eq(engine_open(&gpu_en, &m, DEVICE_CUDA, &e), 0, "%s", e.msg);
    cr_assert_eq(mmlu_evaluate_on(&cpu_en, &tok, mmlu, &o, &rc_cpu, &e), 0, "%s", e.msg);
    cr_assert_eq(mmlu_evaluate_on(&gpu_en, &tok, mmlu, &o, &rc_gpu, &e), 0, "%s", e.msg);
    cr_assert_eq(rc_cpu.n, rc_gpu.n);
    int same = 0, checked = 0, agreed = 0;
    double worst = 0;
    for (int i = 0; i < rc_cpu.n; i++) {
        const MmluAnswer *a = &rc_cpu.answers[i], *b = &rc_gpu.answers[i];
        same += a->pred == b->pred;
        double maxdiff = 0, second = -INFINITY;
        for (int c = 0; c < 4; c++) {
            maxdiff = fmax(maxdiff, fabs(a->logprob[c] - b->logprob[c]));
            if (c != a->pred && a->logprob[c] > second) second = a->logprob[c];
        }
        worst = fmax(worst, maxdiff);
        if (a->logprob[a->pred] - second > 2 * maxdiff) {
            checked++;
            agreed += a->pred == b->pred;
        }
    }
    cr_log_info("mmlu cpu vs cuda: %d of %d predictions equal (%.1f%%); worst |log-prob difference| %.3g; "
                "%d of %d with a clear CPU margin agree",
                same, rc_cpu.n, 100.0 * same / rc_cpu.n, worst, agreed, checked);
    cr_expect_eq(agreed, checked, "predictions differ where the CPU's margin exceeds the log-prob error");
    cr_expect(checked > 0, "no question had a CPU margin above the log-prob error: the comparison says nothing");
    mmlu_result_free(&rc_cpu), mmlu_result_free(&rc_gpu);
    engine_close(&cpu_en), engine_close(&gpu_en);
    model_free(&m);
    tokenizer_free(&tok);
}

// A long prompt (tensor-core prefill, several 64-row tiles) then decode steps whose keys are split
// over blocks (flash-decoding kicks in past 512 positions): logits against the CPU at every step.
Test(cuda_parity, long_context_decode_matches_cpu) {
    CudaContext* ctx = ctx_or_skip();
    Model m;
    tiny_random_model(&m, 51);
    round_arena_to_bf16(&m);
    const ModelConfig* c = &m.cfg;
    int P = 1100, steps = 4, L = P + steps, V = c->vocab;
    int* tokens = malloc(sizeof(int) * P);
    int* pos = malloc(sizeof(int) * P);
    int* seq = calloc(P, sizeof(int));
    for (int i = 0; i < P; i++) tokens[i] = (int)(splitmix64(i + 99) % V), pos[i] = i;
    KVCache kc;
    RunState rs;
    kvcache_create(&kc, c, 1, L);
    runstate_create(&rs, c, P, L);
    CudaModel g;
    cuda_model_create(&g, ctx, c);
    cuda_model_upload(&g, &m);
    CudaKVCache gk;
    CudaRunState gs;
    cuda_kvcache_create(&gk, c, 1, L);
    cuda_runstate_create(&gs, c, P, 1);
    float *ref = malloc(sizeof(float) * V), *out = malloc(sizeof(float) * V);
    Err e;
    int last = P - 1;
    cr_assert_eq(model_forward(&m, &rs, &kc, tokens, seq, pos, P, &last, 1, ref, &e), 0, "%s", e.msg);
    cr_assert_eq(cuda_model_forward(&g, &gs, &gk, tokens, seq, pos, P, &last, 1, out, &e), 0, "%s", e.msg);
    double worst = nmse(out, ref, V);
    for (int t = 0; t < steps; t++) {
        int tok = (int)(splitmix64(t + 7) % V), p = P + t, s0 = 0;
        cr_assert_eq(model_forward(&m, &rs, &kc, &tok, &s0, &p, 1, NULL, 1, ref, &e), 0, "%s", e.msg);
        cr_assert_eq(cuda_model_forward(&g, &gs, &gk, &tok, &s0, &p, 1, NULL, 1, out, &e), 0, "%s", e.msg);
        cr_expect_gt(gs.attn_splits, 1, "a decode row at position %d should split its keys", p);
        double en = nmse(out, ref, V);
        if (en > worst) worst = en;
    }
    cr_log_info("long context (%d positions): worst logits nmse %.3g", L, worst);
    cr_expect(worst < 2e-3, "long-context logits nmse %g", worst);
    free(ref), free(out), free(tokens), free(pos), free(seq);
    free_both(&m, &rs, &kc, &g, &gs, &gk, ctx);
}

// Sliding-window perplexity through the engine seam: the same windows, bf16 against fp32.
Test(cuda_parity, perplexity_matches_cpu) {
    CudaContext* probe = ctx_or_skip();
    cuda_context_free(probe);
    Model m;
    tiny_random_model(&m, 21);
    round_arena_to_bf16(&m);
    int n = 3000;
    int* tokens = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) tokens[i] = (int)(splitmix64(i * 7 + 1) % m.cfg.vocab);
    PplOptions o = {256, 128, 0, 100};
    Engine cpu, gpu;
    PplResult a, b;
    Err e;
    cr_assert_eq(engine_open(&cpu, &m, DEVICE_CPU, &e), 0, "%s", e.msg);
    cr_assert_eq(engine_open(&gpu, &m, DEVICE_CUDA, &e), 0, "%s", e.msg);
    cr_assert_eq(perplexity_eval_on(&cpu, tokens, n, &o, &a, &e), 0, "%s", e.msg);
    cr_assert_eq(perplexity_eval_on(&gpu, tokens, n, &o, &b, &e), 0, "%s", e.msg);
    cr_expect_eq(a.n_predicted, b.n_predicted);
    cr_expect(fabs(b.mean_nll - a.mean_nll) < 2e-3 * a.mean_nll, "mean NLL %.6f on the GPU, %.6f on the CPU", b.mean_nll,
              a.mean_nll);
    cr_log_info("perplexity cpu %.5f, cuda %.5f", a.perplexity, b.perplexity);
    engine_close(&cpu), engine_close(&gpu);
    model_free(&m);
    free(tokens);
}

static double rel_l2_d(const double* a, const double* b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return sqrt(num / (den > 0 ? den : 1));
}

// Pruning's calibration on both backends: Block Influence, angular distances and the width scores
// agree to bf16 precision, and Block Influence ranks the layers the same way.
Test(cuda_parity, calibration_matches_cpu) {
    CudaContext* probe = ctx_or_skip();
    cuda_context_free(probe);
    char dir[256], path[300];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/calib.bin", dir);
    Model m;
    tiny_random_model(&m, 41);
    round_arena_to_bf16(&m);
    write_test_shard(path, 4096, m.cfg.vocab, 5, NULL);
    Shard calib;
    Err e;
    cr_assert_eq(shard_open(&calib, path, &e), 0, "%s", e.msg);
    Importance imp[2];
    for (int gpu = 0; gpu < 2; gpu++) {
        CalibOptions o = {.windows = 7, .seq_len = 64, .batch = 3, .agg = AGG_L2, .gpu = gpu};  // a short last batch too
        cr_assert_eq(importance_compute(&m, &calib, &o, &imp[gpu], &e), 0, "%s", e.msg);
    }
    int L = m.cfg.n_layers;
    double eb = rel_l2_d(imp[1].bi, imp[0].bi, L);
    double ea = rel_l2_d(imp[1].angular, imp[0].angular, (size_t)(L + 1) * (L + 1));
    double em = rel_l2_d(imp[1].mlp, imp[0].mlp, (size_t)L * m.cfg.ffn);
    double eh = rel_l2_d(imp[1].heads, imp[0].heads, (size_t)L * m.cfg.n_heads);
    double ec = rel_l2_d(imp[1].channels, imp[0].channels, m.cfg.hidden);
    cr_log_info("calibration cpu vs cuda, rel L2: bi %.2g angular %.2g mlp %.2g heads %.2g channels %.2g", eb, ea, em, eh, ec);
    cr_expect(eb < 2e-2 && ea < 2e-2 && em < 2e-2 && eh < 2e-2 && ec < 2e-2,
              "calibration differs: bi %g angular %g mlp %g heads %g channels %g", eb, ea, em, eh, ec);
    cr_expect_eq(imp[1].tokens, imp[0].tokens);
    importance_free(&imp[0]), importance_free(&imp[1]);
    shard_close(&calib);
    model_free(&m);
}

Test(cuda_parity, device_init_draws_the_cpu_values) {
    CudaContext* ctx = ctx_or_skip();
    Model m;
    tiny_random_model(&m, 42);
    round_arena_to_bf16(&m);
    ModelConfig cfg = m.cfg;
    CudaModel g;
    cuda_model_create(&g, ctx, &cfg);
    cuda_model_init_random(&g, 42);
    // the embedding and the first layer's stacked q,k,v: same values up to the last bf16 bit
    size_t n = (size_t)cfg.vocab * cfg.hidden;
    float* got = malloc(sizeof(float) * n);
    cuda_download_bf16_as_f32(ctx, got, g.wte, n);
    double err = nmse(got, m.w.wte, n);
    cr_expect(err < 1e-8, "device init of the embedding differs from the CPU's: nmse %g", err);
    size_t q = (size_t)cfg.n_heads * cfg.head_dim * cfg.hidden;
    float* wq = malloc(sizeof(float) * q);
    cuda_download_bf16_as_f32(ctx, wq, g.layers[0].wqkv, q);
    err = nmse(wq, m.w.layers[0].wq, q);
    cr_expect(err < 1e-8, "device init of layer 0 q_proj differs: nmse %g", err);
    free(got), free(wq);
    cuda_model_free(&g);
    model_free(&m);
    cuda_context_free(ctx);
}
#endif
