// test_prune.c: pruning. Surgery that removes nothing is the identity; dropping a layer equals a model
// whose layer contributes nothing; removing a neuron whose down_proj column is zero changes nothing;
// importance scores against direct computations; heads stay with their KV group; bad input refused.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "models/generate.h"
#include "models/file_io.h"
#include "prune/search.h"

static void tiny(Model* m, uint64_t seed) {
    ModelConfig c;
    Err e;
    config_preset("tiny", &c, &e);  // 4 layers, hidden 64, ffn 192, 4 heads, 2 KV groups, head_dim 16
    model_create(m, &c);
    model_init_random(m, seed);
    for (size_t i = 0; i < m->table.n_floats; i++) m->arena[i] *= 10.0f;  // livelier than N(0, 0.02)
    for (int l = 0; l < c.n_layers; l++)  // norms back to ~1
        for (int i = 0; i < c.hidden; i++) m->w.layers[l].attn_norm[i] = m->w.layers[l].mlp_norm[i] = 1.0f;
    for (int i = 0; i < c.hidden; i++) m->w.final_norm[i] = 1.0f;
    for (int i = 0; i < c.head_dim; i++)
        for (int l = 0; l < c.n_layers; l++) m->w.layers[l].q_norm[i] = m->w.layers[l].k_norm[i] = 1.0f;
}

static const int prompt[12] = {5, 17, 300, 2, 99, 41, 7, 250, 12, 3, 77, 401};

static float* logits_of(const Model* m) {
    KVCache cache;
    RunState s;
    kvcache_create(&cache, &m->cfg, 1, 12);
    runstate_create(&s, &m->cfg, 12, 12);
    float* out = malloc(sizeof(float) * 12 * (size_t)m->cfg.vocab);
    const int* p[1] = {prompt};
    int n = 12;
    Err e;
    cr_assert_eq(model_prefill(m, &s, &cache, p, &n, 1, true, out, &e), 0, "%s", e.msg);
    runstate_free(&s);
    kvcache_free(&cache);
    return out;
}

static void pruned(const Model* m, const Importance* imp, PruneTarget t, Model* out) {
    int keep[64], n_keep;
    Err e;
    cr_assert_eq(prune_pick_layers(&m->cfg, imp, &t, keep, &n_keep, &e), 0, "%s", e.msg);
    cr_assert_eq(prune_model(m, imp, &t, keep, n_keep, out, &e), 0, "%s", e.msg);
}

Test(prune, removing_nothing_is_the_identity) {
    Model m, p;
    tiny(&m, 1);
    pruned(&m, NULL, (PruneTarget){DEPTH_NONE, 0, NULL, 0, 0, 0, 0, 0}, &p);
    float *a = logits_of(&m), *b = logits_of(&p);
    cr_expect_arr_eq(a, b, sizeof(float) * 12 * 512);
    free(a), free(b);
    model_free(&m), model_free(&p);
}

Test(prune, dropping_a_layer_equals_a_layer_that_adds_nothing) {
    for (int drop = 0; drop < 4; drop++) {
        Model m, p;
        tiny(&m, 2);
        pruned(&m, NULL, (PruneTarget){DEPTH_LIST, 0, &drop, 1, 0, 0, 0, 0}, &p);
        cr_assert_eq(p.cfg.n_layers, 3);
        LayerWeights* w = &m.w.layers[drop];  // o_proj and down_proj at zero: the layer passes its input on
        memset(w->wo, 0, sizeof(float) * 64 * 64);
        memset(w->w_down, 0, sizeof(float) * 64 * 192);
        float *a = logits_of(&m), *b = logits_of(&p);
        double err = rel_l2(b, a, 12 * 512);
        cr_expect_leq(err, 1e-6, "dropping layer %d: rel L2 %.3g", drop, err);
        free(a), free(b);
        model_free(&m), model_free(&p);
    }
}

static Importance fake_scores(const ModelConfig* c) {
    Importance imp = {0};
    imp.n_layers = c->n_layers, imp.ffn = c->ffn, imp.n_heads = c->n_heads, imp.n_kv_heads = c->n_kv_heads;
    imp.hidden = c->hidden;
    imp.bi = calloc((size_t)c->n_layers, sizeof(double));
    imp.angular = calloc((size_t)(c->n_layers + 1) * (c->n_layers + 1), sizeof(double));
    imp.mlp = calloc((size_t)c->n_layers * c->ffn, sizeof(double));
    imp.heads = calloc((size_t)c->n_layers * c->n_heads, sizeof(double));
    imp.kv = calloc((size_t)c->n_layers * c->n_kv_heads, sizeof(double));
    imp.channels = calloc((size_t)c->hidden, sizeof(double));
    for (int i = 0; i < c->n_layers * c->ffn; i++) imp.mlp[i] = 1.0 + i % 7;
    for (int i = 0; i < c->n_layers * c->n_heads; i++) imp.heads[i] = 1.0 + (i * 5) % 4;
    for (int i = 0; i < c->n_layers * c->n_kv_heads; i++) imp.kv[i] = 1.0 + i % 2;
    for (int i = 0; i < c->hidden; i++) imp.channels[i] = 1.0 + i;
    return imp;
}

