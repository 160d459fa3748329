// cmd_hetero.c: arbor hetero — heterogeneous pruning's plan: the block library of a teacher scored on
// calibration windows (prune/block_library.h), then, for each budget, the per-layer architecture that
// loses least (prune/hetero_search.h, exact through GLPK). Writes block_library.json (every variant:
// damage, parameters, memory, decode seconds) and hetero_plan.json / hetero_plan.csv (per budget: each
// layer's FFN width and attention, summed damage and costs); with --checkpoints each feasible plan's
// model (prune/hetero_surgery.h) as OUT/plan-K, a checkpoint whose config.json lists its layers.
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/file_io.h"
#include "../prune/block_library.h"
#include "../prune/hetero_search.h"
#include "../prune/hetero_surgery.h"
#include "commands.h"

static cJSON* variant_json(const BlockVariant* v) {
    cJSON* o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "layer", v->layer);
    cJSON_AddNumberToObject(o, "ffn", v->ffn);
    cJSON_AddBoolToObject(o, "attention", v->attention);
    cJSON_AddNumberToObject(o, "damage", v->damage);
    cJSON_AddNumberToObject(o, "params", v->params);
    cJSON_AddNumberToObject(o, "memory_bytes", v->memory);
    cJSON_AddNumberToObject(o, "decode_seconds", v->seconds);
    return o;
}

