// test_cuda_train_parity.c: the CUDA training ops against the CPU's (issue 8, part 1): every backward
// op, the fused vocabulary loss (through the lm_head both ways, against distill/loss.c's
// lm_head_loss), AdamW against distill/optim.c's and the gradient norm. Same pattern as
// test_cuda_parity: bf16-exact random inputs, poisoned outputs, guard bands, normalized MSE.
// Skips without a CUDA build or device.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "distill/loss.h"
#include "distill/optim.h"
#include "distill/trainer.h"
#include "models/token_shard.h"
#include "helpers.h"
#include "kernels/dtype.h"
#include "kernels/hash.h"
#include "models/model.h"

#ifndef ARBOR_HAVE_CUDA
Test(cuda_train_parity, skipped) { cr_skip_test("arbor was built without CUDA (ARBOR_CUDA=OFF or no nvcc)"); }
#else
#include "cuda_parity_helpers.h"
#include "kernels/cuda/cuda_train_ops.h"
#include "models/cuda_train.h"
#include "models/train.h"

static void random_ids(int* ids, int n, int V, uint64_t seed) {
    for (int i = 0; i < n; i++) ids[i] = (int)(splitmix64(seed + (uint64_t)i) % (uint64_t)V);
}

static float* download_f32(CudaContext* ctx, const float* d, size_t n) {
    float* h = malloc(sizeof(float) * (n ? n : 1));
    cuda_download(ctx, h, d, sizeof(float) * n);
    return h;
}

Test(cuda_train_parity, matmul_backward_matches_cpu) {
    CudaContext* ctx = ctx_or_skip();
    int shapes[][3] = {{1, 64, 96}, {7, 45, 33}, {64, 256, 512}, {300, 1024, 384}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        float* dout = host_random((size_t)N * OC, 10 + s, -1, 1);
        float* inp = host_random((size_t)N * C, 20 + s, -1, 1);
        float* w = host_random((size_t)OC * C, 30 + s, -0.1f, 0.1f);
        float* dw = host_random((size_t)OC * C, 40 + s, -0.01f, 0.01f);  // accumulated into
        float* db = host_random((size_t)OC, 50 + s, -0.01f, 0.01f);
        float* ref_dinp = malloc(sizeof(float) * N * C);
        float* ref_dw = malloc(sizeof(float) * OC * C);
        float* ref_db = malloc(sizeof(float) * OC);
        memcpy(ref_dw, dw, sizeof(float) * OC * C);
        memcpy(ref_db, db, sizeof(float) * OC);
        kernels_cpu()->matmul_backward(ref_dinp, ref_dw, ref_db, dout, inp, w, N, C, OC);
        bf16 *ddout = upload_bf16(ctx, dout, (size_t)N * OC), *dinp_in = upload_bf16(ctx, inp, (size_t)N * C);
        bf16* dwt = upload_bf16(ctx, w, (size_t)OC * C);
        float *ddw = upload_f32(ctx, dw, (size_t)OC * C), *ddb = upload_f32(ctx, db, OC);
        Guarded g;
        float* ddinp = guarded_alloc(ctx, &g, sizeof(float) * N * C);
        cuda_matmul_backward(ctx, ddinp, ddw, ddb, ddout, dinp_in, dwt, N, C, OC);
        float *got_dinp = download_f32(ctx, ddinp, (size_t)N * C), *got_dw = download_f32(ctx, ddw, (size_t)OC * C);
        float* got_db = download_f32(ctx, ddb, OC);
        double e1 = nmse(got_dinp, ref_dinp, (size_t)N * C), e2 = nmse(got_dw, ref_dw, (size_t)OC * C);
        double e3 = nmse(got_db, ref_db, OC);
        cr_expect(e1 < 1e-10 && e2 < 1e-10 && e3 < 1e-10, "matmul backward N=%d C=%d OC=%d: dinp %g dweight %g dbias %g",
                  N, C, OC, e1, e2, e3);
        cr_expect(guards_intact(ctx, &g));
        guarded_free(&g);
        cuda_free(ddout), cuda_free(dinp_in), cuda_free(dwt), cuda_free(ddw), cuda_free(ddb);
        free(dout), free(inp), free(w), free(dw), free(db), free(ref_dinp), free(ref_dw), free(ref_db);
        free(got_dinp), free(got_dw), free(got_db);
    }
    cuda_context_free(ctx);
}

Test(cuda_train_parity, rmsnorm_backward_matches_cpu) {
    CudaContext* ctx = ctx_or_skip();
    int shapes[][2] = {{1, 64}, {5, 45}, {33, 1000}, {128, 4096}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int inp_bf16 = 0; inp_bf16 < 2; inp_bf16++) {
            for (int alias = 0; alias < 2; alias++) {
                int N = shapes[s][0], C = shapes[s][1];
                float* x = host_random((size_t)N * C, 60 + s, -2, 2);
                float* w = host_random(C, 70 + s, 0.5f, 1.5f);
                float* dy = host_random((size_t)N * C, 80 + s, -1, 1);
                float* dw = host_random(C, 90 + s, -0.1f, 0.1f);
                float* ref_dx = malloc(sizeof(float) * N * C);
                float* ref_dw = malloc(sizeof(float) * C);
                memcpy(ref_dw, dw, sizeof(float) * C);
                kernels_cpu()->rmsnorm_backward(ref_dx, ref_dw, dy, x, w, 1e-6f, N, C);
                void* dx_in = inp_bf16 ? (void*)upload_bf16(ctx, x, (size_t)N * C) : (void*)upload_f32(ctx, x, (size_t)N * C);
                bf16* dw_t = upload_bf16(ctx, w, C);
                float* ddy = upload_f32(ctx, dy, (size_t)N * C);
                float* ddw = upload_f32(ctx, dw, C);
                Guarded g;
                float* ddx = alias ? ddy : guarded_alloc(ctx, &g, sizeof(float) * N * C);
                cuda_rmsnorm_backward(ctx, ddx, ddw, ddy, dx_in, inp_bf16, 1, (size_t)C, dw_t, 1e-6f, N, C);
                float *got_dx = download_f32(ctx, ddx, (size_t)N * C), *got_dw = download_f32(ctx, ddw, C);
                double e1 = nmse(got_dx, ref_dx, (size_t)N * C), e2 = nmse(got_dw, ref_dw, C);
                cr_expect(e1 < 1e-10 && e2 < 1e-10, "rmsnorm backward N=%d C=%d bf16 input %d alias %d: dx %g dw %g", N,
                          C, inp_bf16, alias, e1, e2);
                if (!alias) {
                    cr_expect(guards_intact(ctx, &g));
                    guarded_free(&g);
                }
                cuda_free(dx_in), cuda_free(dw_t), cuda_free(ddy), cuda_free(ddw);
                free(x), free(w), free(dy), free(dw), free(ref_dx), free(ref_dw), free(got_dx), free(got_dw);
            }
        }
    }
    cuda_context_free(ctx);
}