Test(prune, removing_a_neuron_with_a_zero_down_column_changes_nothing) {
    Model m, p;
    tiny(&m, 3);
    Importance imp = fake_scores(&m.cfg);
    int l = 2, j = 77;
    for (int r = 0; r < 64; r++) m.w.layers[l].w_down[(size_t)r * 192 + j] = 0.0f;
    for (int ll = 0; ll < 4; ll++) imp.mlp[(size_t)ll * 192 + j] = -1.0;  // the lowest score everywhere
    // keep every other neuron: prune 1 from each layer, the zero-column one in layer 2
    pruned(&m, &imp, (PruneTarget){DEPTH_NONE, 0, NULL, 0, 191, 0, 0, 0}, &p);
    // the other layers lose neuron 77 too, which is not free: give them zero down columns as well
    for (int ll = 0; ll < 4; ll++)
        for (int r = 0; r < 64; r++) m.w.layers[ll].w_down[(size_t)r * 192 + j] = 0.0f;
    float *a = logits_of(&m), *b = logits_of(&p);
    double err = rel_l2(b, a, 12 * 512);
    cr_expect_leq(err, 1e-6, "rel L2 %.3g", err);
    free(a), free(b);
    importance_free(&imp);
    model_free(&m), model_free(&p);
}

Test(prune, heads_stay_with_their_kv_group) {
    Model m, p;
    tiny(&m, 4);
    Importance imp = fake_scores(&m.cfg);
    // group 1 of every layer scores higher; within it, head 2 beats head 3
    for (int l = 0; l < 4; l++) {
        imp.kv[l * 2 + 0] = 1, imp.kv[l * 2 + 1] = 5;
        imp.heads[l * 4 + 2] = 9, imp.heads[l * 4 + 3] = 1;
    }
    pruned(&m, &imp, (PruneTarget){DEPTH_NONE, 0, NULL, 0, 0, 1, 1, 0}, &p);
    cr_assert_eq(p.cfg.n_heads, 1);
    cr_assert_eq(p.cfg.n_kv_heads, 1);
    for (int l = 0; l < 4; l++) {
        // the kept query head is head 2 (rows 32..47 of q_proj), its KV group is group 1 (rows 16..31)
        cr_expect_arr_eq(p.w.layers[l].wq, m.w.layers[l].wq + 32 * 64, sizeof(float) * 16 * 64, "layer %d q", l);
        cr_expect_arr_eq(p.w.layers[l].wk, m.w.layers[l].wk + 16 * 64, sizeof(float) * 16 * 64, "layer %d k", l);
        cr_expect_arr_eq(p.w.layers[l].wv, m.w.layers[l].wv + 16 * 64, sizeof(float) * 16 * 64, "layer %d v", l);
        for (int r = 0; r < 64; r++)  // o_proj keeps head 2's input columns
            cr_expect_arr_eq(p.w.layers[l].wo + (size_t)r * 16, m.w.layers[l].wo + (size_t)r * 64 + 32, sizeof(float) * 16);
    }
    importance_free(&imp);
    model_free(&m), model_free(&p);
}

static void calib_shard(const char* path, int n) { write_test_shard(path, n, 512, 9, NULL); }

