// test_train_grad.c: the backward pass and the fused lm_head losses against torch autograd on
// Hugging Face models (tools/make_train_fixtures.py): loss values and the gradient of every
// parameter, for Qwen3 (tied, QK-norm, head_dim != hidden/heads), Llama (untied) and Qwen2 (biases),
// with CE, CE + forward KL (T = 2, T^2), reverse KL and top-k KD against a deeper, wider teacher, and
// the intermediate hidden-state losses (cosine, MSE) between mapped layers.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distill/hidden_loss.h"
#include "distill/loss.h"
#include "helpers.h"
#include "models/train.h"

static void check_case(const char* kind, int recompute) {
    char dir[512], path[700];
    snprintf(dir, sizeof dir, "%s/train/%s", ARBOR_FIXTURES, kind);
    snprintf(path, sizeof path, "%s/reference.json", dir);
    cJSON* ref = read_json(path);
    int B = cJSON_GetObjectItem(ref, "B")->valueint, T = cJSON_GetObjectItem(ref, "T")->valueint, N = B * T;
    int* inp = malloc(sizeof(int) * (size_t)N * 2);
    int* tgt = inp + N;
    for (int b = 0; b < B; b++) {
        const cJSON* w = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "windows"), b);
        for (int t = 0; t < T; t++) {
            inp[b * T + t] = cJSON_GetArrayItem(w, t)->valueint;
            tgt[b * T + t] = cJSON_GetArrayItem(w, t + 1)->valueint;
        }
    }
    Model s, t;
    Err e;
    load_model_at(&s, dir, "student");
    load_model_at(&t, dir, "teacher");
    TrainActs sa, ta;
    train_acts_create(&sa, &s.cfg, B, T, recompute);
    train_acts_create(&ta, &t.cfg, B, T, 0);
    cr_assert_eq(train_forward(&t, &ta, inp, &e), 0, "%s", e.msg);
    float* garena = xaligned_alloc(sizeof(float) * s.table.n_floats);
    ModelWeights g;
    weights_bind(&s.table, &s.cfg, garena, &g);
    float* d_xnf = malloc(sizeof(float) * (size_t)N * s.cfg.hidden);
    const cJSON* l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(ref, "losses")) {
        const char* kd = cJSON_GetObjectItem(l, "kd")->valuestring;
        LossConfig lc = {(float)cJSON_GetObjectItem(l, "ce_weight")->valuedouble,
                         (float)cJSON_GetObjectItem(l, "kd_weight")->valuedouble,
                         !strcmp(kd, "kl") ? KD_KL : !strcmp(kd, "rkl") ? KD_RKL : !strcmp(kd, "topk") ? KD_TOPK : KD_NONE,
                         (float)cJSON_GetObjectItem(l, "temperature")->valuedouble,
                         cJSON_IsTrue(cJSON_GetObjectItem(l, "t2_scaling")), cJSON_GetObjectItem(l, "topk")->valueint, 0.0f};
        memset(garena, 0, sizeof(float) * s.table.n_floats);
        cr_assert_eq(train_forward(&s, &sa, inp, &e), 0, "%s", e.msg);
        LossValues lv;
        cr_assert_eq(lm_head_loss(&lc, sa.xnf, s.w.lm_head, N, s.cfg.hidden, s.cfg.vocab, tgt, ta.xnf, t.w.lm_head,
                                  t.cfg.hidden, 1.0f, d_xnf, g.lm_head, &lv, &e), 0, "%s", e.msg);
        // the intermediate hidden-state loss, when the case has one: student layer i vs teacher layer map[i]
        const cJSON* hk = cJSON_GetObjectItem(l, "hidden");
        HiddenLossKind hidden = !hk || !strcmp(hk->valuestring, "none") ? HIDDEN_NONE
                                : !strcmp(hk->valuestring, "cosine") ? HIDDEN_COSINE : HIDDEN_MSE;
        int Ls = s.cfg.n_layers;
        float* d_layers = NULL;
        float* ptrs[16] = {0};
        if (hidden != HIDDEN_NONE) {
            int map[16];
            hidden_layer_map_even(Ls, t.cfg.n_layers, map);
            const cJSON* want_map = cJSON_GetObjectItem(l, "layer_map");
            size_t NC = (size_t)N * s.cfg.hidden;
            float w = (float)cJSON_GetObjectItem(l, "hidden_weight")->valuedouble;
            d_layers = malloc(sizeof(float) * NC * (size_t)Ls);
            double hv = 0;
            for (int i = 0; i < Ls; i++) {
                cr_expect_eq(map[i], cJSON_GetArrayItem(want_map, i)->valueint, "layer map %d", i);
                ptrs[i] = d_layers + NC * (size_t)i;
                hv += hidden_loss(hidden, sa.res + NC * (size_t)(i + 1), ta.res + NC * (size_t)(map[i] + 1), N, s.cfg.hidden,
                                  w / (float)Ls, ptrs[i]);
            }
            lv.total += w * hv / Ls;
        }
        train_backward(&s, &sa, inp, d_xnf, hidden != HIDDEN_NONE ? ptrs : NULL, &g);
        free(d_layers);
        double want = cJSON_GetObjectItem(l, "total")->valuedouble;
        cr_expect(fabs(lv.total - want) <= 1e-5 * fabs(want), "%s %s: loss %.8f, torch %.8f", kind, l->string, lv.total, want);
        snprintf(path, sizeof path, "%s/grads_%s.safetensors", dir, l->string);
        StFile gf;
        cr_assert_eq(st_open(&gf, path, &e), 0, "%s", e.msg);
        double worst = 0;
        const char* worst_name = "";
        for (int i = 0; i < s.table.n_params; i++) {
            const ParamInfo* p = &s.table.params[i];
            const StTensor* rt = st_find(&gf, p->name);
            cr_assert_not_null(rt, "%s: no reference gradient for %s", path, p->name);
            float* want_g = malloc(sizeof(float) * p->numel);
            cr_assert_eq(st_read_f32(&gf, rt, want_g, &e), 0);
            double err = rel_l2(garena + p->offset, want_g, p->numel);
            if (err > worst) worst = err, worst_name = p->name;
            cr_expect_leq(err, 1e-4, "%s %s: gradient of %s: rel L2 %.3g", kind, l->string, p->name, err);
            free(want_g);
        }
        cr_log_info("%s %s: loss %.6f (torch %.6f); worst gradient rel L2 %.2e (%s)", kind, l->string, lv.total, want,
                    worst, worst_name);
        st_close(&gf);
    }
    free(d_xnf);
    free(garena);
    weights_free(&g);
    train_acts_free(&sa);
    train_acts_free(&ta);
    model_free(&s);
    model_free(&t);
    free(inp);
    cJSON_Delete(ref);
}