Test(cuda_train_parity, swiglu_and_rope_backward_match_cpu) {
    CudaContext* ctx = ctx_or_skip();
    const KernelOps* cpu = kernels_cpu();
    int N = 37, F = 333, H = 6, HS = 64;
    // SwiGLU
    float* gateup = host_random((size_t)N * 2 * F, 100, -4, 4);
    float* dh = host_random((size_t)N * F, 101, -1, 1);
    float *gate = malloc(sizeof(float) * N * F), *up = malloc(sizeof(float) * N * F);
    for (int n = 0; n < N; n++) {
        memcpy(gate + (size_t)n * F, gateup + (size_t)n * 2 * F, sizeof(float) * F);
        memcpy(up + (size_t)n * F, gateup + (size_t)n * 2 * F + F, sizeof(float) * F);
    }
    float *ref_dg = malloc(sizeof(float) * N * F), *ref_du = malloc(sizeof(float) * N * F);
    cpu->swiglu_backward(ref_dg, ref_du, dh, gate, up, N, F);
    bf16* dgu = upload_bf16(ctx, gateup, (size_t)N * 2 * F);
    float* ddh = upload_f32(ctx, dh, (size_t)N * F);
    Guarded g1, g2;
    float* ddg = guarded_alloc(ctx, &g1, sizeof(float) * N * F);
    float* ddu = guarded_alloc(ctx, &g2, sizeof(float) * N * F);
    cuda_swiglu_backward(ctx, ddg, ddu, ddh, dgu, N, F);
    float *got_dg = download_f32(ctx, ddg, (size_t)N * F), *got_du = download_f32(ctx, ddu, (size_t)N * F);
    double e1 = nmse(got_dg, ref_dg, (size_t)N * F), e2 = nmse(got_du, ref_du, (size_t)N * F);
    cr_expect(e1 < 1e-10 && e2 < 1e-10, "swiglu backward: dgate %g dup %g", e1, e2);
    cr_expect(guards_intact(ctx, &g1) && guards_intact(ctx, &g2));
    // RoPE: rotating back at large positions too
    int pos[37];
    for (int n = 0; n < N; n++) pos[n] = (int)(splitmix64(n) % 40000);
    float* inv_freq = malloc(sizeof(float) * HS / 2);
    for (int j = 0; j < HS / 2; j++) inv_freq[j] = 1.0f / powf(1000000.0f, (float)(2 * j) / HS);
    float* dx = host_random((size_t)N * H * HS, 102, -1, 1);
    float* ref = malloc(sizeof(float) * N * H * HS);
    memcpy(ref, dx, sizeof(float) * N * H * HS);
    cpu->rope_backward(ref, pos, inv_freq, N, H, HS);
    float* ddx = upload_f32(ctx, dx, (size_t)N * H * HS);
    int* dpos = upload_ints(ctx, pos, N);
    float* dfreq = upload_f32(ctx, inv_freq, HS / 2);
    cuda_rope_backward(ctx, ddx, dpos, dfreq, N, H, HS);
    float* got = download_f32(ctx, ddx, (size_t)N * H * HS);
    double e3 = nmse(got, ref, (size_t)N * H * HS);
    cr_expect(e3 < 1e-10, "rope backward: %g", e3);
    guarded_free(&g1), guarded_free(&g2);
    cuda_free(dgu), cuda_free(ddh), cuda_free(ddx), cuda_free(dpos), cuda_free(dfreq);
    free(gateup), free(dh), free(gate), free(up), free(ref_dg), free(ref_du), free(got_dg), free(got_du);
    free(inv_freq), free(dx), free(ref), free(got);
    cuda_context_free(ctx);
}

Test(cuda_train_parity, embedding_backward_is_bit_identical) {
    CudaContext* ctx = ctx_or_skip();
    int V = 300, C = 96, N = 513;
    int* tokens = malloc(sizeof(int) * N);
    for (int n = 0; n < N; n++) tokens[n] = (int)(splitmix64(n * 3) % 40);  // many repeats
    float* dout = host_random((size_t)N * C, 110, -1, 1);
    float* dwte = host_random((size_t)V * C, 111, -0.1f, 0.1f);
    float* ref = malloc(sizeof(float) * V * C);
    memcpy(ref, dwte, sizeof(float) * V * C);
    kernels_cpu()->embedding_backward(ref, dout, tokens, N, C);
    float *d_dwte = upload_f32(ctx, dwte, (size_t)V * C), *d_dout = upload_f32(ctx, dout, (size_t)N * C);
    cuda_embedding_backward(ctx, d_dwte, d_dout, tokens, N, C);
    float* got = download_f32(ctx, d_dwte, (size_t)V * C);
    cr_expect(memcmp(got, ref, sizeof(float) * V * C) == 0, "embedding backward differs from the CPU's bits");
    cuda_free(d_dwte), cuda_free(d_dout);
    free(tokens), free(dout), free(dwte), free(ref), free(got);
    cuda_context_free(ctx);
}

