// test_hetero_model.c: models whose layers differ (config.h's per-layer list). Checked against
// independent references: transformers' own modules (tools/make_hetero_fixture.py: per-layer Qwen3MLP
// widths, attention replaced by nothing) give the logits of the committed fixture; the backward of a
// heterogeneous model equals that of its homogeneous twin with the missing neurons' rows and the
// removed attentions' o_proj zeroed (the twin's backward is checked against torch autograd elsewhere);
// the surgery from a plan equals the teacher with those blocks masked; the config round-trips; and the
// paths that do not take such models yet say so.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/engine.h"
#include "models/forward.h"
#include "models/safetensors.h"
#include "models/train.h"
#include "prune/hetero_surgery.h"
#include "helpers.h"

static void fixture(char* out, size_t n) { snprintf(out, n, "%s/hetero", fixtures_root()); }

Test(hetero_model, transformers_logits_of_the_fixture) {
    char dir[1024], path[1200];
    fixture(dir, sizeof dir);
    Model m;
    Err e;
    cr_assert_eq(model_load(&m, dir, &e), 0, "%s", e.msg);
    cr_assert(m.cfg.hetero);
    int want_ffn[4] = {96, 48, 0, 24}, want_attn[4] = {1, 0, 1, 0};
    for (int l = 0; l < 4; l++)
        cr_expect(m.cfg.layer_ffn[l] == want_ffn[l] && m.cfg.layer_attention[l] == want_attn[l], "layer %d", l);
    cr_expect_eq(m.table.n_params, 29, "only the tensors that exist");
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    StFile f;
    cr_assert_eq(st_open(&f, path, &e), 0, "%s", e.msg);
    const StTensor* ids_t = st_find(&f, "ids");
    const StTensor* lg_t = st_find(&f, "logits");
    cr_assert(ids_t && lg_t);
    int T = (int)ids_t->shape[1], V = m.cfg.vocab;
    const int64_t* ids64 = (const int64_t*)(f.map + ids_t->begin);
    float* ref = malloc(sizeof(float) * T * V);
    cr_assert_eq(st_read_f32(&f, lg_t, ref, &e), 0, "%s", e.msg);
    int *tokens = malloc(sizeof(int) * T), *seq = calloc((size_t)T, sizeof(int)), *pos = malloc(sizeof(int) * T);
    for (int t = 0; t < T; t++) tokens[t] = (int)ids64[t], pos[t] = t;
    RunState rs;
    KVCache kc;
    runstate_create(&rs, &m.cfg, T, T);
    kvcache_create(&kc, &m.cfg, 1, T);
    float* out = malloc(sizeof(float) * T * V);
    cr_assert_eq(model_forward(&m, &rs, &kc, tokens, seq, pos, T, NULL, T, out, &e), 0, "%s", e.msg);
    double worst = 0;
    for (int i = 0; i < T * V; i++) worst = fmax(worst, fabs((double)out[i] - ref[i]));
    cr_log_info("heterogeneous fixture: max |arbor - transformers| = %.3g over %d logits", worst, T * V);
    cr_expect_lt(worst, 1e-5, "logits differ from transformers' by %g", worst);
    // the training forward agrees with the inference forward
    TrainActs a;
    train_acts_create(&a, &m.cfg, 1, T, 0);
    cr_assert_eq(train_forward(&m, &a, tokens, &e), 0, "%s", e.msg);
    float* z = malloc(sizeof(float) * V);
    double worst_train = 0;
    for (int t = 0; t < T; t++) {
        m.ops->matmul_forward(z, a.xnf + (size_t)t * m.cfg.hidden, m.w.lm_head, NULL, 1, m.cfg.hidden, V);
        for (int v = 0; v < V; v++) worst_train = fmax(worst_train, fabs((double)z[v] - ref[(size_t)t * V + v]));
    }
    cr_expect_lt(worst_train, 1e-5, "training forward: %g", worst_train);
    free(z), free(out), free(ref), free(tokens), free(seq), free(pos);
    train_acts_free(&a);
    runstate_free(&rs);
    kvcache_free(&kc);
    st_close(&f);
    model_free(&m);
}

