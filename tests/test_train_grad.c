// test_train_grad.c: the backward pass and the fused lm_head losses against torch autograd on
// Hugging Face models (tools/make_train_fixtures.py): loss values and the gradient of every
// parameter, for Qwen3 (tied, QK-norm, head_dim != hidden/heads), Llama (untied) and Qwen2 (biases),
// with CE, CE + forward KL (T = 2, T^2), reverse KL and top-k KD against a deeper, wider teacher, and
// the intermediate hidden-state losses (cosine, MSE) between mapped layers.
#include <criterion/criterion.h>
#include <math.h>
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