Test(cuda_train_parity, attention_backward_matches_cpu_and_is_deterministic) {
    CudaContext* ctx = ctx_or_skip();
    // B T NH NKV HS; T past one 64-row tile and not a multiple of it in the last two
    int shapes[][5] = {{1, 5, 4, 2, 16}, {2, 17, 3, 3, 24}, {2, 64, 8, 2, 64}, {1, 40, 16, 8, 128}, {2, 150, 4, 1, 64},
                       {1, 200, 8, 4, 128}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int B = shapes[s][0], T = shapes[s][1], NH = shapes[s][2], NKV = shapes[s][3], HS = shapes[s][4];
        size_t N = (size_t)B * T, nq = N * NH * HS, nk = N * NKV * HS;
        float *q = host_random(nq, 120 + s, -1, 1), *k = host_random(nk, 130 + s, -1, 1);
        float *v = host_random(nk, 140 + s, -1, 1), *dout = host_random(nq, 150 + s, -1, 1);
        float *rq = malloc(sizeof(float) * nq), *rk = malloc(sizeof(float) * nk), *rv = malloc(sizeof(float) * nk);
        float* scratch = malloc(sizeof(float) * (size_t)kernels_cpu_threads() * ATTENTION_BLOCK_ROWS * T);
        kernels_cpu()->attention_backward(rq, rk, rv, dout, q, k, v, B, T, NH, NKV, HS, scratch);
        bf16 *dq_in = upload_bf16(ctx, q, nq), *dk_in = upload_bf16(ctx, k, nk), *dv_in = upload_bf16(ctx, v, nk);
        float* ddout = upload_f32(ctx, dout, nq);
        Guarded g1, g2, g3;
        float* dq = guarded_alloc(ctx, &g1, sizeof(float) * nq);
        float* dk = guarded_alloc(ctx, &g2, sizeof(float) * nk);
        float* dv = guarded_alloc(ctx, &g3, sizeof(float) * nk);
        cuda_attention_backward(ctx, dq, dk, dv, ddout, dq_in, dk_in, dv_in, B, T, NH, NKV, HS);
        float *gq = download_f32(ctx, dq, nq), *gk = download_f32(ctx, dk, nk), *gv = download_f32(ctx, dv, nk);
        double eq = nmse(gq, rq, nq), ek = nmse(gk, rk, nk), ev = nmse(gv, rv, nk);
        cr_expect(eq < 1e-9 && ek < 1e-9 && ev < 1e-9, "attention backward B=%d T=%d NH=%d NKV=%d HS=%d: dq %g dk %g dv %g",
                  B, T, NH, NKV, HS, eq, ek, ev);
        cr_expect(guards_intact(ctx, &g1) && guards_intact(ctx, &g2) && guards_intact(ctx, &g3));
        // again: the same bits
        cuda_attention_backward(ctx, dq, dk, dv, ddout, dq_in, dk_in, dv_in, B, T, NH, NKV, HS);
        float *gq2 = download_f32(ctx, dq, nq), *gk2 = download_f32(ctx, dk, nk);
        cr_expect(memcmp(gq, gq2, sizeof(float) * nq) == 0 && memcmp(gk, gk2, sizeof(float) * nk) == 0,
                  "attention backward is not bit-identical run to run");
        // the tensor-core backward, from the tensor-core forward's output and log-sum-exp
        if (cuda_attention_backward_tc_supported(HS)) {
            int* host = malloc(sizeof(int) * 6 * N);
            int *sq = host, *ps = host + N, *tiles = host + 2 * N;
            for (size_t n = 0; n < N; n++) sq[n] = (int)(n / T), ps[n] = (int)(n % T);
            int n_tiles = cuda_attention_prefill_tiles(sq, ps, (int)N, tiles);
            int* dtiles = upload_ints(ctx, tiles, 4 * n_tiles);
            bf16* att = cuda_malloc(sizeof(bf16) * nq);
            float* lse = cuda_malloc(sizeof(float) * N * NH);
            cuda_attention_prefill(ctx, att, dq_in, NH * HS, dk_in, dv_in, dtiles, n_tiles, NH, NKV, HS, T, 0, 0, lse);
            cuda_memset(ctx, dq, 0xFF, sizeof(float) * nq);
            cuda_memset(ctx, dk, 0xFF, sizeof(float) * nk);
            cuda_memset(ctx, dv, 0xFF, sizeof(float) * nk);
            cuda_attention_backward_flash(ctx, dq, dk, dv, ddout, att, lse, dq_in, dk_in, dv_in, B, T, NH, NKV, HS);
            float *tq = download_f32(ctx, dq, nq), *tk = download_f32(ctx, dk, nk), *tv = download_f32(ctx, dv, nk);
            double fq = nmse(tq, rq, nq), fk = nmse(tk, rk, nk), fv = nmse(tv, rv, nk);
            cr_expect(fq < 2e-4 && fk < 2e-4 && fv < 2e-4,
                      "tensor-core attention backward B=%d T=%d NH=%d NKV=%d HS=%d: dq %g dk %g dv %g", B, T, NH, NKV, HS,
                      fq, fk, fv);
            cr_expect(guards_intact(ctx, &g1) && guards_intact(ctx, &g2) && guards_intact(ctx, &g3));
            cuda_attention_backward_flash(ctx, dq, dk, dv, ddout, att, lse, dq_in, dk_in, dv_in, B, T, NH, NKV, HS);
            float* tq2 = download_f32(ctx, dq, nq);
            cr_expect(memcmp(tq, tq2, sizeof(float) * nq) == 0, "tensor-core attention backward is not deterministic");
            cuda_free(dtiles), cuda_free(att), cuda_free(lse);
            free(host), free(tq), free(tk), free(tv), free(tq2);
        }
        guarded_free(&g1), guarded_free(&g2), guarded_free(&g3);
        cuda_free(dq_in), cuda_free(dk_in), cuda_free(dv_in), cuda_free(ddout);
        free(q), free(k), free(v), free(dout), free(rq), free(rk), free(rv), free(scratch);
        free(gq), free(gk), free(gv), free(gq2), free(gk2);
    }
    cuda_context_free(ctx);
}