Test(prune, importance_scores_against_direct_computation) {
    char dir[256], path[512];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/calib.shard", dir);
    calib_shard(path, 8 * 16);
    Model m;
    tiny(&m, 5);
    // hand-made zeros: layer 1 adds nothing; neuron 5 of layer 0 never fires; KV group 0 of layer 3
    // carries no values; channel 9 is never written
    memset(m.w.layers[1].wo, 0, sizeof(float) * 64 * 64);
    memset(m.w.layers[1].w_down, 0, sizeof(float) * 64 * 192);
    memset(m.w.layers[0].w_gate + 5 * 64, 0, sizeof(float) * 64);
    memset(m.w.layers[3].wv, 0, sizeof(float) * 16 * 64);
    for (int v = 0; v < 512; v++) m.w.wte[(size_t)v * 64 + 9] = 0.0f;
    for (int l = 0; l < 4; l++)
        for (int i = 0; i < 192; i++) m.w.layers[l].w_down[(size_t)9 * 192 + i] = 0.0f;
    for (int l = 0; l < 4; l++)
        for (int i = 0; i < 64; i++) m.w.layers[l].wo[(size_t)9 * 64 + i] = 0.0f;
    Shard s;
    Err e;
    cr_assert_eq(shard_open(&s, path, &e), 0);
    Importance imp;
    CalibOptions o = {.windows = 8, .seq_len = 16, .batch = 3, .agg = AGG_L2};  // 8 sequences in batches of 3 (a short last batch)
    cr_assert_eq(importance_compute(&m, &s, &o, &imp, &e), 0, "%s", e.msg);
    cr_expect_eq(imp.tokens, 8 * 16);
    cr_expect_leq(fabs(imp.bi[1]), 1e-6, "a layer that adds nothing has Block Influence 0: %g", imp.bi[1]);
    cr_expect_leq(fabs(imp.angular[1 * 5 + 2]), 1e-3, "and angular distance 0: %g", imp.angular[1 * 5 + 2]);
    cr_expect_gt(imp.bi[0], 1e-3);
    cr_expect_eq(imp.mlp[5], 0.0, "a neuron that never fires scores 0");
    cr_expect_gt(imp.mlp[6], 0.0);
    cr_expect_eq(imp.heads[3 * 4 + 0], 0.0);
    cr_expect_eq(imp.heads[3 * 4 + 1], 0.0);
    cr_expect_eq(imp.kv[3 * 2 + 0], 0.0, "a KV group with zero values scores 0");
    cr_expect_gt(imp.kv[3 * 2 + 1], 0.0);
    cr_expect_eq(imp.channels[9], 0.0, "a channel never written scores 0");
    // Block Influence directly, through the inference path: residuals captured after every layer
    KVCache cache;
    RunState rs;
    kvcache_create(&cache, &m.cfg, 8, 16);
    runstate_create(&rs, &m.cfg, 8 * 16, 16);
    int tokens[128], seq[128], pos[128], slot[4] = {0, 1, 2, 3};
    for (int i = 0; i < 128; i++) tokens[i] = shard_token(&s, (uint64_t)i), seq[i] = i / 16, pos[i] = i % 16;
    float* cap = malloc(sizeof(float) * 4 * 128 * 64);
    float* hidden = malloc(sizeof(float) * 128 * 64);
    float* emb = malloc(sizeof(float) * 128 * 64);
    cr_assert_eq(model_forward_hidden(&m, &rs, &cache, tokens, seq, pos, 128, hidden, cap, slot, &e), 0);
    kernels_cpu()->embedding_forward(emb, tokens, m.w.wte, 128, 64);
    for (int l = 0; l < 4; l++) {
        const float* in = l == 0 ? emb : cap + (size_t)(l - 1) * 128 * 64;
        const float* out = cap + (size_t)l * 128 * 64;
        double bi = 0;
        for (int r = 0; r < 128; r++) {
            double ab = 0, aa = 0, bb = 0;
            for (int c = 0; c < 64; c++) {
                ab += (double)in[r * 64 + c] * out[r * 64 + c];
                aa += (double)in[r * 64 + c] * in[r * 64 + c];
                bb += (double)out[r * 64 + c] * out[r * 64 + c];
            }
            bi += 1.0 - ab / sqrt(aa * bb);
        }
        bi /= 128;
        cr_expect(fabs(bi - imp.bi[l]) <= 1e-4 * fmax(bi, 1e-3), "layer %d: BI %.6f, direct %.6f", l, imp.bi[l], bi);
    }
    // the scores file round-trips and refuses another model's shape
    snprintf(path, sizeof path, "%s/scores.json", dir);
    cr_assert_eq(importance_save(&imp, &m.cfg, path, &e), 0, "%s", e.msg);
    Importance back;
    cr_assert_eq(importance_load(&back, &m.cfg, path, &e), 0, "%s", e.msg);
    for (int i = 0; i < 4 * 192; i++)
        cr_expect(fabs(back.mlp[i] - imp.mlp[i]) <= 1e-12 * fabs(imp.mlp[i]), "mlp[%d]: %.17g vs %.17g", i, back.mlp[i], imp.mlp[i]);
    importance_free(&back);
    ModelConfig other = m.cfg;
    other.ffn = 128;
    cr_expect_eq(importance_load(&back, &other, path, &e), -1);
    cr_expect(contains(e.msg, "scores of another model"), "%s", e.msg);
    free(cap), free(hidden), free(emb);
    runstate_free(&rs);
    kvcache_free(&cache);
    importance_free(&imp);
    shard_close(&s);
    model_free(&m);
}