Test(train_grad, qwen3_ce_kl_rkl_topk) { check_case("qwen3", 0); }
Test(train_grad, llama_ce_kl_hidden_cosine_mse) { check_case("llama", 0); }
Test(train_grad, qwen2_biases_ce) { check_case("qwen2", 0); }
Test(train_grad, recomputed_activations_match_torch_too) {
    check_case("qwen3", 1);
    check_case("llama", 1);
}

// The loss runs in fp32 (vectorised exp, sums in double): at Qwen3's vocabulary of 151,936, against
// the same formulas in double here, for CE + forward KL at T = 2 with T^2 and for reverse KL. The
// logits spread over [-12, 12] and the teacher's are a perturbed copy, so KL is small next to the
// log-normalisers it is the difference of: the case where an fp32 sum would lose it.
static double ref_softmax(const double* z, int V, double T, double* p) {  // log of the normaliser of z / T
    double m = z[0], s = 0;
    for (int i = 1; i < V; i++) m = z[i] > m ? z[i] : m;
    for (int i = 0; i < V; i++) s += p[i] = exp((z[i] - m) / T);
    for (int i = 0; i < V; i++) p[i] /= s;
    return m / T + log(s);
}

Test(train_grad, fp32_loss_matches_double_at_a_full_vocabulary) {
    int N = 3, C = 4, V = 151936;
    float *x = malloc(sizeof(float) * N * C), *w = malloc(sizeof(float) * (size_t)V * C), *tw = malloc(sizeof(float) * (size_t)V * C);
    float *dx = malloc(sizeof(float) * N * C), *dw = calloc((size_t)V * C, sizeof(float));
    int targets[3] = {5, 77777, 151935};
    uint64_t r = 7;
    for (int i = 0; i < N * C; i++) x[i] = (i % C == 0) ? 1.0f : 0.0f;  // row n reads column 0 of the heads: logits = w[:, 0]
    for (size_t i = 0; i < (size_t)V * C; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        w[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 24.0 - 12.0);
        tw[i] = w[i] + 0.05f * (float)(((r >> 7) & 1023) / 512.0 - 1.0);
    }
    double *z = malloc(sizeof(double) * V), *zt = malloc(sizeof(double) * V), *p = malloc(sizeof(double) * V),
           *q = malloc(sizeof(double) * V);
    for (int i = 0; i < V; i++) z[i] = w[(size_t)i * C], zt[i] = tw[(size_t)i * C];
    const char* losses[2] = {"mix:1,kl", "rkl"};
    for (int k = 0; k < 2; k++) {
        LossConfig lc;
        Err e;
        cr_assert_eq(loss_parse(losses[k], 1, &lc, &e), 0);
        lc.temperature = k ? 1.0f : 2.0f, lc.t2_scaling = !k;
        double T = lc.temperature, t2 = k ? 1 : T * T;
        // the reference: every row has the same logits (x picks column 0), so one row's values are the mean's
        double lse = ref_softmax(z, V, 1.0, p), ce = lse - z[targets[0]], ce_mean = 0;
        for (int n = 0; n < N; n++) ce_mean += (lse - z[targets[n]]) / N;
        double lz = ref_softmax(z, V, T, p), lt = ref_softmax(zt, V, T, q), kl = 0;
        for (int i = 0; i < V; i++)
            kl += k ? p[i] * ((z[i] / T - lz) - (zt[i] / T - lt)) : q[i] * ((zt[i] / T - lt) - (z[i] / T - lz));
        LossValues lv;
        memset(dw, 0, sizeof(float) * (size_t)V * C);
        cr_assert_eq(lm_head_loss(&lc, x, w, N, C, V, targets, x, tw, C, 1.0f, dx, dw, &lv, &e), 0, "%s", e.msg);
        cr_log_info("%s: kd %.9g (double %.9g), ce %.9g (double %.9g)", losses[k], lv.kd, t2 * kl, lv.ce, ce_mean);
        cr_expect(fabs(lv.kd - t2 * kl) <= 1e-5 * t2 * kl, "%s: KD %.9g vs %.9g in double", losses[k], lv.kd, t2 * kl);
        if (!k) cr_expect(fabs(lv.ce - ce_mean) <= 1e-6 * ce_mean, "CE %.9g vs %.9g in double (one row %.9g)", lv.ce, ce_mean, ce);
        // the gradient of the lm_head's column 0 (x = e0 in every row): the mean over rows of dz
        double worst = 0, scale = 0;
        double ref_kl = kl;
        for (int i = 0; i < V; i++) {
            double g = 0;
            for (int n = 0; n < N; n++) {
                double d = k ? t2 * p[i] * ((z[i] / T - lz) - (zt[i] / T - lt) - ref_kl) / T : t2 * (p[i] - q[i]) / T;
                if (!k) {
                    double pc = exp(z[i] - lse);
                    d += pc - (i == targets[n]);
                }
                g += d / N;
            }
            worst = fmax(worst, fabs(dw[(size_t)i * C] - g));
            scale = fmax(scale, fabs(g));
        }
        cr_expect(worst <= 1e-5 * scale, "%s: worst gradient difference %.3g of the largest %.3g", losses[k], worst, scale);
    }
    free(x), free(w), free(tw), free(dx), free(dw), free(z), free(zt), free(p), free(q);
}