// The fused loss through the lm_head, as the trainer will run it on the GPU: logits (fp32) = xnf @
// lm_head^T, cuda_loss_rows, dz packed to bf16, then the lm_head's backward. Against lm_head_loss.
static void loss_case(CudaContext* ctx, const LossConfig* lc, int N, int C, int Ct, int V, uint64_t seed) {
    float *xnf = host_random((size_t)N * C, seed, -1, 1), *head = host_random((size_t)V * C, seed + 1, -0.2f, 0.2f);
    float *t_xnf = host_random((size_t)N * Ct, seed + 2, -1, 1), *t_head = host_random((size_t)V * Ct, seed + 3, -0.2f, 0.2f);
    int* targets = malloc(sizeof(int) * N);
    for (int n = 0; n < N; n++) targets[n] = (int)(splitmix64(seed + n) % V);
    float* ref_dx = malloc(sizeof(float) * N * C);
    float* ref_dh = calloc((size_t)V * C, sizeof(float));
    LossValues lv;
    Err e;
    int kd = lc->kd != KD_NONE;
    cr_assert_eq(lm_head_loss(lc, xnf, head, N, C, V, targets, kd ? t_xnf : NULL, kd ? t_head : NULL, Ct, 0.5f, ref_dx,
                              ref_dh, &lv, &e), 0, "%s", e.msg);
    bf16 *d_xnf = upload_bf16(ctx, xnf, (size_t)N * C), *d_head = upload_bf16(ctx, head, (size_t)V * C);
    bf16 *d_txnf = upload_bf16(ctx, t_xnf, (size_t)N * Ct), *d_thead = upload_bf16(ctx, t_head, (size_t)V * Ct);
    int* d_tg = upload_ints(ctx, targets, N);
    float* z = cuda_malloc(sizeof(float) * N * V);
    float* zt = cuda_malloc(sizeof(float) * N * V);
    bf16* dz = cuda_malloc(sizeof(bf16) * N * V);
    double* rows = cuda_malloc(sizeof(double) * 2 * N);
    float* d_dx = cuda_malloc(sizeof(float) * N * C);
    float* d_dh = cuda_malloc(sizeof(float) * V * C);
    cuda_memset(ctx, d_dh, 0, sizeof(float) * V * C);
    cuda_matmul_forward(ctx, z, 1, d_xnf, d_head, NULL, N, C, V);
    if (kd) cuda_matmul_forward(ctx, zt, 1, d_txnf, d_thead, NULL, N, Ct, V);
    CudaLossConfig cc = {lc->ce_weight, lc->kd_weight,
                         lc->kd == KD_KL ? 1 : lc->kd == KD_RKL ? 2 : lc->kd == KD_TOPK ? 3 : 0, lc->temperature,
                         lc->t2_scaling, lc->topk};
    cuda_loss_rows(ctx, z, kd ? zt : NULL, lc->ce_weight != 0 ? d_tg : NULL, N, V, &cc, 0.5f / N, rows, rows + N);
    cuda_pack_bf16(ctx, dz, V, z, V, N, V);
    cuda_matmul_backward(ctx, d_dx, d_dh, NULL, dz, d_xnf, d_head, N, C, V);
    double* row_vals = malloc(sizeof(double) * 2 * N);
    cuda_download(ctx, row_vals, rows, sizeof(double) * 2 * N);
    double ce = 0, kdv = 0;
    for (int n = 0; n < N; n++) ce += row_vals[n], kdv += row_vals[N + n];
    ce /= N, kdv /= N;
    cr_expect(fabs(ce - lv.ce) <= 1e-5 * fabs(lv.ce) + 1e-7, "CE %.9g vs CPU %.9g", ce, lv.ce);
    cr_expect(fabs(kdv - lv.kd) <= 1e-4 * fabs(lv.kd) + 1e-7, "KD %.9g vs CPU %.9g", kdv, lv.kd);
    float *got_dx = download_f32(ctx, d_dx, (size_t)N * C), *got_dh = download_f32(ctx, d_dh, (size_t)V * C);
    double e1 = nmse(got_dx, ref_dx, (size_t)N * C), e2 = nmse(got_dh, ref_dh, (size_t)V * C);
    // dz goes through bf16 before the two GEMMs (as in mixed-precision training): bf16-level error
    cr_expect(e1 < 1e-4 && e2 < 1e-4, "loss ce %g kd %d (k %d) T %g: d_xnf nmse %g, d_lm_head nmse %g", lc->ce_weight,
              lc->kd, lc->topk, lc->temperature, e1, e2);
    cuda_free(d_xnf), cuda_free(d_head), cuda_free(d_txnf), cuda_free(d_thead), cuda_free(d_tg), cuda_free(z);
    cuda_free(zt), cuda_free(dz), cuda_free(rows), cuda_free(d_dx), cuda_free(d_dh);
    free(xnf), free(head), free(t_xnf), free(t_head), free(targets), free(ref_dx), free(ref_dh), free(row_vals);
    free(got_dx), free(got_dh);
}

Test(cuda_train_parity, fused_loss_matches_lm_head_loss) {
    CudaContext* ctx = ctx_or_skip();
    LossConfig ce = {1.0f, 0.0f, KD_NONE, 1.0f, 0, 0, 0.0f};
    LossConfig kl = {0.5f, 0.5f, KD_KL, 2.0f, 1, 0, 0.0f};
    LossConfig rkl = {0.0f, 1.0f, KD_RKL, 1.0f, 0, 0, 0.0f};
    loss_case(ctx, &ce, 70, 64, 48, 3001, 200);
    loss_case(ctx, &kl, 70, 64, 48, 3001, 210);
    loss_case(ctx, &rkl, 33, 128, 96, 151936, 220);  // the real vocabulary
    LossConfig topk = {0.5f, 0.5f, KD_TOPK, 2.0f, 1, 64, 0.0f};
    loss_case(ctx, &topk, 70, 64, 48, 3001, 230);
    LossConfig topk_big = {0.0f, 1.0f, KD_TOPK, 1.0f, 0, 4096, 0.0f};  // the largest k, on the real vocabulary
    loss_case(ctx, &topk_big, 9, 64, 48, 151936, 240);
    cuda_context_free(ctx);
}