Test(prune, depth_strategies_choose_as_defined) {
    ModelConfig c;
    Err e;
    config_preset("tiny", &c, &e);
    c.n_layers = 6;
    Importance imp = fake_scores(&c);
    double bi[6] = {0.9, 0.2, 0.5, 0.1, 0.3, 0.8};
    memcpy(imp.bi, bi, sizeof bi);
    for (int a = 0; a <= 6; a++)
        for (int b = 0; b <= 6; b++) imp.angular[a * 7 + b] = 1.0;
    imp.angular[2 * 7 + 4] = 0.05;  // layers 2..3 form the most redundant block of 2
    int keep[8], n;
    cr_assert_eq(prune_pick_layers(&c, &imp, &(PruneTarget){DEPTH_BI, 4, NULL, 0, 0, 0, 0, 0}, keep, &n, &e), 0, "%s", e.msg);
    cr_expect_arr_eq(keep, ((int[]){0, 2, 4, 5}), 4 * sizeof(int));
    cr_assert_eq(prune_pick_layers(&c, &imp, &(PruneTarget){DEPTH_BLOCK, 4, NULL, 0, 0, 0, 0, 0}, keep, &n, &e), 0);
    cr_expect_arr_eq(keep, ((int[]){0, 1, 4, 5}), 4 * sizeof(int));
    cr_assert_eq(prune_pick_layers(&c, &imp, &(PruneTarget){DEPTH_LAST, 4, NULL, 0, 0, 0, 0, 0}, keep, &n, &e), 0);
    cr_expect_arr_eq(keep, ((int[]){0, 1, 2, 5}), 4 * sizeof(int));
    // bad targets
    cr_expect_eq(prune_pick_layers(&c, &imp, &(PruneTarget){DEPTH_BI, 7, NULL, 0, 0, 0, 0, 0}, keep, &n, &e), -1);
    cr_expect(contains(e.msg, "--layers 7: the model has 6 layers"), "%s", e.msg);
    int bad[1] = {6};
    cr_expect_eq(prune_pick_layers(&c, &imp, &(PruneTarget){DEPTH_LIST, 0, bad, 1, 0, 0, 0, 0}, keep, &n, &e), -1);
    cr_expect(contains(e.msg, "layer 6 does not exist"), "%s", e.msg);
    importance_free(&imp);
}

