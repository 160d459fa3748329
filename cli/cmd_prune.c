// cmd_prune.c: arbor prune — calibrate (or read scores), choose layers and widths, cut, and write a
// smaller Hugging Face checkpoint with scores.json, scores.txt and arbor_lineage.json beside it.
#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../models/file_io.h"
#include "../mmlu/mmlu_eval.h"
#include "../mmlu/subjects.h"
#include "../prune/search.h"
#include "commands.h"

typedef struct {
    const Tokenizer* tok;
    const char* data;
    int shots, limit;
    const char* subjects;  // comma-separated, or NULL for all 57
} MmluScoreCtx;

// MMLU validation accuracy of a candidate (--score-with mmlu-val)
static double mmlu_val_score(const Model* m, void* ctx, Err* e) {
    const MmluScoreCtx* c = ctx;
    MmluOptions o = {c->shots, c->limit, 4, 0, "val", c->subjects, 0, MMLU_TRUNCATE_TOKENS};
    MmluResult r;
    if (mmlu_evaluate(m, c->tok, c->data, &o, &r, e)) return NAN;
    MmluSummary s;
    mmlu_summarize(&r, &s);
    mmlu_result_free(&r);
    return s.micro;
}

// The distillation each --finalists candidate gets: arbor distill's defaults (forward KL, AdamW,
// weight decay 0.1, clip 1) at this many steps, with a constant rate after a 10% warmup.
static TrainConfig finalist_train_config(int steps, int batch, int seq_len, float lr) {
    TrainConfig tc = {0};
    tc.steps = steps, tc.batch = batch, tc.grad_accum = 1, tc.seq_len = seq_len;
    tc.optim = (OptimConfig){lr, lr, steps / 10, steps, 0, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    tc.loss = (LossConfig){0.0f, 1.0f, KD_KL, 1.0f, 0, 0, 0.0f};
    tc.val_fraction = 0.05, tc.val_windows = 32, tc.seed = 0;
    tc.log_every = steps / 10 > 0 ? steps / 10 : 1;
    return tc;
}

int cmd_prune(int argc, char** argv) {
    Option opts[] = {
        {"model", "DIR", "checkpoint to prune", NULL},
        {"out", "DIR", "pruned checkpoint (with scores.json, scores.txt, arbor_lineage.json)", NULL},
        FORCE_OPTION,
        {"calib", "SHARD", "calibration token shard (computes the scores)", NULL},
        {"scores", "FILE", "scores.json from an earlier run of this model (instead of --calib)", NULL},
        {"strategy", "NAME", "depth: bi | block | last | ppl | ablation | ablation-block", NULL},
        {"layers", "N", "target layer count for --strategy", NULL},
        {"drop-layers", "LIST", "explicit 0-based layers to drop, e.g. 20,21,22", NULL},
        {"ffn", "F", "target intermediate_size", "0"},
        {"heads", "H", "target query heads", "0"},
        {"kv-heads", "K", "target KV groups", "0"},
        {"hidden", "D", "target hidden size", "0"},
        {"calib-windows", "N", "calibration sequences", "64"},
        {"seq-len", "L", "calibration sequence length", "256"},
        {"batch", "B", "calibration sequences per forward", "4"},
        {"aggregation", "l2|mean|variance", "how per-sequence width scores combine", "l2"},
        {"bi-after-norm", NULL, "Block Influence of the last layer after the final norm (transformers' hidden_states)", NULL},
        {"ablation-windows", "N", "layer-ablation NMSE on the first N calibration sequences (0: off)", "0"},
        {"ablation-blocks", "LIST", "block sizes ablated besides single layers, e.g. 4,8", NULL},
        {"device", "cpu|cuda", "where the calibration forward (and a measured --tps) runs (cuda: bf16 activations)", "cpu"},
        {"dtype", "bf16|f32", "storage dtype of the pruned checkpoint", "bf16"},
        {"val", "SHARD", "validation tokens for ppl and --search (default: --calib)", NULL},
        {"val-tokens", "N", "validation tokens used", "4096"},
        {"search", NULL, "search shapes under --params or --ratio, ranked by validation loss", NULL},
        {"params", "P", "parameter budget for --search (e.g. 6e9)", NULL},
        {"ratio", "R", "parameter budget as a share of the model's", NULL},
        {"memory-mb", "M", "--search budget: weights + KV cache, in MB (1e6 bytes)", NULL},
        {"kv-batch", "B", "sequences of KV cache --memory-mb and --tps count (default 1)", NULL},
        {"kv-context", "L", "tokens per sequence of KV cache --memory-mb and --tps count (default 4096)", NULL},
        {"precision", "bf16|fp32", "bytes per weight and cache value --memory-mb and --tps count; a measured --tps holds the "
                                   "matrices so (default bf16)", NULL},
        {"tps", "T", "--search budget: decode tokens/s at --kv-batch x --kv-context, at least T", NULL},
        {"tps-device", "h100|h200|a100", "--tps predicted by the throughput model for this GPU (default: measured here, on --device, "
                                         "random weights)", NULL},
        {"finalists", "K", "--search: distil the best K candidates, then rank them again (0: off)", "0"},
        {"finalist-steps", "S", "distillation steps per finalist (default 100)", NULL},
        {"finalist-batch", "B", "distillation sequences per step (default 4)", NULL},
        {"finalist-lr", "LR", "distillation learning rate, constant after 10% warmup (default 1e-4)", NULL},
        {"data", "SHARD", "distillation tokens for --finalists (default: --calib)", NULL},
        {"val-overlap", NULL, "rank --finalists by validation loss on the tokens they were distilled on anyway (refused without it)",
         NULL},
        {"layer-step", "N", "search grid step in layers", "2"},
        {"hidden-step", "N", "search grid step in hidden size", "256"},
        {"ffn-step", "N", "search grid step in intermediate size", "512"},
        {"max-depth-cut", "R", "search: at most this share of layers removed", "0.2"},
        {"max-width-cut", "R", "search: at most this share of any width removed", "0.4"},
        {"score-with", "mmlu-val", "rank --strategy block candidates, or --finalists, by MMLU validation accuracy", NULL},
        {"mmlu", "DIR", "MMLU CSVs for --score-with mmlu-val", NULL},
        {"tokenizer", "DIR", "tokenizer for --score-with (default: the model directory)", NULL},
        {"mmlu-limit", "N", "validation questions per subject for --score-with (0: all)", "0"},
        {"mmlu-shots", "K", "shots for --score-with", "5"},
        {"mmlu-subjects", "a,b", "subjects for --score-with (default: all 57)", NULL},
    };
    Command cmd = {"prune", "Prune depth and width by importance, writing a smaller HF checkpoint.", opts,
                   sizeof opts / sizeof opts[0]};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    const char *dir, *out, *strategy = arg_str(&cmd, "strategy"), *agg = arg_str(&cmd, "aggregation");
    long ffn, heads, kv, hidden, windows, seq_len, batch, abl_windows;
    if (arg_required(&cmd, "model", &dir, &e) || arg_required(&cmd, "out", &out, &e) ||
        arg_long(&cmd, "ffn", 0, 1 << 24, &ffn, &e) || arg_long(&cmd, "heads", 0, 1 << 16, &heads, &e) ||
        arg_long(&cmd, "kv-heads", 0, 1 << 16, &kv, &e) || arg_long(&cmd, "hidden", 0, 1 << 24, &hidden, &e) ||
        arg_long(&cmd, "calib-windows", 1, 1 << 24, &windows, &e) || arg_long(&cmd, "seq-len", 1, 1 << 20, &seq_len, &e) ||
        arg_long(&cmd, "batch", 1, 1 << 12, &batch, &e) || arg_long(&cmd, "ablation-windows", 0, 1 << 24, &abl_windows, &e))
        return fail(&e);
    CalibOptions co = {(int)windows, (int)seq_len, (int)batch, AGG_L2, 0, arg_flag(&cmd, "bi-after-norm"), (int)abl_windows, {0}, 0};
    if (arg_str(&cmd, "ablation-blocks")) {
        int* sizes;
        if (parse_token_list(arg_str(&cmd, "ablation-blocks"), &sizes, &co.n_ablation_sizes, &e)) {
            err_prefix(&e, "--ablation-blocks");
            return fail(&e);
        }
        for (int i = 0; i < co.n_ablation_sizes && i < ABLATION_MAX_SIZES - 1; i++) co.ablation_sizes[i] = sizes[i];
        free(sizes);
        if (co.n_ablation_sizes >= ABLATION_MAX_SIZES || !abl_windows) {
            err_set(&e, "prune: --ablation-blocks takes at most %d sizes, with --ablation-windows", ABLATION_MAX_SIZES - 1);
            return fail(&e);
        }
    }
    if (check_output_dir(&cmd, out, dir, &e)) return fail(&e);
    PruneTarget t = {DEPTH_NONE, 0, NULL, 0, (int)ffn, (int)heads, (int)kv, (int)hidden};
    int drop[1024], n_drop = 0;
    if (arg_str(&cmd, "drop-layers")) {
        int* ids;
        if (strategy) {
            err_set(&e, "prune: give --strategy or --drop-layers, not both");
            return fail(&e);
        }
        if (parse_token_list(arg_str(&cmd, "drop-layers"), &ids, &n_drop, &e)) {
            err_prefix(&e, "--drop-layers");
            return fail(&e);
        }
        for (int i = 0; i < n_drop && i < 1024; i++) drop[i] = ids[i];
        free(ids);
        t.depth = DEPTH_LIST, t.drop = drop, t.n_drop = n_drop < 1024 ? n_drop : 1024;
    } else if (strategy) {
        long layers;
        if (depth_strategy_parse(strategy, &t.depth)) {
            err_set(&e, "prune: --strategy must be bi, block, last, ppl, ablation or ablation-block, not '%s'", strategy);
            return fail(&e);
        }
        if (arg_long(&cmd, "layers", 1, 1 << 16, &layers, &e)) return fail(&e);
        t.layers = (int)layers;
    }
    Device device;
    if (arg_device(&cmd, &device, &e)) return fail(&e);
    Aggregation aggregation;
    if (aggregation_parse(agg, &aggregation)) {
        err_set(&e, "prune: --aggregation must be l2, mean or variance");
        return fail(&e);
    }
    // every argument of --search, ppl and --score-with is checked here, before loading and calibrating
    int ppl = t.depth == DEPTH_PPL, search = arg_flag(&cmd, "search");
    double budget = 0, ratio = 0, depth_cut = 0, width_cut = 0, memory_mb = 0, finalist_lr = 0, min_tps = 0;
    const char* tps_device = arg_str(&cmd, "tps-device");
    DeviceSpec tps_spec;
    long ls = 0, hs = 0, fs = 0, vt = 0, ppl_layers = 0, sw_layers = 0, sw_limit = 0, sw_shots = 0;
    long kv_batch = 0, kv_context = 0, finalists = 0, finalist_steps = 0, finalist_batch = 0;
    const char* precision = arg_str(&cmd, "precision") ? arg_str(&cmd, "precision") : "bf16";
    const char* fdata = arg_str(&cmd, "data") ? arg_str(&cmd, "data") : arg_str(&cmd, "calib");
    const char* vpath = arg_str(&cmd, "val") ? arg_str(&cmd, "val") : arg_str(&cmd, "calib");
    const char* score_with = arg_str(&cmd, "score-with");
    const char* mmlu = NULL;
    int bad = 0;
    if (search) {
        if (arg_str(&cmd, "params")) bad = arg_double(&cmd, "params", 1, 1e15, &budget, &e);
        else if (arg_str(&cmd, "ratio")) bad = arg_double(&cmd, "ratio", 1e-6, 1, &ratio, &e);
        if (!bad && arg_str(&cmd, "memory-mb")) bad = arg_double(&cmd, "memory-mb", 1e-6, 1e12, &memory_mb, &e);
        if (!bad && arg_str(&cmd, "tps")) bad = arg_double(&cmd, "tps", 1e-9, 1e15, &min_tps, &e);
        static const char* const kv_only[] = {"kv-batch", "kv-context", "precision"};
        if (!bad && !memory_mb && !min_tps) bad = arg_refuse(&cmd, kv_only, 3, "without --memory-mb or --tps", &e);
        if (!bad && (memory_mb > 0 || min_tps > 0))
            bad = arg_long_default(&cmd, "kv-batch", 1, 1 << 20, 1, &kv_batch, &e) ||
                  arg_long_default(&cmd, "kv-context", 1, 1 << 30, 4096, &kv_context, &e);
        if (!bad && tps_device && device_spec(tps_device, &tps_spec))
            bad = err_set(&e, "prune: --tps-device must be h100, h200 or a100, not '%s'", tps_device);
        if (!bad && tps_device && !min_tps) bad = err_set(&e, "prune: --tps-device without --tps");
        if (!bad && strcmp(precision, "bf16") && strcmp(precision, "fp32"))
            bad = err_set(&e, "prune: --precision must be bf16 or fp32, not '%s'", precision);
        if (!bad && !budget && !ratio && !memory_mb && !min_tps)
            bad = err_set(&e, "prune: --search needs --params, --ratio, --memory-mb or --tps");
        static const char* const finalist_only[] = {"finalist-steps", "finalist-batch", "finalist-lr", "data", "val-overlap"};
        if (!bad) bad = arg_long(&cmd, "finalists", 0, 1 << 16, &finalists, &e);
        if (!bad && !finalists) bad = arg_refuse(&cmd, finalist_only, 5, "without --finalists", &e);
        finalist_lr = 1e-4;
        if (!bad)
            bad = arg_long_default(&cmd, "finalist-steps", 1, 1L << 30, 100, &finalist_steps, &e) ||
                  arg_long_default(&cmd, "finalist-batch", 1, 1 << 16, 4, &finalist_batch, &e) ||
                  (arg_str(&cmd, "finalist-lr") && arg_double(&cmd, "finalist-lr", 0, 10, &finalist_lr, &e));
        if (!bad && finalists && !fdata) bad = err_set(&e, "prune: --finalists needs distillation tokens (--data or --calib)");
        if (!bad && finalists && access(fdata, R_OK) != 0) bad = err_set(&e, "prune: %s: cannot read the distillation shard", fdata);
        // finalists ranked by validation loss on the very tokens they were distilled on would rank memorisation
        char vreal[PATH_MAX], dreal[PATH_MAX];
        int same = !bad && finalists && !score_with && vpath && realpath(vpath, vreal) && realpath(fdata, dreal) && !strcmp(vreal, dreal);
        if (same && !arg_flag(&cmd, "val-overlap"))
            bad = err_set(&e, "prune: --finalists would be ranked on the tokens they are distilled on (--val and --data are both %s; "
                          "each defaults to --calib): give a held-out --val, or --val-overlap to accept it", vpath);
        if (same && arg_flag(&cmd, "val-overlap"))
            fprintf(stderr, "prune: warning: the finalists are ranked by validation loss on the tokens they were distilled on (%s)\n",
                    vpath);
        if (!bad && !arg_str(&cmd, "scores") && !arg_str(&cmd, "calib"))
            bad = err_set(&e, "prune: --search needs importance scores (--calib or --scores)");
        if (!bad)
            bad = arg_long(&cmd, "layer-step", 1, 1 << 16, &ls, &e) || arg_long(&cmd, "hidden-step", 1, 1 << 20, &hs, &e) ||
                  arg_long(&cmd, "ffn-step", 1, 1 << 20, &fs, &e) || arg_double(&cmd, "max-depth-cut", 0, 0.99, &depth_cut, &e) ||
                  arg_double(&cmd, "max-width-cut", 0, 0.99, &width_cut, &e);
    }
    // an option of a mode not chosen is refused, never ignored
    static const char* const search_only[] = {"params", "ratio", "memory-mb", "tps", "tps-device", "data", "kv-batch", "kv-context",
                                              "precision", "finalist-steps", "finalist-batch", "finalist-lr", "val-overlap"};
    static const char* const score_only[] = {"mmlu", "mmlu-subjects", "tokenizer"};
    static const char* const strategy_only[] = {"layers"};
    if (!bad && !search) bad = arg_refuse(&cmd, search_only, 13, "without --search", &e);
    if (!bad && !score_with) bad = arg_refuse(&cmd, score_only, 3, "without --score-with", &e);
    if (!bad && !strategy) bad = arg_refuse(&cmd, strategy_only, 1, "without --strategy", &e);
    if (!bad && (ppl || search)) {
        if (!vpath) bad = err_set(&e, "prune: %s needs validation tokens (--val or --calib)", ppl ? "--strategy ppl" : "--search");
        else if (access(vpath, R_OK) != 0) bad = err_set(&e, "prune: %s: cannot read the validation shard", vpath);
        else bad = arg_long(&cmd, "val-tokens", 2, 1L << 40, &vt, &e);
    }
    if (!bad && ppl) bad = arg_long(&cmd, "layers", 1, 1 << 16, &ppl_layers, &e);
    if (!bad && score_with) {
        int block = strategy && !strcmp(strategy, "block");
        if (strcmp(score_with, "mmlu-val") || !(block || (search && finalists > 0)))
            bad = err_set(&e, "prune: --score-with takes mmlu-val, with --strategy block or --search --finalists");
        else
            bad = (block && arg_long(&cmd, "layers", 1, 1 << 16, &sw_layers, &e)) || arg_required(&cmd, "mmlu", &mmlu, &e) ||
                  arg_long(&cmd, "mmlu-limit", 0, 1 << 20, &sw_limit, &e) || arg_long(&cmd, "mmlu-shots", 0, 5, &sw_shots, &e);
        int chosen[MMLU_N_SUBJECTS], n_chosen;
        if (!bad && arg_str(&cmd, "mmlu-subjects") && mmlu_subject_list(arg_str(&cmd, "mmlu-subjects"), chosen, &n_chosen, &e))
            bad = err_prefix(&e, "prune: --mmlu-subjects");
        if (!bad && access(mmlu, R_OK) != 0) bad = err_set(&e, "prune: --mmlu %s: no such folder", mmlu);
    }
    if (bad) return fail(&e);
    Model m;
    if (model_load(&m, dir, &e)) return fail(&e);
    if (search && ratio > 0) budget = ratio * (double)config_param_count(&m.cfg);
    Importance imp;
    int have_imp = 0, rc = 0;
    if (arg_str(&cmd, "scores")) {
        rc = importance_load(&imp, &m.cfg, arg_str(&cmd, "scores"), &e);
        have_imp = !rc;
    } else if (arg_str(&cmd, "calib")) {
        Shard calib;
        rc = shard_open(&calib, arg_str(&cmd, "calib"), &e);
        if (!rc) {
            co.agg = aggregation, co.gpu = device == DEVICE_CUDA;
            calib_for_target(&co, m.cfg.n_layers, &t);  // the block this prune needs
            rc = importance_compute(&m, &calib, &co, &imp, &e);
            have_imp = !rc;
            shard_close(&calib);
        }
    }
    int* keep = xmalloc(sizeof(int) * (size_t)m.cfg.n_layers);
    int n_keep = 0;
    Model pruned = {0};
    int* val = NULL;
    int64_t n_val = 0;
    if (!rc && (ppl || search)) {  // validation tokens
        Shard vs;
        if (!(rc = shard_open(&vs, vpath, &e))) {
            val = shard_read_tokens(&vs, (uint64_t)vt, &n_val);
            shard_close(&vs);
        }
    }
    Tokenizer tok;
    int have_tok = 0;
    if (!rc && score_with) {
        rc = tokenizer_load(&tok, arg_str(&cmd, "tokenizer") ? arg_str(&cmd, "tokenizer") : dir, &e);
        have_tok = !rc;
    }
    MmluScoreCtx score_ctx = {have_tok ? &tok : NULL, mmlu, (int)sw_shots, (int)sw_limit, arg_str(&cmd, "mmlu-subjects")};
    if (!rc && search) {
        SearchCandidate* cands = NULL;
        int n_cands = 0;
        rc = make_dirs(out, &e);
        Shard fshard;
        int have_fshard = !rc && finalists > 0 && !(rc = shard_open(&fshard, fdata, &e));
        if (!rc) {
            SearchOptions so = {budget, memory_mb, (int)kv_batch, (int)kv_context, !strcmp(precision, "fp32") ? 4 : 2,
                                (int)ls, (int)hs, (int)fs, depth_cut, width_cut, min_tps, tps_device ? &tps_spec : NULL, device};
            TrainConfig tc = finalist_train_config((int)finalist_steps, (int)finalist_batch, (int)seq_len, (float)finalist_lr);
            FinalistOptions fo = {(int)finalists, &tc, have_fshard ? &fshard : NULL, out, score_with ? mmlu_val_score : NULL,
                                  &score_ctx};
            char csv[4200];
            snprintf(csv, sizeof csv, "%s/search.csv", out);
            rc = prune_search(&m, &imp, val, n_val, (int)seq_len, &so, finalists > 0 ? &fo : NULL, csv, &cands, &n_cands, &e);
        }
        if (have_fshard) shard_close(&fshard);
        if (!rc) {  // the best shape becomes the output
            t = (PruneTarget){DEPTH_BI, cands[0].layers, NULL, 0, cands[0].ffn, cands[0].heads, 0, cands[0].hidden};
            strategy = "search";
        }
        free(cands);
    }
    if (!rc && score_with && !search) {  // block candidates ranked by MMLU validation accuracy
        if (!(rc = make_dirs(out, &e))) {
            char csv[4200];
            snprintf(csv, sizeof csv, "%s/block_candidates.csv", out);
            rc = prune_block_by_score(&m, have_imp ? &imp : NULL, (int)sw_layers, mmlu_val_score, &score_ctx, csv, keep, &n_keep, &e);
        }
    } else if (!rc && ppl) {
        rc = prune_depth_ppl(&m, val, n_val, (int)seq_len, (int)ppl_layers, keep, &n_keep, &e);
    } else if (!rc) {
        rc = prune_pick_layers(&m.cfg, have_imp ? &imp : NULL, &t, keep, &n_keep, &e);
    }
    free(val);
    if (!rc) rc = prune_model(&m, have_imp ? &imp : NULL, &t, keep, n_keep, &pruned, &e);
    if (!rc) {
        StDtype dt = strcmp(arg_str(&cmd, "dtype"), "f32") == 0 ? ST_F32 : ST_BF16;
        rc = prune_write(&pruned, have_imp ? &imp : NULL, &m.cfg, dir,
                         strategy ? strategy : t.depth == DEPTH_LIST ? "drop-layers" : "none", keep, n_keep, out, dt, &e);
        if (!rc) {
            fprintf(stderr, "prune: %s -> %s: %d layers (kept", dir, out, n_keep);
            for (int i = 0; i < n_keep; i++) fprintf(stderr, " %d", keep[i]);
            fprintf(stderr, "), hidden %d, ffn %d, heads %d, kv %d; %.2f M -> %.2f M parameters\n", pruned.cfg.hidden,
                    pruned.cfg.ffn, pruned.cfg.n_heads, pruned.cfg.n_kv_heads, config_param_count(&m.cfg) * 1e-6,
                    config_param_count(&pruned.cfg) * 1e-6);
        }
    }
    if (have_tok) tokenizer_free(&tok);
    if (pruned.arena) model_free(&pruned);
    if (have_imp) importance_free(&imp);
    free(keep);
    model_free(&m);
    return rc ? fail(&e) : 0;
}