Test(cuda_train_parity, adamw_matches_cpu_and_rounds_to_bf16) {
    CudaContext* ctx = ctx_or_skip();
    ModelConfig cfg = tiny_config();
    ParamTable t;
    param_table_build(&cfg, &t);
    size_t n = t.n_floats;
    float* p = host_random(n, 300, -0.5f, 0.5f);
    float* m = calloc(n, sizeof(float));
    float* v = calloc(n, sizeof(float));
    float* grads[3];
    for (int s = 0; s < 3; s++) grads[s] = host_random(n, 310 + s, -1, 1);
    OptimConfig o = {1e-3f, 1e-4f, 0, 3, 1, 0.9f, 0.95f, 1e-8f, 0.1f, 0.0f};
    float *d_master = upload_f32(ctx, p, n), *d_m = cuda_malloc(sizeof(float) * n), *d_v = cuda_malloc(sizeof(float) * n);
    cuda_memset(ctx, d_m, 0, sizeof(float) * n);
    cuda_memset(ctx, d_v, 0, sizeof(float) * n);
    bf16* d_param = cuda_malloc(sizeof(bf16) * n);
    float* d_g = cuda_malloc(sizeof(float) * n);
    for (int s = 0; s < 3; s++) {
        float lr = lr_at(&o, s);
        adamw_step(&o, &t, p, grads[s], m, v, s + 1, lr);
        cuda_upload(ctx, d_g, grads[s], sizeof(float) * n);
        float bc1 = (float)(1.0 - pow(o.beta1, s + 1)), bc2_sqrt = (float)sqrt(1.0 - pow(o.beta2, s + 1));
        for (int k = 0; k < t.n_params; k++) {
            const ParamInfo* pi = &t.params[k];
            float decay = param_takes_decay(pi) ? 1.0f - lr * o.weight_decay : 1.0f;
            cuda_adamw(ctx, d_master + pi->offset, d_param + pi->offset, d_g + pi->offset, d_m + pi->offset,
                       d_v + pi->offset, pi->numel, o.beta1, o.beta2, o.eps, decay, lr / bc1, bc2_sqrt, 1.0f, 0);
        }
    }
    float* got = download_f32(ctx, d_master, n);
    double err = nmse(got, p, n);
    cr_expect(err < 1e-12, "AdamW master weights after 3 steps: nmse %g", err);
    float* got_bf = malloc(sizeof(float) * n);
    cuda_download_bf16_as_f32(ctx, got_bf, d_param, n);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) wrong += got_bf[i] != bf16_round(got[i]);
    cr_expect_eq(wrong, 0, "%zu bf16 parameters are not the master weight rounded to nearest even", wrong);
    // stochastic rounding: each value is one of its two bf16 neighbours, unbiased on average
    cuda_adamw(ctx, d_master, d_param, d_g, d_m, d_v, n, o.beta1, o.beta2, o.eps, 1.0f, 0.0f, 1.0f, 1.0f, 12345);
    float* master_now = download_f32(ctx, d_master, n);
    cuda_download_bf16_as_f32(ctx, got_bf, d_param, n);
    double bias = 0;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        float x = master_now[i], r = got_bf[i];
        uint32_t u;
        memcpy(&u, &x, 4);
        u &= 0xffff0000u;
        float lo, hi;
        memcpy(&lo, &u, 4);
        u += 0x10000u;
        memcpy(&hi, &u, 4);
        off += !(r == lo || r == hi);
        bias += (double)r - x;
    }
    cr_expect_eq(off, 0, "%zu stochastically rounded values are not a bf16 neighbour", off);
    cr_expect(fabs(bias / n) < 1e-5, "stochastic rounding is biased: mean error %g", bias / n);
    cuda_free(d_master), cuda_free(d_m), cuda_free(d_v), cuda_free(d_param), cuda_free(d_g);
    for (int s = 0; s < 3; s++) free(grads[s]);
    free(p), free(m), free(v), free(got), free(got_bf), free(master_now);
    param_table_free(&t);
    cuda_context_free(ctx);
}

Test(cuda_train_parity, sum_squares_matches_cpu_and_repeats) {
    CudaContext* ctx = ctx_or_skip();
    size_t n = 3000001;
    float* g = host_random(n, 400, -1, 1);
    double ref = grad_norm(g, n);
    float* d = upload_f32(ctx, g, n);
    double a = cuda_sum_squares(ctx, d, n), b = cuda_sum_squares(ctx, d, n);
    cr_expect(fabs(sqrt(a) - ref) <= 1e-12 * ref, "norm %.15g vs CPU %.15g", sqrt(a), ref);
    cr_expect(memcmp(&a, &b, sizeof a) == 0, "the sum of squares differs between two runs");
    cuda_free(d);
    free(g);
    cuda_context_free(ctx);
}

// ---------------------------------------------------------------------------------------------
// the trainer on the GPU: a run with its log, states and checkpoint, resumed on the CPU

