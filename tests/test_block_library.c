// test_block_library.c: the heterogeneous block library (prune/block_library.h) against computations it
// does not share: each variant's damage recomputed by a full forward of a model built another way (the
// removed neurons' down_proj columns zeroed instead of their gate and up rows; the attention and FFN
// removed as the identity layer), with the KL and the next-token loss written out here in double.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/train.h"
#include "prune/block_library.h"
#include "helpers.h"

enum { T = 12, WINDOWS = 6 };

static ModelConfig shape(void) {
    ModelConfig c;
    Err e;
    config_preset("tiny", &c, &e);
    c.n_layers = 3, c.hidden = 32, c.ffn = 48, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8, c.vocab = 64;
    c.max_positions = 64;
    return c;
}

// mean over every window position with a next token of KL(teacher || m), or of m's loss minus the teacher's
static double damage_of(const Model* teacher, const Model* m, const int* tokens, int kl) {
    const ModelConfig* c = &teacher->cfg;
    int C = c->hidden, V = c->vocab;
    TrainActs a, b;
    train_acts_create(&a, c, WINDOWS, T, 0);
    train_acts_create(&b, c, WINDOWS, T, 0);
    Err e;
    cr_assert_eq(train_forward(teacher, &a, tokens, &e), 0);
    cr_assert_eq(train_forward(m, &b, tokens, &e), 0);
    double sum = 0;
    int count = 0;
    for (int r = 0; r < WINDOWS * T; r++) {
        if (r % T == T - 1) continue;
        double zt[64], zm[64], mt = -INFINITY, mm = -INFINITY, st = 0, sm = 0;
        for (int v = 0; v < V; v++) {
            zt[v] = zm[v] = 0;
            for (int k = 0; k < C; k++) {
                zt[v] += (double)a.xnf[(size_t)r * C + k] * teacher->w.lm_head[(size_t)v * C + k];
                zm[v] += (double)b.xnf[(size_t)r * C + k] * teacher->w.lm_head[(size_t)v * C + k];
            }
            mt = fmax(mt, zt[v]), mm = fmax(mm, zm[v]);
        }
        for (int v = 0; v < V; v++) st += exp(zt[v] - mt), sm += exp(zm[v] - mm);
        double lt = mt + log(st), lm = mm + log(sm);
        if (kl)
            for (int v = 0; v < V; v++) sum += exp(zt[v] - lt) * ((zt[v] - lt) - (zm[v] - lm));
        else
            sum += (lm - zm[tokens[r + 1]]) - (lt - zt[tokens[r + 1]]);
        count++;
    }
    train_acts_free(&a), train_acts_free(&b);
    return sum / count;
}

Test(block_library, every_variant_matches_a_model_built_another_way) {
    char dir[256], path[400];
    make_temp_dir(dir, sizeof dir);
    ModelConfig c = shape();
    Model t;
    model_create(&t, &c);
    model_init_random(&t, 5);
    snprintf(path, sizeof path, "%s/calib.shard", dir);
    write_test_shard(path, WINDOWS * T + 7, c.vocab, 9, NULL);
    Shard calib;
    Err e;
    cr_assert_eq(shard_open(&calib, path, &e), 0, "%s", e.msg);
    CalibOptions co = {WINDOWS, T, 3, AGG_L2, 0, 0, 0, {0}, 0};
    Importance imp;
    cr_assert_eq(importance_compute(&t, &calib, &co, &imp, &e), 0, "%s", e.msg);
    int tokens[WINDOWS * T];
    for (int i = 0; i < WINDOWS * T; i++) tokens[i] = shard_token(&calib, (uint64_t)i);
    for (int kl = 1; kl >= 0; kl--) {
        BlockLibraryOptions o = {3, {1.0, 0.5, 0.0}, 1, kl ? BLOCK_DAMAGE_KL : BLOCK_DAMAGE_LOSS, WINDOWS, T, 4};
        BlockVariant* v;
        int n;
        cr_assert_eq(block_library_score(&t, &calib, &imp, &o, &v, &n, &e), 0, "%s", e.msg);
        // per layer: the teacher's block, width 24 and 0 with attention, widths 48, 24, 0 without
        cr_assert_eq(n, c.n_layers * 6);
        for (int j = 0; j < n; j++) {
            const BlockVariant* x = &v[j];
            if (j % 6 == 0) {
                cr_expect(x->ffn == c.ffn && x->attention && x->damage == 0, "layer %d's own block first, damage 0", x->layer);
                continue;
            }
            // the same variant built another way: down_proj columns of the removed neurons zeroed (the
            // lowest by the mlp scores), o_proj zeroed for a removed attention
            Model m;
            model_create(&m, &c);
            memcpy(m.arena, t.arena, sizeof(float) * t.table.n_floats);
            LayerWeights* lw = &m.w.layers[x->layer];
            const double* s = imp.mlp + (size_t)x->layer * c.ffn;
            int removed = c.ffn - x->ffn;
            char* gone = calloc((size_t)c.ffn, 1);
            for (int r = 0; r < removed; r++) {  // the lowest remaining score each time (ties: the higher index)
                int worst = -1;
                for (int i = 0; i < c.ffn; i++)
                    if (!gone[i] && (worst < 0 || s[i] <= s[worst])) worst = i;
                gone[worst] = 1;
            }
            for (int i = 0; i < c.ffn; i++)
                if (gone[i])
                    for (int ch = 0; ch < c.hidden; ch++) lw->w_down[(size_t)ch * c.ffn + i] = 0;
            if (!x->attention) memset(lw->wo, 0, sizeof(float) * c.hidden * c.n_heads * c.head_dim);
            double want = damage_of(&t, &m, tokens, kl);
            cr_expect(fabs(x->damage - want) <= 1e-5 * fabs(want) + 1e-9, "%s layer %d ffn %d attention %d: library %.9g, built %.9g",
                      kl ? "KL" : "loss", x->layer, x->ffn, x->attention, x->damage, want);
            if (kl) cr_expect_geq(x->damage, -1e-12, "KL is not negative");
            free(gone);
            model_free(&m);
        }
        free(v);
    }
    importance_free(&imp);
    shard_close(&calib);
    model_free(&t);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    cr_expect_eq(system(path), 0);
}