// lm_head_loss runs its rows in chunks (a few hundred rows at a time): over 600 rows, split in two calls
// of 300 at half the gradient scale each, every output agrees with one call on all of them: the loss
// terms (the mean of the halves' means), each row's d_xnf, and d_lm_head accumulated over the halves;
// to sgemm's rounding (a product of another row count may block its sums differently).
Test(train_grad, loss_chunks_join_like_separate_calls) {
    enum { N = 600, C = 24, V = 97 };
    float *x = malloc(sizeof(float) * N * C), *tx = malloc(sizeof(float) * N * C), *w = malloc(sizeof(float) * V * C),
          *tw = malloc(sizeof(float) * V * C);
    int targets[N];
    uint64_t r = 11;
    for (int i = 0; i < N * C; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5);
        tx[i] = x[i] * 0.9f + 0.01f;
    }
    for (int i = 0; i < V * C; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        w[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 4.0 - 2.0);
        tw[i] = w[i] * 1.1f;
    }
    for (int n = 0; n < N; n++) targets[n] = (n * 37) % V;
    LossConfig lc;
    Err e;
    cr_assert_eq(loss_parse("mix:0.5,kl", 1, &lc, &e), 0, "%s", e.msg);
    float *dx = calloc(N * C, sizeof(float)), *dw = calloc(V * C, sizeof(float));
    float *dx2 = calloc(N * C, sizeof(float)), *dw2 = calloc(V * C, sizeof(float));
    LossValues all, a, b;
    cr_assert_eq(lm_head_loss(&lc, x, w, N, C, V, targets, tx, tw, C, 1.0f, dx, dw, &all, &e), 0, "%s", e.msg);
    int H = N / 2;
    cr_assert_eq(lm_head_loss(&lc, x, w, H, C, V, targets, tx, tw, C, 0.5f, dx2, dw2, &a, &e), 0, "%s", e.msg);
    cr_assert_eq(lm_head_loss(&lc, x + H * C, w, H, C, V, targets + H, tx + H * C, tw, C, 0.5f, dx2 + H * C, dw2, &b, &e), 0,
                 "%s", e.msg);
    cr_expect(fabs(all.ce - (a.ce + b.ce) / 2) <= 1e-6 * fabs(all.ce), "ce %.12g vs %.12g", all.ce, (a.ce + b.ce) / 2);
    cr_expect(fabs(all.kd - (a.kd + b.kd) / 2) <= 1e-6 * fabs(all.kd), "kd %.12g vs %.12g", all.kd, (a.kd + b.kd) / 2);
    double ex = rel_l2(dx, dx2, N * C), ew = rel_l2(dw, dw2, V * C);
    cr_expect(ex <= 1e-6 && ew <= 1e-6, "d_xnf rel L2 %.3g, d_lm_head %.3g", ex, ew);
    free(x), free(tx), free(w), free(tw), free(dx), free(dw), free(dx2), free(dw2);
}