Test(prune, impossible_width_targets_are_refused) {
    Model m, p;
    tiny(&m, 6);
    Importance imp = fake_scores(&m.cfg);
    int keep[4] = {0, 1, 2, 3};
    Err e;
    const struct {
        PruneTarget t;
        const char* phrase;
    } cases[] = {
        {{DEPTH_NONE, 0, NULL, 0, 256, 0, 0, 0}, "--ffn 256 is larger than the model's 192"},
        {{DEPTH_NONE, 0, NULL, 0, 0, 0, 0, 96}, "--hidden 96 is larger than the model's 64"},
        {{DEPTH_NONE, 0, NULL, 0, 0, 3, 2, 0}, "--heads 3 is not a multiple of the 2 KV groups"},
        {{DEPTH_NONE, 0, NULL, 0, 0, 4, 1, 0}, "needs 4 query heads per group; the model has 2"},
        {{DEPTH_NONE, 0, NULL, 0, 0, 0, 3, 0}, "--kv-heads 3 is more than the model's 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_eq(prune_model(&m, &imp, &cases[i].t, keep, 4, &p, &e), -1, "%s", cases[i].phrase);
        cr_expect(contains(e.msg, cases[i].phrase), "says '%s': %s", cases[i].phrase, e.msg);
    }
    cr_expect_eq(prune_model(&m, NULL, &(PruneTarget){DEPTH_NONE, 0, NULL, 0, 100, 0, 0, 0}, keep, 4, &p, &e), -1);
    cr_expect(contains(e.msg, "needs importance scores"), "%s", e.msg);
    char dir[256], path[512];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/empty.shard", dir);
    calib_shard(path, 10);
    Shard s;
    cr_assert_eq(shard_open(&s, path, &e), 0);
    CalibOptions o = {.windows = 4, .seq_len = 16, .batch = 2, .agg = AGG_L2};
    Importance none;
    cr_expect_eq(importance_compute(&m, &s, &o, &none, &e), -1);
    cr_expect(contains(e.msg, "empty calibration data"), "%s", e.msg);
    shard_close(&s);
    importance_free(&imp);
    model_free(&m);
}

Test(prune, ppl_strategy_drops_the_layer_whose_removal_costs_least) {
    Model m;
    tiny(&m, 7);
    memset(m.w.layers[2].wo, 0, sizeof(float) * 64 * 64);  // layer 2 passes its input on unchanged
    memset(m.w.layers[2].w_down, 0, sizeof(float) * 64 * 192);
    int tokens[128];
    for (int i = 0; i < 128; i++) tokens[i] = (i * 7919) % 512;
    Err e;
    double full = prune_val_loss(&m, tokens, 128, 32, &e), loss[4];
    int best = 0;
    for (int l = 0; l < 4; l++) {  // each single removal, computed directly
        int keep[3], k = 0;
        for (int j = 0; j < 4; j++)
            if (j != l) keep[k++] = j;
        Model p;
        cr_assert_eq(prune_model(&m, NULL, &(PruneTarget){DEPTH_NONE, 0, NULL, 0, 0, 0, 0, 0}, keep, 3, &p, &e), 0);
        loss[l] = prune_val_loss(&p, tokens, 128, 32, &e);
        if (loss[l] < loss[best]) best = l;
        model_free(&p);
    }
    cr_expect(fabs(loss[2] - full) < 1e-5, "removing the layer that adds nothing keeps the loss: %.6f vs %.6f", loss[2], full);
    int keep[4], n;
    cr_assert_eq(prune_depth_ppl(&m, tokens, 128, 32, 3, keep, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 3);
    for (int i = 0; i < 3; i++) cr_expect_neq(keep[i], best, "ppl drops layer %d, the cheapest removal", best);
    model_free(&m);
}

// The search tests' setting: a temp dir (path = DIR/search.csv), the tiny model of seed 8, made-up
// scores and 128 validation tokens.
static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static void search_setup(char dir[256], char path[512], Model* m, Importance* imp, int tokens[128]) {
    make_temp_dir(dir, 256);
    snprintf(path, 512, "%s/search.csv", dir);
    tiny(m, 8);
    *imp = fake_scores(&m->cfg);
    for (int i = 0; i < 128; i++) tokens[i] = (i * 31) % 512;
}

Test(prune, search_ranks_shapes_within_budget_and_bounds) {
    char dir[256], path[512];
    Model m;
    Importance imp;
    int tokens[128];
    search_setup(dir, path, &m, &imp, tokens);
    SearchOptions o = {0.8 * (double)config_param_count(&m.cfg), 0, 0, 0, 2, 1, 16, 64, 0.5, 0.5, 0, NULL, DEVICE_CPU};
    SearchCandidate* c;
    int n;
    Err e;
    cr_assert_eq(prune_search(&m, &imp, tokens, 128, 32, &o, NULL, path, &c, &n, &e), 0, "%s", e.msg);
    cr_expect_gt(n, 3);
    for (int i = 0; i < n; i++) {
        cr_expect_leq((double)c[i].params, o.max_params);
        cr_expect_geq(c[i].layers, 2);
        cr_expect_geq(c[i].hidden, 32);
        cr_expect_eq(c[i].heads % 2, 0, "whole query heads per KV group");
        if (i) cr_expect_leq(c[i - 1].val_loss, c[i].val_loss, "ranked by validation loss");
    }
    char* csv = file_read_all(path, NULL, &e);
    cr_assert_not_null(csv);
    const char* header = "rank,layers,hidden,ffn,heads,params,memory_mb,tps,tps_min,tps_max,val_loss,rank_pruned,final_val_loss\n1,";
    cr_expect(strncmp(csv, header, strlen(header)) == 0, "%s", csv);
    free(csv);
    // a memory budget alone: weights + KV cache of 4 sequences x 256 tokens in bf16, computed here
    // from the shape; the budget sits between two candidates' footprints, so it binds
    int all = n;
    o.max_params = 0, o.kv_batch = 4, o.kv_context = 256, o.bytes_per_value = 2;
    double footprint[64];
    for (int i = 0; i < all && i < 64; i++) {
        ModelConfig s = m.cfg;
        s.n_layers = c[i].layers, s.hidden = c[i].hidden, s.ffn = c[i].ffn, s.n_heads = c[i].heads;
        footprint[i] = (config_param_count(&s) + 2.0 * s.n_layers * s.n_kv_heads * s.head_dim * 4 * 256) * 2 / 1e6;
    }
    o.max_memory_mb = footprint[0];  // the best candidate by loss: the budget keeps it and whatever is smaller
    SearchCandidate* mem;
    int n_mem;
    cr_assert_eq(prune_search(&m, &imp, tokens, 128, 32, &o, NULL, path, &mem, &n_mem, &e), 0, "%s", e.msg);
    int want = 0;
    for (int i = 0; i < all && i < 64; i++) want += footprint[i] <= o.max_memory_mb;
    cr_expect(n_mem > 0 && n_mem <= want, "%d candidates within %.3f MB (of the params search's, %d fit)", n_mem, o.max_memory_mb, want);
    for (int i = 0; i < n_mem; i++) cr_expect_leq(mem[i].memory_mb, o.max_memory_mb);
    free(mem);
    o.max_params = 1000, o.max_memory_mb = 0;
    SearchCandidate* none;
    cr_expect_eq(prune_search(&m, &imp, tokens, 128, 32, &o, NULL, path, &none, &n, &e), -1);
    cr_expect(contains(e.msg, "no shape within the bounds fits"), "%s", e.msg);
    free(c);
    importance_free(&imp);
    model_free(&m);
}

Test(prune, search_tps_budget_keeps_the_shapes_fast_enough) {
    char dir[256], path[512];
    Model m;
    Importance imp;
    int tokens[128];
    search_setup(dir, path, &m, &imp, tokens);
    SearchOptions o = {1e30, 0, 8, 1024, 2, 1, 16, 64, 0.5, 0.5, 0, NULL, DEVICE_CPU};
    DeviceSpec h200;
    cr_assert_eq(device_spec("h200", &h200), 0);
    SearchCandidate* all;
    int n_all;
    Err e;
    // every shape of the grid, with its predicted tokens/s (the roofline floor, computed here per shape)
    o.min_tps = 1e-9, o.tps_spec = &h200;
    cr_assert_eq(prune_search(&m, &imp, tokens, 128, 32, &o, NULL, path, &all, &n_all, &e), 0, "%s", e.msg);
    double sorted[256];
    for (int i = 0; i < n_all && i < 256; i++) {
        ModelConfig s = m.cfg;
        s.n_layers = all[i].layers, s.hidden = all[i].hidden, s.ffn = all[i].ffn, s.n_heads = all[i].heads;
        RooflineStep st;
        roofline_decode(&s, 8, 1024, 2, 2, &h200, &st);
        cr_expect_float_eq(all[i].tps, st.tokens_per_s, 1e-9 * st.tokens_per_s);
        sorted[i] = all[i].tps;
    }
    qsort(sorted, (size_t)n_all, sizeof(double), cmp_double);
    // a budget at the median: exactly the shapes at or above it remain, and the CSV says each one's speed
    o.min_tps = sorted[n_all / 2];
    SearchCandidate* fast;
    int n_fast;
    cr_assert_eq(prune_search(&m, &imp, tokens, 128, 32, &o, NULL, path, &fast, &n_fast, &e), 0, "%s", e.msg);
    int want = 0;
    for (int i = 0; i < n_all; i++) want += all[i].tps >= o.min_tps;
    cr_expect(n_fast == want && n_fast < n_all, "%d of %d shapes at %.1f tokens/s or more (want %d)", n_fast, n_all, o.min_tps, want);
    for (int i = 0; i < n_fast; i++) cr_expect_geq(fast[i].tps, o.min_tps);
    char* csv = file_read_all(path, NULL, &e);
    char speed[64];
    snprintf(speed, sizeof speed, ",%.3f,%.3f,%.3f,", fast[0].tps, fast[0].tps, fast[0].tps);
    cr_expect(contains(csv, speed), "%s in %s", speed, csv);
    free(csv);
    // measured here: a median within its range, and a budget nothing reaches is refused
    o.tps_spec = NULL, o.kv_batch = 1, o.kv_context = 8, o.min_tps = 1e-9, o.max_params = 0.6 * (double)config_param_count(&m.cfg);
    SearchCandidate* measured;
    int n_measured;
    cr_assert_eq(prune_search(&m, &imp, tokens, 128, 32, &o, NULL, path, &measured, &n_measured, &e), 0, "%s", e.msg);
    for (int i = 0; i < n_measured; i++)
        cr_expect(measured[i].tps_min > 0 && measured[i].tps_min <= measured[i].tps && measured[i].tps <= measured[i].tps_max,
                  "%g <= %g <= %g", measured[i].tps_min, measured[i].tps, measured[i].tps_max);
    o.min_tps = 1e15;
    SearchCandidate* none;
    int n_none;
    cr_expect_eq(prune_search(&m, &imp, tokens, 128, 32, &o, NULL, path, &none, &n_none, &e), -1);
    cr_expect(contains(e.msg, "no shape within the bounds fits") && contains(e.msg, "1e+15 tokens/s"), "%s", e.msg);
    o.kv_context = m.cfg.max_positions;
    o.min_tps = 1;
    cr_expect_eq(prune_search(&m, &imp, tokens, 128, 32, &o, NULL, path, &none, &n_none, &e), -1);
    cr_expect(contains(e.msg, "past the model's"), "%s", e.msg);
    free(all), free(fast), free(measured);
    importance_free(&imp);
    model_free(&m);
}

// a downstream score that prefers models without the original layer 1: the pruned model's first
// layer weights tell which layers it kept
static double prefers_without_layer_1(const Model* p, void* ctx, Err* e) {
    const Model* orig = ctx;
    for (int i = 0; i < p->cfg.n_layers; i++)
        if (memcmp(p->w.layers[i].wq, orig->w.layers[1].wq, sizeof(float) * 64 * 64) == 0) return 0.25;
    return 0.75;
}

Test(prune, block_strategy_ranked_by_a_downstream_score) {
    char dir[256], path[512];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/blocks.csv", dir);
    Model m;
    tiny(&m, 9);
    Importance imp = fake_scores(&m.cfg);
    for (int i = 0; i < 25; i++) imp.angular[i] = 1.0;
    imp.angular[2 * 5 + 4] = 0.1;  // by angular distance alone, block 2..3 would go
    imp.angular[1 * 5 + 3] = 0.5;  // of the blocks holding layer 1 (equal scores), 1..2 is the closer pair
    int keep[4], n;
    Err e;
    cr_assert_eq(prune_block_by_score(&m, &imp, 2, prefers_without_layer_1, &m, path, keep, &n, &e), 0, "%s", e.msg);
    cr_expect_eq(n, 2);
    cr_expect(keep[0] != 1 && keep[1] != 1, "the block holding layer 1 is dropped: kept %d %d", keep[0], keep[1]);
    cr_expect_arr_eq(keep, ((int[]){0, 3}), 2 * sizeof(int), "ties go to the smaller angular distance: kept %d %d", keep[0], keep[1]);
    char* csv = file_read_all(path, NULL, &e);
    cr_assert_not_null(csv);
    cr_expect(contains(csv, "start,end,angular_distance,score\n0,2,") && contains(csv, "\n2,4,0.100000,0.250000"), "%s", csv);
    free(csv);
    importance_free(&imp);
    model_free(&m);
}

// Block Influence before / after the final norm and the layer-ablation NMSE against transformers
// (tools/make_depth_metric_fixture.py) on a committed tiny checkpoint; the ablation uses the first 3
// of 4 sequences, in batches of 2 (so it stops inside a batch); the scores survive a save and load.
Test(prune, depth_metrics_match_transformers) {
    char path[512], dir[256];
    snprintf(path, sizeof path, "%s/prune/depth_metrics.json", ARBOR_FIXTURES);
    cJSON* ref = read_json(path);
    snprintf(path, sizeof path, "%s/hf/qwen3_odd_untied_bias_f32_sharded", ARBOR_FIXTURES);
    Model m;
    Err e;
    cr_assert_eq(model_load(&m, path, &e), 0, "%s", e.msg);
    int L = m.cfg.n_layers, T = cJSON_GetObjectItem(ref, "seq_len")->valueint;
    int S = cJSON_GetObjectItem(ref, "sequences")->valueint, n = S * T;
    int* ids = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) ids[i] = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "tokens"), i)->valueint;
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/calib.shard", dir);
    write_test_shard(path, n, m.cfg.vocab, 0, ids);
    Shard s;
    cr_assert_eq(shard_open(&s, path, &e), 0, "%s", e.msg);
    for (int after = 0; after < 2; after++) {
        CalibOptions o = {.windows = S, .seq_len = T, .batch = 2, .agg = AGG_L2, .bi_after_norm = after,
                          .ablation_windows = cJSON_GetObjectItem(ref, "ablation_sequences")->valueint,
                          .ablation_sizes = {2}, .n_ablation_sizes = 1};
        Importance imp, back;
        cr_assert_eq(importance_compute(&m, &s, &o, &imp, &e), 0, "%s", e.msg);
        snprintf(path, sizeof path, "%s/scores.json", dir);
        cr_assert_eq(importance_save(&imp, &m.cfg, path, &e), 0, "%s", e.msg);
        cr_assert_eq(importance_load(&back, &m.cfg, path, &e), 0, "%s", e.msg);
        cr_expect_eq(back.bi_after_norm, after);
        const cJSON* want_bi = cJSON_GetObjectItem(ref, after ? "bi_after_final_norm" : "bi_before_final_norm");
        for (int l = 0; l < L; l++)
            cr_expect_float_eq(back.bi[l], cJSON_GetArrayItem(want_bi, l)->valuedouble, 2e-5, "bi[%d] after=%d: %g", l, after, back.bi[l]);
        cr_expect_eq(back.ablation.sequences, o.ablation_windows);
        cr_assert_eq(back.ablation.n_sizes, 2);
        for (int k = 0; k < 2; k++) {
            const cJSON* blk = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "ablation"), k);
            cr_assert_eq(back.ablation.sizes[k], cJSON_GetObjectItem(blk, "size")->valueint);
            for (int st = 0; st < ablation_count(&back.ablation, k); st++) {
                size_t at = ablation_offset(&back.ablation, k) + (size_t)st;
                double wh = cJSON_GetArrayItem(cJSON_GetObjectItem(blk, "hidden_nmse"), st)->valuedouble;
                double wl = cJSON_GetArrayItem(cJSON_GetObjectItem(blk, "logits_nmse"), st)->valuedouble;
                cr_expect_float_eq(back.ablation.hidden[at], wh, 1e-4 * wh, "hidden nmse size %d start %d: %g vs %g",
                                   back.ablation.sizes[k], st, back.ablation.hidden[at], wh);
                cr_expect_float_eq(back.ablation.logits[at], wl, 1e-4 * wl, "logits nmse size %d start %d: %g vs %g",
                                   back.ablation.sizes[k], st, back.ablation.logits[at], wl);
            }
        }
        // the strategies read them: ablation drops the single layer that moves the logits least,
        // ablation-block the block of 2 that does; blocks of a size never ablated are refused
        int keep[8], n_keep;
        cr_assert_eq(prune_pick_layers(&m.cfg, &back, &(PruneTarget){DEPTH_ABLATION, L - 1, NULL, 0, 0, 0, 0, 0}, keep, &n_keep, &e), 0);
        cr_expect(n_keep == 2 && keep[0] == 0 && keep[1] == 1, "ablation keeps layers 0 1 (layer 2 matters least)");
        cr_assert_eq(prune_pick_layers(&m.cfg, &back, &(PruneTarget){DEPTH_ABLATION_BLOCK, L - 2, NULL, 0, 0, 0, 0, 0}, keep, &n_keep, &e), 0);
        cr_expect(n_keep == 1 && keep[0] == 0, "ablation-block drops block 1..2");
        importance_free(&back);
        back = imp;
        back.ablation.n_sizes = 1;  // only single layers
        cr_expect_eq(prune_pick_layers(&m.cfg, &back, &(PruneTarget){DEPTH_ABLATION_BLOCK, L - 2, NULL, 0, 0, 0, 0, 0}, keep, &n_keep, &e), -1);
        cr_expect(strstr(e.msg, "needs blocks of 2 ablated") != NULL, "%s", e.msg);
        back.ablation.n_sizes = 2;
        importance_free(&imp);
    }
    CalibOptions gpu = {.windows = S, .seq_len = T, .batch = 2, .gpu = 1, .ablation_windows = 1};
    Importance imp;
    cr_expect_eq(importance_compute(&m, &s, &gpu, &imp, &e), -1, "the GPU calibration refuses what it does not compute");
    cr_expect(strstr(e.msg, "CPU calibration path only") != NULL, "%s", e.msg);
    shard_close(&s);
    free(ids);
    model_free(&m);
    cJSON_Delete(ref);
}