Test(hetero_model, config_round_trip_and_parameter_count) {
    char dir[1024], tmp[256];
    fixture(dir, sizeof dir);
    Model m;
    Err e;
    cr_assert_eq(model_load(&m, dir, &e), 0, "%s", e.msg);
    size_t numel = 0;
    for (int i = 0; i < m.table.n_params; i++) numel += m.table.params[i].numel;
    cr_expect_eq((long long)numel, config_param_count(&m.cfg));
    make_temp_dir(tmp, sizeof tmp);
    cr_assert_eq(model_save(&m, tmp, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, &e), 0, "%s", e.msg);
    Model back;
    cr_assert_eq(model_load(&back, tmp, &e), 0, "%s", e.msg);
    cr_expect(back.cfg.hetero && !memcmp(back.cfg.layer_ffn, m.cfg.layer_ffn, sizeof(int) * 4) &&
              !memcmp(back.cfg.layer_attention, m.cfg.layer_attention, 4));
    cr_expect(memcmp(back.arena, m.arena, sizeof(float) * m.table.n_floats) == 0);
    // malformed per-layer lists: one line naming the file
    char path[400];
    snprintf(path, sizeof path, "%s/config.json", tmp);
    char* text = slurp(path);
    char* at = strstr(text, "\"intermediate_size\":\t24");
    if (!at) at = strstr(text, "\"intermediate_size\": 24");
    cr_assert_not_null(at, "%s", text);
    char* bad = malloc(strlen(text) + 8);
    size_t head = (size_t)(strchr(at, ':') - text) + 1;
    snprintf(bad, strlen(text) + 8, "%.*s 500%s", (int)head, text, strchr(at, ',') ? strchr(at, ',') : "");
    write_text(path, bad);
    Model broken;
    cr_expect_eq(model_load(&broken, tmp, &e), -1);
    cr_expect(strstr(e.msg, "config.json") && strstr(e.msg, "arbor_layers[3].intermediate_size = 500"), "%s", e.msg);
    free(text), free(bad);
    // the CUDA paths refuse such a model with the reason, before touching a device
    Engine en;
    cr_expect_eq(engine_open(&en, &m, DEVICE_CUDA, &e), -1);
    cr_expect(strstr(e.msg, "heterogeneous"), "%s", e.msg);
    model_free(&back);
    model_free(&m);
    snprintf(path, sizeof path, "rm -rf %s", tmp);
    cr_expect_eq(system(path), 0);
}

// The heterogeneous model's twin: every layer full width with the missing neurons' rows zero and o_proj
// zero where the attention is removed (so those sublayers add nothing, exactly)
static void twin_of(const Model* h, Model* t) {
    ModelConfig c = h->cfg;
    c.hetero = false;
    model_create(t, &c);
    model_init_random(t, 77);  // q, k, v, norms of removed attentions: anything (o_proj is zero)
    for (int i = 0; i < t->table.n_params; i++) {
        const ParamInfo* p = &t->table.params[i];
        const ParamInfo* q = NULL;
        for (int k = 0; k < h->table.n_params && !q; k++)
            if (!strcmp(h->table.params[k].name, p->name)) q = &h->table.params[k];
        int l = p->layer, Fl = l >= 0 ? h->cfg.layer_ffn[l] : 0;
        if (p->field == P_W_GATE || p->field == P_W_UP) {  // rows 0..Fl-1 from the model, the rest zero
            memset(t->arena + p->offset, 0, sizeof(float) * p->numel);
            if (q) memcpy(t->arena + p->offset, h->arena + q->offset, sizeof(float) * q->numel);
        } else if (p->field == P_W_DOWN) {
            memset(t->arena + p->offset, 0, sizeof(float) * p->numel);
            for (int ch = 0; q && ch < c.hidden; ch++)
                memcpy(t->arena + p->offset + (size_t)ch * c.ffn, h->arena + q->offset + (size_t)ch * Fl, sizeof(float) * Fl);
        } else if (q) {
            memcpy(t->arena + p->offset, h->arena + q->offset, sizeof(float) * p->numel);
        } else if (p->field == P_WO || p->field == P_BO) {
            memset(t->arena + p->offset, 0, sizeof(float) * p->numel);
        }
    }
}

Test(hetero_model, backward_equals_the_masked_homogeneous_twin) {
    char dir[1024];
    fixture(dir, sizeof dir);
    Model h, t;
    Err e;
    cr_assert_eq(model_load(&h, dir, &e), 0, "%s", e.msg);
    twin_of(&h, &t);
    int B = 2, T = 9, N = B * T, C = h.cfg.hidden;
    int* tokens = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) tokens[i] = (i * 37 + 11) % h.cfg.vocab;
    float* d_xnf = malloc(sizeof(float) * N * C);
    for (int i = 0; i < N * C; i++) d_xnf[i] = (float)sin(0.37 * i);
    float* grads[2];
    const Model* ms[2] = {&h, &t};
    float* xnf[2];
    for (int k = 0; k < 2; k++) {
        TrainActs a;
        train_acts_create(&a, &ms[k]->cfg, B, T, k == 0 ? 1 : 0);  // the heterogeneous one with recompute too
        cr_assert_eq(train_forward(ms[k], &a, tokens, &e), 0, "%s", e.msg);
        xnf[k] = malloc(sizeof(float) * N * C);
        memcpy(xnf[k], a.xnf, sizeof(float) * N * C);
        grads[k] = calloc(ms[k]->table.n_floats, sizeof(float));
        ModelWeights g;
        weights_bind(&ms[k]->table, &ms[k]->cfg, grads[k], &g);
        train_backward(ms[k], &a, tokens, d_xnf, NULL, &g);
        weights_free(&g);
        train_acts_free(&a);
    }
    double fwd = 0;
    for (int i = 0; i < N * C; i++) fwd = fmax(fwd, fabs((double)xnf[0][i] - xnf[1][i]));
    cr_expect_lt(fwd, 1e-5, "forward: %g", fwd);
    int compared = 0;
    for (int i = 0; i < h.table.n_params; i++) {  // every tensor the heterogeneous model has, against the twin's part
        const ParamInfo* p = &h.table.params[i];
        const ParamInfo* q = NULL;
        for (int k = 0; k < t.table.n_params && !q; k++)
            if (!strcmp(t.table.params[k].name, p->name)) q = &t.table.params[k];
        cr_assert_not_null(q);
        double worst = 0, scale = 1e-12;
        int Fl = p->layer >= 0 ? h.cfg.layer_ffn[p->layer] : 0;
        for (size_t j = 0; j < p->numel; j++) {
            size_t tj = j;
            if (p->field == P_W_DOWN) tj = (j / (size_t)Fl) * h.cfg.ffn + j % (size_t)Fl;
            double a = grads[0][p->offset + j], b = grads[1][q->offset + tj];
            worst = fmax(worst, fabs(a - b)), scale = fmax(scale, fabs(b));
        }
        cr_expect_lt(worst, 1e-4 * scale, "%s: gradient differs by %g (scale %g)", p->name, worst, scale);
        compared++;
    }
    cr_expect_eq(compared, 29);
    free(grads[0]), free(grads[1]), free(xnf[0]), free(xnf[1]), free(tokens), free(d_xnf);
    model_free(&h), model_free(&t);
}