int cmd_hetero(int argc, char** argv) {
    Option opts[] = {
        {"model", "DIR", "the teacher", NULL},
        {"calib", "SHARD", "calibration tokens (the block library's damage, and the FFN neurons' ranking)", NULL},
        {"out", "DIR", "block_library.json, hetero_plan.json, hetero_plan.csv", NULL},
        FORCE_OPTION,
        {"widths", "LIST", "FFN widths as shares of the teacher's (0: the FFN removed)", BLOCK_DEFAULT_WIDTHS},
        {"keep-attention", NULL, "no variants with the attention removed", NULL},
        {"metric", "kl|loss", "damage: KL(teacher || variant) of the next-token distribution, or the next-token loss increase", "kl"},
        {"calib-windows", "N", "calibration sequences", "64"},
        {"seq-len", "L", "calibration sequence length", "256"},
        {"batch", "B", "calibration sequences per forward", "4"},
        {"ratio", "LIST", "parameter budgets as shares of the teacher's, one plan each (e.g. 0.8,0.6,0.5)", NULL},
        {"memory-mb", "M", "budget: bf16 weights + KV cache at --kv-batch x --kv-context, MB (1e6 bytes)", NULL},
        {"tps", "T", "budget: decode tokens/s at --kv-batch x --kv-context on --gpu, at least T (the roofline's floors)", NULL},
        {"gpu", "h100|h200|a100", "the device the time budget is predicted for", "h100"},
        {"kv-batch", "B", "sequences the memory and time budgets count", "1"},
        {"kv-context", "L", "tokens per sequence the memory and time budgets count", "4096"},
        {"checkpoints", NULL, "also write each feasible plan's model as OUT/plan-K (a heterogeneous checkpoint)", NULL},
        {"dtype", "bf16|f32", "storage dtype of those checkpoints", "bf16"},
    };
    Command cmd = {"hetero", "Plan a heterogeneous pruning: score every layer's block variants, search the best per-layer "
                             "architecture under each budget (exact, GLPK).",
                   opts, sizeof opts / sizeof opts[0]};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    const char *dir, *calib_path, *out;
    long windows, seq_len, batch, kv_batch, kv_context;
    double memory_mb = 0, tps = 0;
    if (arg_required(&cmd, "model", &dir, &e) || arg_required(&cmd, "calib", &calib_path, &e) || arg_required(&cmd, "out", &out, &e) ||
        arg_long(&cmd, "calib-windows", 1, 1 << 24, &windows, &e) || arg_long(&cmd, "seq-len", 2, 1 << 20, &seq_len, &e) ||
        arg_long(&cmd, "batch", 1, 1 << 12, &batch, &e) || arg_long(&cmd, "kv-batch", 1, 1 << 20, &kv_batch, &e) ||
        arg_long(&cmd, "kv-context", 1, 1 << 30, &kv_context, &e) ||
        (arg_str(&cmd, "memory-mb") && arg_double(&cmd, "memory-mb", 1e-6, 1e12, &memory_mb, &e)) ||
        (arg_str(&cmd, "tps") && arg_double(&cmd, "tps", 1e-9, 1e15, &tps, &e)))
        return fail(&e);
    BlockLibraryOptions o = {0};
    o.attention_variants = !arg_flag(&cmd, "keep-attention");
    o.windows = (int)windows, o.seq_len = (int)seq_len, o.batch = (int)batch;
    const char* metric = arg_str(&cmd, "metric");
    if (strcmp(metric, "kl") && strcmp(metric, "loss")) {
        err_set(&e, "hetero: --metric must be kl or loss, not '%s'", metric);
        return fail(&e);
    }
    o.metric = !strcmp(metric, "kl") ? BLOCK_DAMAGE_KL : BLOCK_DAMAGE_LOSS;
    // --widths and --ratio: comma lists of shares
    double ratios[32];
    int n_ratios = 0;
    if (share_list_parse(arg_str(&cmd, "widths"), 1, 1, o.widths, BLOCK_MAX_WIDTHS, &o.n_widths)) {
        err_set(&e, "hetero: --widths '%s': at most %d numbers in [0, 1], comma-separated", arg_str(&cmd, "widths"), BLOCK_MAX_WIDTHS);
        return fail(&e);
    }
    if (arg_str(&cmd, "ratio") && share_list_parse(arg_str(&cmd, "ratio"), 0, 1, ratios, 32, &n_ratios)) {
        err_set(&e, "hetero: --ratio '%s': at most 32 numbers in (0, 1], comma-separated", arg_str(&cmd, "ratio"));
        return fail(&e);
    }
    if (!n_ratios && !memory_mb && !tps) {
        err_set(&e, "hetero: give a budget: --ratio, --memory-mb or --tps");
        return fail(&e);
    }
    HeteroRegime regime = {(int)kv_batch, (int)kv_context, {0}};
    if (device_spec(arg_str(&cmd, "gpu"), &regime.device)) {
        err_set(&e, "hetero: --gpu must be h100, h200 or a100, not '%s'", arg_str(&cmd, "gpu"));
        return fail(&e);
    }
    if (check_output_dir(&cmd, out, dir, &e)) return fail(&e);
    Model m;
    if (model_load(&m, dir, &e)) return fail(&e);
    Shard calib;
    if (shard_open(&calib, calib_path, &e)) {
        model_free(&m);
        return fail(&e);
    }
    CalibOptions co = {(int)windows, (int)seq_len, (int)batch, AGG_L2, 0, 0, 0, {0}, 0};
    Importance imp;
    BlockVariant* v = NULL;
    int n = 0, rc = importance_compute(&m, &calib, &co, &imp, &e);
    int have_imp = !rc;
    if (!rc) rc = block_library_score(&m, &calib, &imp, &o, &v, &n, &e);
    shard_close(&calib);
    int checkpoints = arg_flag(&cmd, "checkpoints");
    StDtype dtype = strcmp(arg_str(&cmd, "dtype"), "f32") == 0 ? ST_F32 : ST_BF16;
    const ModelConfig* c = &m.cfg;
    HeteroFixed fixed;
    hetero_fixed_costs(c, &regime, &fixed);
    block_library_costs(c, &regime, v, n);
    cJSON* lib = cJSON_CreateObject();
    cJSON* plan = cJSON_CreateObject();
    char* csv = NULL;
    size_t csv_len = 0;
    if (!rc) {
        cJSON_AddStringToObject(lib, "model", dir);
        cJSON_AddStringToObject(lib, "metric", metric);
        cJSON_AddNumberToObject(lib, "windows", (double)windows);
        cJSON_AddNumberToObject(lib, "seq_len", (double)seq_len);
        cJSON* regime_json = cJSON_AddObjectToObject(lib, "regime");
        cJSON_AddStringToObject(regime_json, "gpu", regime.device.name);
        cJSON_AddNumberToObject(regime_json, "kv_batch", regime.batch);
        cJSON_AddNumberToObject(regime_json, "kv_context", regime.context);
        cJSON* vs = cJSON_AddArrayToObject(lib, "variants");
        for (int j = 0; j < n; j++) cJSON_AddItemToArray(vs, variant_json(&v[j]));
        cJSON_AddStringToObject(plan, "model", dir);
        cJSON_AddNumberToObject(plan, "teacher_params", (double)config_param_count(c));
        cJSON* plans = cJSON_AddArrayToObject(plan, "plans");
        size_t cap = 4096;
        csv = xmalloc(cap);
        csv_len = (size_t)snprintf(csv, cap, "ratio,memory_mb,tps,status,damage,params,memory_mb_used,decode_tps,ffn,attention\n");
        int runs = n_ratios ? n_ratios : 1;
        int* choice = xmalloc(sizeof(int) * (size_t)c->n_layers);
        int* widths = xmalloc(sizeof(int) * (size_t)c->n_layers);
        unsigned char* attn = xmalloc((size_t)c->n_layers);
        for (int k = 0; k < runs && !rc; k++) {
            HeteroBudget b = {n_ratios ? ratios[k] * (double)config_param_count(c) : 0, memory_mb * 1e6,
                              tps > 0 ? regime.batch / tps : 0};
            double damage = 0;
            Err se;
            int st = hetero_search(v, n, c->n_layers, &fixed, &b, choice, &damage, &se);
            if (st < 0) {
                rc = -1, e = se;
                break;
            }
            cJSON* p = cJSON_CreateObject();
            cJSON_AddItemToArray(plans, p);
            if (n_ratios) cJSON_AddNumberToObject(p, "ratio", ratios[k]);
            if (memory_mb) cJSON_AddNumberToObject(p, "memory_mb", memory_mb);
            if (tps) cJSON_AddNumberToObject(p, "tps", tps);
            char ffn_list[4096] = "", attn_list[4096] = "";
            double params = fixed.params, mem = fixed.memory, sec = fixed.seconds;
            if (st == 1) {
                cJSON_AddStringToObject(p, "infeasible", se.msg);
                fprintf(stderr, "hetero: budget %d: %s\n", k + 1, se.msg);
            } else {
                cJSON* layers = cJSON_AddArrayToObject(p, "layers");
                for (int l = 0; l < c->n_layers; l++) {
                    const BlockVariant* x = &v[choice[l]];
                    cJSON_AddItemToArray(layers, variant_json(x));
                    params += x->params, mem += x->memory, sec += x->seconds;
                }
                hetero_choice_layers(v, choice, c->n_layers, widths, attn, ffn_list, attn_list, sizeof ffn_list);
                cJSON_AddNumberToObject(p, "damage", damage);
                cJSON_AddNumberToObject(p, "params", params);
                cJSON_AddNumberToObject(p, "memory_bytes", mem);
                cJSON_AddNumberToObject(p, "decode_tokens_per_s", regime.batch / sec);
                fprintf(stderr, "hetero: budget %d: damage %.6g, %.4g M parameters (%.1f%%), FFN widths %s, attention %s\n", k + 1, damage,
                        params * 1e-6, 100 * params / (double)config_param_count(c), ffn_list, attn_list);
                if (checkpoints) {  // the plan made a model
                    Model h = {0};
                    char mdir[4200];
                    snprintf(mdir, sizeof mdir, "%s/plan-%d", out, k + 1);
                    rc = prune_hetero(&m, &imp, widths, attn, &h, &e) || make_dirs(out, &e) ||
                         model_save(&h, mdir, dtype, ARBOR_DEFAULT_SHARD_BYTES, &e);
                    if (h.arena) model_free(&h);
                    if (!rc) cJSON_AddStringToObject(p, "checkpoint", mdir);
                }
            }
            if (cap - csv_len < 2 * sizeof ffn_list + 256) csv = realloc(csv, cap = 2 * cap + 2 * sizeof ffn_list);
            if (!csv) FATAL("out of memory");
            csv_len += (size_t)snprintf(csv + csv_len, cap - csv_len, "%.9g,%.9g,%.9g,%s,%.9g,%.0f,%.6g,%.6g,%s,%s\n",
                                        n_ratios ? ratios[k] : 0, memory_mb, tps, st ? "infeasible" : "ok", st ? 0 : damage,
                                        st ? 0 : params, st ? 0 : mem / 1e6, st ? 0 : regime.batch / sec, ffn_list, attn_list);
        }
        free(choice), free(widths), free(attn);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/hetero_plan.csv", out);
    if (!rc) rc = make_dirs(out, &e);
    if (!rc) rc = json_write_atomic(out, "block_library.json", lib, &e);  // (takes the tree)
    else cJSON_Delete(lib);
    if (!rc) rc = json_write_atomic(out, "hetero_plan.json", plan, &e) || file_write_atomic(path, csv, csv_len, &e);
    else cJSON_Delete(plan);
    free(csv);
    free(v);
    if (have_imp) importance_free(&imp);
    model_free(&m);
    return rc ? fail(&e) : 0;
}