// A scorer for the finalists that checks it is handed distilled models (a candidate that keeps
// the full hidden size has the source's embedding until it is trained) and prefers the largest:
// a constructed case where the order after distillation differs from the order after pruning.
typedef struct {
    const Model* source;
    int calls, undistilled;
} FinalistProbe;

static double prefers_more_params(const Model* p, void* ctx, Err* e) {
    FinalistProbe* probe = ctx;
    probe->calls++;
    if (p->cfg.hidden == probe->source->cfg.hidden &&
        !memcmp(p->w.wte, probe->source->w.wte, sizeof(float) * (size_t)p->cfg.vocab * p->cfg.hidden))
        probe->undistilled++;
    return (double)config_param_count(&p->cfg);
}

Test(prune, search_finalists_are_distilled_then_ranked_again) {
    char dir[256], path[512], shard[512];
    Model m;
    Importance imp;
    int tokens[128];
    search_setup(dir, path, &m, &imp, tokens);
    snprintf(shard, sizeof shard, "%s/data.shard", dir);
    write_test_shard(shard, 4000, 512, 5, NULL);
    SearchOptions o = {0.9 * (double)config_param_count(&m.cfg), 0, 0, 0, 2, 1, 16, 64, 0.5, 0.5, 0, NULL, DEVICE_CPU};
    Shard data;
    Err e;
    cr_assert_eq(shard_open(&data, shard, &e), 0, "%s", e.msg);
    TrainConfig tc = {0};
    tc.steps = 2, tc.batch = 2, tc.grad_accum = 1, tc.seq_len = 16, tc.log_every = 1, tc.val_fraction = 0.05;
    tc.optim = (OptimConfig){1e-2f, 1e-2f, 0, 2, 0, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f};
    tc.loss = (LossConfig){0.0f, 1.0f, KD_KL, 1.0f, 0, 0, 0.0f};
    FinalistProbe probe = {&m, 0, 0};
    FinalistOptions fo = {3, &tc, &data, dir, prefers_more_params, &probe};
    SearchCandidate* c;
    int n;
    cr_assert_eq(prune_search(&m, &imp, tokens, 128, 32, &o, &fo, path, &c, &n, &e), 0, "%s", e.msg);
    cr_assert_gt(n, 3);
    cr_expect_eq(probe.calls, 3);
    cr_expect_eq(probe.undistilled, 0, "every finalist was trained before it was scored");
    for (int i = 0; i < 3; i++) {
        cr_expect_leq(c[i].rank_pruned, 3, "the finalists are the 3 best after pruning");
        cr_expect(!isnan(c[i].final_score));
        if (i) cr_expect_geq(c[i - 1].final_score, c[i].final_score, "ranked by the score after distillation");
        snprintf(path, sizeof path, "%s/rank-%d/log.csv", dir, i + 1);  // each distilled finalist, named by its final rank
        cr_expect_eq(access(path, R_OK), 0, "final rank %d's distillation log", i + 1);
    }
    int changed = 0;
    for (int i = 0; i < 3; i++) changed |= c[i].rank_pruned != i + 1;
    cr_expect(changed, "the constructed scorer reorders the finalists");
    for (int i = 3; i < n; i++) cr_expect(c[i].rank_pruned == i + 1 && isnan(c[i].final_score), "the rest keep their order");
    snprintf(path, sizeof path, "%s/search.csv", dir);
    char* csv = file_read_all(path, NULL, &e);
    char row[160];
    snprintf(row, sizeof row, "\n1,%d,%d,%d,%d,%lld,", c[0].layers, c[0].hidden, c[0].ffn, c[0].heads, c[0].params);
    cr_expect(contains(csv, row), "rank 1 is the best finalist: %s", csv);
    cr_expect(contains(csv, ",rank_pruned,final_mmlu_val\n"), "the score's column says what it is: %s", csv);
    // rank-1/model is the distilled winner: its shape is rank 1's
    ModelConfig w;
    snprintf(path, sizeof path, "%s/rank-1/model", dir);
    cr_assert_eq(config_load(path, &w, &e), 0, "%s", e.msg);
    cr_expect(w.n_layers == c[0].layers && w.hidden == c[0].hidden && w.ffn == c[0].ffn, "rank-1 holds the winner's shape");
    free(csv);
    free(c);
    shard_close(&data);
    importance_free(&imp);
    model_free(&m);
}