Test(block_library, bad_options_are_refused) {
    ModelConfig c = shape();
    Model t;
    model_create(&t, &c);
    model_init_random(&t, 5);
    Importance imp = {0};
    imp.n_layers = c.n_layers, imp.ffn = c.ffn;
    Shard calib = {0};
    calib.n_tokens = 100;
    BlockVariant* v;
    int n;
    Err e;
    BlockLibraryOptions o = {1, {1.5}, 0, BLOCK_DAMAGE_KL, 4, T, 2};
    cr_expect_eq(block_library_score(&t, &calib, &imp, &o, &v, &n, &e), -1);
    cr_expect(strstr(e.msg, "outside [0, 1]"), "%s", e.msg);
    imp.ffn = 7;
    o.widths[0] = 0.5;
    cr_expect_eq(block_library_score(&t, &calib, &imp, &o, &v, &n, &e), -1);
    cr_expect(strstr(e.msg, "another shape"), "%s", e.msg);
    model_free(&t);
}

// arbor hetero end to end: the library and a plan per budget; tighter budgets never lose less (the
// optimum is monotone), each plan within its budget and written as a checkpoint of exactly its planned
// parameters; an impossible budget is a plan saying so; bad options one line and exit 2.
Test(block_library, the_command_writes_a_plan_per_budget) {
    char dir[256], path[600], args[2400];
    make_temp_dir(dir, sizeof dir);
    ModelConfig c = shape();
    Model t;
    model_create(&t, &c);
    model_init_random(&t, 6);
    Err e;
    snprintf(path, sizeof path, "%s/teacher", dir);
    cr_assert_eq(model_save(&t, path, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, &e), 0, "%s", e.msg);
    snprintf(path, sizeof path, "%s/calib.shard", dir);
    write_test_shard(path, 400, c.vocab, 3, NULL);
    snprintf(args, sizeof args, "hetero --model %s/teacher --calib %s --out %s/plan --ratio 0.9,0.6,0.3,0.001 --calib-windows 8 --seq-len 16 "
             "--batch 4 --checkpoints --dtype f32 2>/dev/null", dir, path, dir);
    cr_assert_eq(run_arbor(args, NULL), 0);
    snprintf(path, sizeof path, "%s/plan/hetero_plan.json", dir);
    cJSON* plan = read_json(path);
    const cJSON* plans = cJSON_GetObjectItem(plan, "plans");
    cr_assert_eq(cJSON_GetArraySize(plans), 4);
    double teacher = cJSON_GetObjectItem(plan, "teacher_params")->valuedouble, last = -1;
    cr_expect_eq(teacher, (double)config_param_count(&c));
    for (int k = 0; k < 3; k++) {
        const cJSON* p = cJSON_GetArrayItem(plans, k);
        double ratio = cJSON_GetObjectItem(p, "ratio")->valuedouble, damage = cJSON_GetObjectItem(p, "damage")->valuedouble;
        double params = cJSON_GetObjectItem(p, "params")->valuedouble;
        cr_expect_leq(params, ratio * teacher, "plan %d: %.0f parameters for a budget of %.0f", k, params, ratio * teacher);
        cr_expect_geq(damage, last, "a tighter budget loses at least as much: %g after %g", damage, last);
        cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(p, "layers")), c.n_layers);
        last = damage;
        // the plan's checkpoint: a heterogeneous model of exactly the planned parameters
        char mdir[400];
        snprintf(mdir, sizeof mdir, "%s/plan/plan-%d", dir, k + 1);
        cr_expect_str_eq(cJSON_GetObjectItem(p, "checkpoint")->valuestring, mdir);
        Model h;
        cr_assert_eq(model_load(&h, mdir, &e), 0, "%s", e.msg);
        cr_expect_eq((double)config_param_count(&h.cfg), params, "plan %d's checkpoint holds its planned parameters", k);
        model_free(&h);
    }
    cr_expect_not_null(cJSON_GetObjectItem(cJSON_GetArrayItem(plans, 3), "infeasible"), "0.1%% of the parameters fits nothing");
    cJSON_Delete(plan);
    snprintf(path, sizeof path, "%s/plan/block_library.json", dir);
    cJSON* lib = read_json(path);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(lib, "variants")), c.n_layers * 10,
                 "per layer: the teacher's block, 4 narrower FFNs with attention, 5 widths without");
    cJSON_Delete(lib);
    snprintf(path, sizeof path, "%s/plan/hetero_plan.csv", dir);
    char* csv = slurp(path);
    cr_expect(strstr(csv, "ratio,memory_mb,tps,status,damage") && strstr(csv, ",infeasible,"), "%s", csv);
    free(csv);
    // bad options
    snprintf(args, sizeof args, "hetero --model %s/teacher --calib %s/calib.shard --out %s/p2 --ratio 0.5 --widths 1,2", dir, dir, dir);
    cr_expect_eq(run_arbor(args, "/dev/null"), 2);
    snprintf(args, sizeof args, "hetero --model %s/teacher --calib %s/calib.shard --out %s/p2", dir, dir, dir);
    cr_expect_eq(run_arbor(args, "/dev/null"), 2, "no budget");
    model_free(&t);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    cr_expect_eq(system(path), 0);
}