Test(cuda_train_parity, trainer_runs_on_the_gpu_and_resumes_on_the_cpu) {
    CudaContext* probe = ctx_or_skip();
    cuda_context_free(probe);
    char dir[256], shard_path[300], out[300], path[400];
    make_temp_dir(dir, sizeof dir);
    snprintf(shard_path, sizeof shard_path, "%s/data.bin", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    ModelConfig sc = tiny_config(), tc = sc;
    Err e;
    tc.n_layers = 6;
    write_test_shard(shard_path, 20000, sc.vocab, 9, NULL);
    Shard shard;
    cr_assert_eq(shard_open(&shard, shard_path, &e), 0, "%s", e.msg);
    Model s, t;
    model_create(&s, &sc);
    model_init_random(&s, 11);
    model_create(&t, &tc);
    model_init_random(&t, 12);
    TrainConfig cfg = {0};
    cfg.steps = 4, cfg.batch = 2, cfg.grad_accum = 2, cfg.seq_len = 32;
    cfg.optim = (OptimConfig){1e-3f, 1e-4f, 1, 4, 1, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    cfg.loss = (LossConfig){0.5f, 0.5f, KD_KL, 2.0f, 1, 0, 0.0f};
    cfg.val_every = 2, cfg.val_windows = 4, cfg.val_fraction = 0.05, cfg.log_every = 1, cfg.seed = 3;
    cfg.out_dir = out;
    cfg.gpu = 1;
    TrainSummary sum;
    cr_assert_eq(train_run(&s, &t, &shard, &cfg, &sum, &e), 0, "%s", e.msg);
    cr_expect_eq(sum.steps, 4);
    cr_expect(isfinite(sum.last.total) && isfinite(sum.val_loss), "loss %g, validation %g", sum.last.total, sum.val_loss);
    snprintf(path, sizeof path, "%s/model/config.json", out);
    cr_expect(access(path, F_OK) == 0, "the GPU run saved no checkpoint");
    // the state the GPU wrote resumes on the CPU
    cfg.gpu = 0, cfg.steps = 6, cfg.optim.total_steps = 6, cfg.resume = 1;
    cr_assert_eq(train_run(&s, &t, &shard, &cfg, &sum, &e), 0, "%s", e.msg);
    cr_expect_eq(sum.steps, 6);
    cr_expect(isfinite(sum.last.total));
    model_free(&s), model_free(&t);
    shard_close(&shard);
}

// One trainer step with KD + the intermediate hidden-state loss (cosine, then MSE) on both
// backends: the loss terms and the gradient norm agree.
Test(cuda_train_parity, hidden_state_loss_step_matches_cpu) {
    CudaContext* probe = ctx_or_skip();
    cuda_context_free(probe);
    ModelConfig sc = tiny_config(), tc = sc;
    tc.n_layers = 6;
    Model s, t;
    model_create(&s, &sc);
    model_init_random(&s, 31);
    model_create(&t, &tc);
    model_init_random(&t, 32);
    round_arena_to_bf16(&s), round_arena_to_bf16(&t);
    int B = 2, T = 24, map[4];
    hidden_layer_map_even(sc.n_layers, tc.n_layers, map);
    int* windows = malloc(sizeof(int) * B * (T + 1));
    random_ids(windows, B * (T + 1), sc.vocab, 77);
    for (int kind = HIDDEN_COSINE; kind <= HIDDEN_MSE; kind++) {
        TrainConfig cfg = {0};
        cfg.steps = 1, cfg.batch = B, cfg.grad_accum = 1, cfg.seq_len = T;
        cfg.optim = (OptimConfig){1e-3f, 1e-4f, 0, 1, 1, 0.9f, 0.95f, 1e-8f, 0.1f, 0.0f};
        cfg.loss = (LossConfig){0.5f, 0.5f, KD_KL, 1.0f, 0, 0, 0.0f};
        cfg.hidden_kind = (HiddenLossKind)kind, cfg.hidden_weight = 2.0f, cfg.layer_map = map;
        LossValues lv[2];
        double gnorm[2];
        for (int gpu = 0; gpu < 2; gpu++) {
            Model copy;
            model_create(&copy, &sc);
            memcpy(copy.arena, s.arena, sizeof(float) * s.table.n_floats);
            Trainer tr;
            Err e;
            cr_assert_eq(trainer_init(&tr, &copy, &t, B, T, 0, gpu, NULL, &e), 0, "%s", e.msg);
            float lr;
            cr_assert_eq(trainer_step(&tr, &cfg, windows, &lv[gpu], &gnorm[gpu], &lr, &e), 0, "%s", e.msg);
            trainer_free(&tr);
            model_free(&copy);
        }
        const char* name = kind == HIDDEN_COSINE ? "cosine" : "mse";
        cr_expect(fabs(lv[1].hidden - lv[0].hidden) < 2e-2 * fabs(lv[0].hidden), "%s hidden loss GPU %.6g CPU %.6g", name,
                  lv[1].hidden, lv[0].hidden);
        cr_expect(fabs(lv[1].total - lv[0].total) < 2e-2 * fabs(lv[0].total), "%s total loss GPU %.6g CPU %.6g", name,
                  lv[1].total, lv[0].total);
        cr_expect(fabs(gnorm[1] - gnorm[0]) < 5e-2 * gnorm[0], "%s gradient norm GPU %.6g CPU %.6g", name, gnorm[1],
                  gnorm[0]);
    }
    free(windows);
    model_free(&s), model_free(&t);
}

// ---------------------------------------------------------------------------------------------
// whole models

// One micro-batch on both backends: the loss and every parameter's gradient.
static void grads_case(CudaContext* ctx, Model* m, Model* teacher, const LossConfig* lc, const char* what) {
    const ModelConfig* c = &m->cfg;
    int B = 2, T = 9, N = B * T, C = c->hidden, V = c->vocab;
    int Ct = teacher ? teacher->cfg.hidden : C;
    round_arena_to_bf16(m);
    if (teacher) round_arena_to_bf16(teacher);
    int *tokens = malloc(sizeof(int) * N), *targets = malloc(sizeof(int) * N);
    random_ids(tokens, N, V, 500), random_ids(targets, N, V, 600);
    Err e;
    // CPU
    TrainActs a, ta;
    train_acts_create(&a, c, B, T, 0);
    cr_assert_eq(train_forward(m, &a, tokens, &e), 0, "%s", e.msg);
    if (teacher) {
        train_acts_create(&ta, &teacher->cfg, B, T, 0);
        cr_assert_eq(train_forward(teacher, &ta, tokens, &e), 0, "%s", e.msg);
    }
    float* G = calloc(m->table.n_floats, sizeof(float));
    ModelWeights gw;
    weights_bind(&m->table, c, G, &gw);
    float* d_xnf = malloc(sizeof(float) * N * C);
    LossValues lv, glv;
    cr_assert_eq(lm_head_loss(lc, a.xnf, m->w.lm_head, N, C, V, targets, teacher ? ta.xnf : NULL,
                              teacher ? teacher->w.lm_head : NULL, Ct, 1.0f, d_xnf, gw.lm_head, &lv, &e), 0, "%s", e.msg);
    train_backward(m, &a, tokens, d_xnf, NULL, &gw);
    // GPU
    CudaModel g, tg;
    CudaTrainModel t;
    CudaTrainActs ga;
    CudaTeacher tt;
    cuda_model_create(&g, ctx, c);
    cuda_train_model_create(&t, &g, m);
    cuda_train_acts_create(&ga, ctx, c, B, T, 0);
    if (teacher) {
        cuda_model_create(&tg, ctx, &teacher->cfg);
        cuda_model_upload(&tg, teacher);
        cuda_teacher_create(&tt, &tg, B, T);
        cr_assert_eq(cuda_teacher_forward(&tt, tokens, B, T, &e), 0, "%s", e.msg);
    }
    cr_assert_eq(cuda_train_forward(&g, &ga, tokens, &e), 0, "%s", e.msg);
    cr_assert_eq(cuda_train_loss(&t, &ga, lc, targets, teacher ? tt.rs.xn : NULL, teacher ? tg.lm_head : NULL, Ct, 1.0f,
                                 &glv, &e), 0, "%s", e.msg);
    cuda_train_backward(&t, &ga, tokens, NULL);
    double rel = fabs(glv.total - lv.total) / fabs(lv.total);
    cr_expect(rel < 2e-2, "%s: loss %.6g on the GPU vs %.6g on the CPU", what, glv.total, lv.total);
    // the same micro-batch with recomputation: the same gradient bits
    {
        float* kept = download_f32(ctx, t.grad, g.arena_elems);
        CudaTrainActs ra;
        LossValues rlv;
        cuda_train_acts_create(&ra, ctx, c, B, T, 1);
        cuda_train_zero_grad(&t);
        cr_assert_eq(cuda_train_forward(&g, &ra, tokens, &e), 0, "%s", e.msg);
        cr_assert_eq(cuda_train_loss(&t, &ra, lc, targets, teacher ? tt.rs.xn : NULL, teacher ? tg.lm_head : NULL, Ct,
                                     1.0f, &rlv, &e), 0, "%s", e.msg);
        cuda_train_backward(&t, &ra, tokens, NULL);
        float* again = download_f32(ctx, t.grad, g.arena_elems);
        cr_expect(memcmp(kept, again, sizeof(float) * g.arena_elems) == 0,
                  "%s: gradients with --recompute differ from those without", what);
        cuda_train_acts_free(&ra);
        free(kept), free(again);
    }
    double worst = 0;
    const char* worst_name = "";
    for (int i = 0; i < m->table.n_params; i++) {
        const ParamInfo* p = &m->table.params[i];
        float* got = download_f32(ctx, t.grad + t.offset[i], p->numel);
        double err = nmse(got, G + p->offset, p->numel);
        if (err > worst) worst = err, worst_name = p->name;
        cr_expect(err < 5e-3, "%s: gradient of %s: nmse %g", what, p->name, err);
        free(got);
    }
    cr_log_info("%s: loss %.6g vs CPU %.6g; worst gradient nmse %.3g (%s)", what, glv.total, lv.total, worst, worst_name);
    if (teacher) {
        cuda_teacher_free(&tt);
        cuda_model_free(&tg);
        train_acts_free(&ta);
    }
    cuda_train_acts_free(&ga);
    cuda_train_model_free(&t);
    cuda_model_free(&g);
    train_acts_free(&a);
    weights_free(&gw);
    free(G), free(d_xnf), free(tokens), free(targets);
}

Test(cuda_train_parity, model_gradients_match_cpu) {
    CudaContext* ctx = ctx_or_skip();
    LossConfig ce = {1.0f, 0.0f, KD_NONE, 1.0f, 0, 0, 0.0f};
    for (int i = 0; i < N_HF_FIXTURES; i++) {
        Model m;
        load_fixture_model(&m, hf_fixture_names[i]);
        grads_case(ctx, &m, NULL, &ce, hf_fixture_names[i]);
        model_free(&m);
    }
    // distillation: a tiny student from a deeper, wider teacher, CE + KL at T = 2 with T^2
    ModelConfig sc = tiny_config(), tc = sc;
    tc.n_layers = 6, tc.hidden = 96, tc.ffn = 256, tc.n_heads = 6, tc.n_kv_heads = 2;
    Model s, tm;
    model_create(&s, &sc);
    model_init_random(&s, 1);
    model_create(&tm, &tc);
    model_init_random(&tm, 2);
    LossConfig mix = {0.5f, 0.5f, KD_KL, 2.0f, 1, 0, 0.0f};
    grads_case(ctx, &s, &tm, &mix, "tiny from a 6-layer teacher, CE + KL");
    model_free(&s), model_free(&tm);
    cuda_context_free(ctx);
}

// 20 AdamW steps of distillation on both backends, fresh batches each step: the GPU's losses
// follow the CPU's. Then resume: 3 + save + load + 3 steps equal 6 straight steps bit for bit.
Test(cuda_train_parity, distillation_trajectory_and_resume) {
    CudaContext* ctx = ctx_or_skip();
    ModelConfig sc = tiny_config(), tc = sc;
    Err e;
    tc.n_layers = 6;
    Model s, tm;
    model_create(&s, &sc);
    model_init_random(&s, 3);
    model_create(&tm, &tc);
    model_init_random(&tm, 4);
    round_arena_to_bf16(&s), round_arena_to_bf16(&tm);
    int B = 4, T = 16, N = B * T, V = sc.vocab, C = sc.hidden, steps = 20;
    LossConfig lc = {0.5f, 0.5f, KD_KL, 2.0f, 1, 0, 0.0f};
    OptimConfig o = {3e-3f, 3e-4f, 3, steps, 1, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    // CPU
    TrainActs a, ta;
    train_acts_create(&a, &sc, B, T, 0);
    train_acts_create(&ta, &tc, B, T, 0);
    float* G = calloc(s.table.n_floats, sizeof(float));
    float* M = calloc(s.table.n_floats, sizeof(float));
    float* Vv = calloc(s.table.n_floats, sizeof(float));
    ModelWeights gw;
    weights_bind(&s.table, &sc, G, &gw);
    float* d_xnf = malloc(sizeof(float) * N * C);
    // GPU
    CudaModel g, tg;
    CudaTrainModel t;
    CudaTrainActs ga;
    CudaTeacher tt;
    cuda_model_create(&g, ctx, &sc);
    cuda_train_model_create(&t, &g, &s);
    cuda_train_acts_create(&ga, ctx, &sc, B, T, 0);
    cuda_model_create(&tg, ctx, &tc);
    cuda_model_upload(&tg, &tm);
    cuda_teacher_create(&tt, &tg, B, T);
    int *tokens = malloc(sizeof(int) * (N + 1));
    double worst = 0;
    for (int step = 0; step < steps; step++) {
        random_ids(tokens, N + 1, V, 1000 + 100 * step);
        const int* targets = tokens + 1;
        LossValues lv, glv;
        // CPU step
        cr_assert_eq(train_forward(&s, &a, tokens, &e), 0, "%s", e.msg);
        cr_assert_eq(train_forward(&tm, &ta, tokens, &e), 0, "%s", e.msg);
        memset(G, 0, sizeof(float) * s.table.n_floats);
        cr_assert_eq(lm_head_loss(&lc, a.xnf, s.w.lm_head, N, C, V, targets, ta.xnf, tm.w.lm_head, C, 1.0f, d_xnf,
                                  gw.lm_head, &lv, &e), 0, "%s", e.msg);
        train_backward(&s, &a, tokens, d_xnf, NULL, &gw);
        double norm = grad_norm(G, s.table.n_floats);
        if (o.clip > 0 && norm > o.clip)
            for (size_t i = 0; i < s.table.n_floats; i++) G[i] *= (float)(o.clip / (norm + 1e-6));
        float lr = lr_at(&o, step);
        adamw_step(&o, &s.table, s.arena, G, M, Vv, step + 1, lr);
        // GPU step
        cr_assert_eq(cuda_teacher_forward(&tt, tokens, B, T, &e), 0, "%s", e.msg);
        cr_assert_eq(cuda_train_forward(&g, &ga, tokens, &e), 0, "%s", e.msg);
        cr_assert_eq(cuda_train_loss(&t, &ga, &lc, targets, tt.rs.xn, tg.lm_head, C, 1.0f, &glv, &e), 0, "%s", e.msg);
        cuda_train_backward(&t, &ga, tokens, NULL);
        cuda_train_optimizer_step(&t, &o, lr);
        double rel = fabs(glv.total - lv.total) / fabs(lv.total);
        if (rel > worst) worst = rel;
        cr_expect(rel < 3e-2, "step %d: GPU loss %.6g, CPU %.6g", step, glv.total, lv.total);
    }
    cr_log_info("20-step distillation: worst relative loss difference GPU vs CPU %.3g", worst);

    // resume: 6 straight steps against 3 + state out to the host (the CPU layout the trainer's state
    // file holds) + a fresh GPU model from it + 3
    size_t nf = s.table.n_floats;
    float *sp = malloc(sizeof(float) * nf), *sm = malloc(sizeof(float) * nf), *sv = malloc(sizeof(float) * nf);
    float* straight = NULL;
    for (int run = 0; run < 2; run++) {
        CudaModel g2;
        CudaTrainModel t2;
        cuda_model_create(&g2, ctx, &sc);
        cuda_train_model_create(&t2, &g2, &s);
        for (int step = 0; step < 6; step++) {
            if (run == 1 && step == 3) {
                cuda_train_model_get_state(&t2, sp, sm, sv);
                int at = t2.step;
                cuda_train_model_free(&t2);
                cuda_train_model_create(&t2, &g2, &s);
                cuda_train_model_set_state(&t2, sp, sm, sv, at);
                cr_expect_eq(t2.step, 3);
            }
            random_ids(tokens, N + 1, V, 5000 + 100 * step);
            LossValues glv;
            cr_assert_eq(cuda_teacher_forward(&tt, tokens, B, T, &e), 0, "%s", e.msg);
            cr_assert_eq(cuda_train_forward(&g2, &ga, tokens, &e), 0, "%s", e.msg);
            cr_assert_eq(cuda_train_loss(&t2, &ga, &lc, tokens + 1, tt.rs.xn, tg.lm_head, C, 1.0f, &glv, &e), 0, "%s",
                         e.msg);
            cuda_train_backward(&t2, &ga, tokens, NULL);
            cuda_train_optimizer_step(&t2, &o, lr_at(&o, step));
        }
        float* master = download_f32(ctx, t2.master, g2.arena_elems);
        if (run == 0)
            straight = master;
        else {
            cr_expect(memcmp(master, straight, sizeof(float) * g2.arena_elems) == 0,
                      "resumed GPU training is not bit-identical to the straight run");
            free(master);
        }
        cuda_train_model_free(&t2);
        cuda_model_free(&g2);
    }
    free(sp), free(sm), free(sv);
    free(straight);
    cuda_teacher_free(&tt);
    cuda_model_free(&tg);
    cuda_train_acts_free(&ga);
    cuda_train_model_free(&t);
    cuda_model_free(&g);
    train_acts_free(&a), train_acts_free(&ta);
    weights_free(&gw);
    free(G), free(M), free(Vv), free(d_xnf), free(tokens);
    model_free(&s), model_free(&tm);
    cuda_context_free(ctx);
}

// The data-parallel GPU path at world 1 (the device step of the NCCL issue): the backward queues each
// gradient bucket's all-reduce on NCCL's stream as the layers finish (a sum over one rank is the
// identity), the step waits for them and updates; 5 distillation steps with 4 KB buckets (many of them,
// so the hook's ordering is exercised) end with the same masters and moments, bit for bit, as 5 steps
// without NCCL; and so does ZeRO-1 (reduce-scatter to the shard's owner, the norm from the shard, the
// shard's update, the bf16 all-gather, the state gathered back: at world 1 the shard is everything);
// bf16 reduction (a rounding of each gradient) stays within 1e-6 nmse of the masters.
Test(cuda_train_parity, nccl_world_of_one_equals_the_single_gpu_path) {
    CudaContext* probe = ctx_or_skip();
    cuda_context_free(probe);
#ifndef ARBOR_HAVE_NCCL
    cr_skip_test("arbor was built without NCCL");
#else
    ModelConfig sc = tiny_config(), tc = sc;
    tc.n_layers = 4;
    Model s, t;
    model_create(&s, &sc);
    model_init_random(&s, 41);
    model_create(&t, &tc);
    model_init_random(&t, 42);
    round_arena_to_bf16(&s), round_arena_to_bf16(&t);
    int B = 2, T = 16, N = B * T;
    size_t n = s.table.n_floats;
    float* state[4];
    LossConfig lc = {0.5f, 0.5f, KD_KL, 1.0f, 0, 0, 0.0f};
    OptimConfig o = {1e-3f, 1e-4f, 1, 5, 1, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    int* windows = malloc(sizeof(int) * (N + 1));
    Dist one = {0};
    one.world = 1, one.timeout_s = 60;
    snprintf(one.launcher, sizeof one.launcher, "none");
    int buckets = 0;
    for (int run = 0; run < 4; run++) {
        TrainerGpu* g;
        Err e;
        cr_assert_eq(trainer_gpu_open(&g, &s, &t, B, T, 0, NULL, &e), 0, "%s", e.msg);
        if (run >= 1) {
            cr_assert_eq(trainer_gpu_set_dist(g, &one, 4096, run == 2, run == 3, &e), 0, "%s", e.msg);
            buckets = trainer_gpu_buckets(g);
        }
        for (int step = 0; step < 5; step++) {
            random_ids(windows, N + 1, sc.vocab, 900 + step);
            LossValues lv;
            cr_assert_eq(trainer_gpu_forward_loss(g, &lc, HIDDEN_NONE, 0, NULL, windows, windows + 1, 1.0f, &lv, &e), 0, "%s", e.msg);
            trainer_gpu_backward(g, windows, 1);
            double norm = trainer_gpu_optimizer_step(g, &o, lr_at(&o, step), &e);
            cr_assert(isfinite(norm), "run %d step %d: %s", run, step, e.msg);
        }
        state[run] = malloc(sizeof(float) * 3 * n);
        cr_assert_eq(trainer_gpu_get_state(g, state[run], state[run] + n, state[run] + 2 * n, &e), 0, "%s", e.msg);
        trainer_gpu_close(g);
    }
    cr_expect_gt(buckets, 10, "4 KB buckets over the tiny model: %d", buckets);
    cr_expect(memcmp(state[0], state[1], sizeof(float) * 3 * n) == 0, "NCCL at world 1 changed the masters or moments");
    cr_expect(memcmp(state[0], state[2], sizeof(float) * 3 * n) == 0, "ZeRO-1 at world 1 changed the masters or moments");
    // bf16 reduction rounds each summed gradient to bf16: the masters move by a little, not by nothing
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)state[3][i] - state[0][i];
        num += d * d, den += (double)state[0][i] * state[0][i];
    }
    cr_expect(num / den < 1e-6, "bf16 reduction at world 1: masters nmse %g against fp32's", num / den);
    free(state[0]), free(state[1]), free(state[2]), free(state[3]), free(windows);
    model_free(&s), model_free(&t);
#endif
}
#endif