Test(hetero_model, surgery_from_a_plan_equals_the_masked_teacher) {
    ModelConfig c;
    Err e;
    config_preset("tiny", &c, &e);
    c.n_layers = 3, c.hidden = 32, c.ffn = 40, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8, c.vocab = 50;
    Model m;
    model_create(&m, &c);
    model_init_random(&m, 13);
    Importance imp = {0};
    imp.n_layers = 3, imp.ffn = 40;
    imp.mlp = malloc(sizeof(double) * 3 * 40);
    for (int i = 0; i < 120; i++) imp.mlp[i] = fmod(i * 0.618, 1.0);
    int ffn[3] = {40, 10, 0};
    unsigned char attention[3] = {0, 1, 1};
    Model h;
    cr_assert_eq(prune_hetero(&m, &imp, ffn, attention, &h, &e), 0, "%s", e.msg);
    cr_expect(h.cfg.hetero && h.cfg.ffn == 40 && config_param_count(&h.cfg) < config_param_count(&c));
    // the teacher masked: the removed neurons' gate rows zero, o_proj zero where the attention goes
    Model k;
    model_create(&k, &c);
    memcpy(k.arena, m.arena, sizeof(float) * m.table.n_floats);
    int order[40];
    for (int l = 0; l < 3; l++) {
        importance_mlp_order(&imp, l, order);
        for (int r = ffn[l]; r < 40; r++) memset(k.w.layers[l].w_gate + (size_t)order[r] * c.hidden, 0, sizeof(float) * c.hidden);
        if (!attention[l]) memset(k.w.layers[l].wo, 0, sizeof(float) * c.hidden * c.n_heads * c.head_dim);
    }
    int T = 11, tokens[11], seq[11] = {0}, pos[11];
    for (int t = 0; t < T; t++) tokens[t] = (t * 7 + 3) % c.vocab, pos[t] = t;
    float out[2][11 * 50];
    const Model* ms[2] = {&h, &k};
    for (int i = 0; i < 2; i++) {
        RunState rs;
        KVCache kc;
        runstate_create(&rs, &ms[i]->cfg, T, T);
        kvcache_create(&kc, &ms[i]->cfg, 1, T);
        cr_assert_eq(model_forward(ms[i], &rs, &kc, tokens, seq, pos, T, NULL, T, out[i], &e), 0, "%s", e.msg);
        runstate_free(&rs);
        kvcache_free(&kc);
    }
    double worst = 0;
    for (int i = 0; i < T * c.vocab; i++) worst = fmax(worst, fabs((double)out[0][i] - out[1][i]));
    cr_expect_lt(worst, 1e-5, "pruned vs masked teacher: %g", worst);
    // every FFN removed is a model too (attention only; intermediate_size 1 by convention); a width past the
    // teacher's is refused
    int none[3] = {0, 0, 0}, wide[3] = {41, 1, 1};
    Model x;
    cr_assert_eq(prune_hetero(&m, &imp, none, attention, &x, &e), 0, "%s", e.msg);
    for (int i = 0; i < x.table.n_params; i++) cr_expect(x.table.params[i].field != P_W_GATE, "%s", x.table.params[i].name);
    cr_expect_eq(x.cfg.ffn, 1);
    model_free(&x);
    cr_expect_eq(prune_hetero(&m, &imp, wide, attention, &x, &e), -1);
    cr_expect(strstr(e.msg, "outside [0, 40]"), "%s", e.msg);
    free(imp.mlp);
    model_free(&h), model_free(&k), model_free(&m);
}
