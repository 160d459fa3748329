// sweep_config.c: see sweep_config.h.
#include "../kernels/hash.h"
#include "../mmlu/subjects.h"
#include "../models/config.h"
#include "../models/token_shard.h"
#include "../prune/surgery.h"
#include "../prune/block_library.h"
#include "sweep_config.h"
#include "sweep_plan.h"

#include <ctype.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { T_STR, T_INT, T_DBL, T_BOOL, T_INTS, T_STRS } KeyType;

typedef struct {
    const char* section;
    const char* key;
    KeyType type;
    size_t offset, size;  // field, and for lists its count field
    size_t count_offset;
} KeyDef;

#define STR(sec, k, f) {sec, k, T_STR, offsetof(SweepConfig, f), sizeof(((SweepConfig*)0)->f), 0}
#define INT(sec, k, f) {sec, k, T_INT, offsetof(SweepConfig, f), 0, 0}
#define DBL(sec, k, f) {sec, k, T_DBL, offsetof(SweepConfig, f), 0, 0}
#define INTS(sec, k, f, n) {sec, k, T_INTS, offsetof(SweepConfig, f), 0, offsetof(SweepConfig, n)}

static const KeyDef keys[] = {
    STR("sweep", "name", name),          STR("sweep", "out", out),          STR("sweep", "device", device_text),
    INT("sweep", "max_cells", max_cells),
    STR("teacher", "model", teacher),    STR("teacher", "tokenizer", tokenizer),
    INT("teacher", "correct_steps", correct_steps), DBL("teacher", "correct_lr", correct_lr),
    STR("data", "calib", calib),         STR("data", "distill", distill_data),      STR("data", "val", val),
    INT("prune", "calib_windows", calib_windows), INT("prune", "seq_len", prune_seq_len),
    STR("prune", "aggregation", aggregation), INT("prune", "ablation_windows", ablation_windows),
    {"prune", "bi_after_norm", T_BOOL, offsetof(SweepConfig, bi_after_norm), 0, 0},
    INT("distill", "steps", steps),      INT("distill", "round_steps", round_steps),
    DBL("distill", "tokens", tokens),    INT("distill", "seq_len", seq_len),
    INT("distill", "batch", batch),      INT("distill", "grad_accum", grad_accum),  DBL("distill", "lr", lr),
    DBL("distill", "min_lr", min_lr),    INT("distill", "warmup", warmup),          STR("distill", "schedule", schedule),
    STR("distill", "loss", loss),        STR("distill", "kd_scale", kd_scale),        DBL("distill", "kd_temp", kd_temp),        {"distill", "t2", T_BOOL, offsetof(SweepConfig, t2), 0, 0},
    DBL("distill", "weight_decay", weight_decay), DBL("distill", "clip", clip),     INT("distill", "seed", seed),
    INT("distill", "nodes", nodes),      INT("distill", "ranks_per_node", ranks_per_node), INT("distill", "gpus_per_node", gpus_per_node),
    DBL("distill", "bucket_mb", bucket_mb), {"distill", "zero1", T_BOOL, offsetof(SweepConfig, zero1), 0, 0},
    STR("distill", "grad_reduce", grad_reduce),
    STR("eval", "mmlu", mmlu),           INT("eval", "shots", shots),               STR("eval", "subjects", subjects),
    INT("eval", "limit", limit),         STR("eval", "truncate", truncate_text),    INT("eval", "ppl_seq_len", ppl_seq_len),   INT("eval", "ppl_tokens", ppl_tokens),
    INTS("bench", "batch", bench_batch, n_bench_batch), INT("bench", "prompt_len", prompt_len),
    INT("bench", "gen_len", gen_len),    INT("bench", "repeats", repeats),           STR("bench", "precision", precision),
    {"matrix", "strategies", T_STRS, offsetof(SweepConfig, strategies), 0, offsetof(SweepConfig, n_strategies)},
    INTS("matrix", "layers", layers, n_layers), INTS("matrix", "ffn", ffn, n_ffn),  INTS("matrix", "hidden", hidden, n_hidden),
    INTS("matrix", "heads", heads, n_heads), INTS("matrix", "kv_heads", kv_heads, n_kv_heads),
    {"scratch", "enabled", T_BOOL, offsetof(SweepConfig, scratch), 0, 0},
    STR("hetero", "ratio", hetero_ratio_text), STR("hetero", "widths", hetero_widths), STR("hetero", "metric", hetero_metric),
    {"hetero", "attention", T_BOOL, offsetof(SweepConfig, hetero_attention), 0, 0},
    STR("slurm", "time", slurm_time),    STR("slurm", "mem", slurm_mem),            STR("slurm", "partition", slurm_partition),
    STR("slurm", "account", slurm_account), INT("slurm", "cpus_per_task", slurm_cpus), INT("slurm", "gpus_per_task", slurm_gpus),
};

int sweep_distill_ranks(const SweepConfig* c) {
    int per = c->gpus_per_node > 0 ? c->gpus_per_node : c->ranks_per_node > 0 ? c->ranks_per_node : 1;
    return (c->nodes > 0 ? c->nodes : 1) * per;
}

const char* cell_kind_name(CellKind k) {
    static const char* names[] = {"teacher", "baseline", "pruned", "scratch", "teacher-corrected"};
    return names[k];
}

// the index of a [matrix] integer axis in sweep_axes order, or -1
static int axis_index(const char* section, const char* key) {
    static const char* names[] = {"layers", "ffn", "hidden", "heads", "kv_heads"};
    for (int a = 0; a < 5 && !strcmp(section, "matrix"); a++)
        if (!strcmp(key, names[a])) return a;
    return -1;
}

void sweep_axes(const SweepConfig* c, SweepAxis axes[5]) {
    axes[0] = (SweepAxis){"layers", c->layers, c->n_layers};
    axes[1] = (SweepAxis){"ffn", c->ffn, c->n_ffn};
    axes[2] = (SweepAxis){"hidden", c->hidden, c->n_hidden};
    axes[3] = (SweepAxis){"heads", c->heads, c->n_heads};
    axes[4] = (SweepAxis){"kv_heads", c->kv_heads, c->n_kv_heads};
}

int sweep_config_key_count(void) { return (int)(sizeof keys / sizeof keys[0]); }

const char* sweep_config_key(int i, const char** section) {
    *section = keys[i].section;
    return keys[i].key;
}

typedef struct {
    SweepConfig* c;
    char msg[512];
    char seen[128][160];  // "section key" of every key read so far: each may be given once
    int n_seen;
} Ctx;

// 0 the first time [section] name is seen; -1 (message set) when it was given before
static int once(Ctx* x, const char* section, const char* name) {
    char id[160];
    snprintf(id, sizeof id, "%.100s %.50s", section, name);
    for (int i = 0; i < x->n_seen; i++)
        if (!strcmp(x->seen[i], id))
            return snprintf(x->msg, sizeof x->msg, "duplicate key '%s' in [%s]: each key is given once", name, section), -1;
    if (x->n_seen < 128) snprintf(x->seen[x->n_seen++], sizeof x->seen[0], "%s", id);
    return 0;
}

static int parse_long(const char* v, long* out) {
    char* end;
    *out = strtol(v, &end, 10);
    return end != v && *end == 0 ? 0 : -1;
}

static int handler(void* user, const char* section, const char* name, const char* value) {
    Ctx* x = user;
    SweepConfig* c = x->c;
    if (once(x, section, name)) return 0;
    if (strncmp(section, "baseline.", 9) == 0) {
        if (strcmp(name, "model") != 0) return snprintf(x->msg, sizeof x->msg, "unknown key '%s' in [%s] (model)", name, section), 0;
        if (c->n_baselines == SWEEP_MAX_BASELINES) return snprintf(x->msg, sizeof x->msg, "more than %d baselines", SWEEP_MAX_BASELINES), 0;
        snprintf(c->baseline_name[c->n_baselines], sizeof c->baseline_name[0], "%s", section + 9);
        snprintf(c->baseline_model[c->n_baselines++], sizeof c->baseline_model[0], "%s", value);
        return 1;
    }
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const KeyDef* k = &keys[i];
        if (strcmp(k->section, section) || strcmp(k->key, name)) continue;
        char* field = (char*)c + k->offset;
        long l;
        char* end;
        switch (k->type) {
            case T_STR:
                if (strlen(value) >= k->size) return snprintf(x->msg, sizeof x->msg, "%s is too long", name), 0;
                strcpy(field, value);
                return 1;
            case T_INT:
                if (parse_long(value, &l) || l < 0 || l > 1L << 30)
                    return snprintf(x->msg, sizeof x->msg, "%s = '%.40s' is not a non-negative integer", name, value), 0;
                *(int*)field = (int)l;
                return 1;
            case T_DBL:
                *(double*)field = strtod(value, &end);
                if (end == value || *end || !(*(double*)field >= 0) || !isfinite(*(double*)field))
                    return snprintf(x->msg, sizeof x->msg, "%s = '%.40s' is not a finite non-negative number", name, value), 0;
                return 1;
            case T_BOOL:
                if (!strcmp(value, "true") || !strcmp(value, "1")) *(int*)field = 1;
                else if (!strcmp(value, "false") || !strcmp(value, "0")) *(int*)field = 0;
                else return snprintf(x->msg, sizeof x->msg, "%s must be true or false", name), 0;
                return 1;
            case T_INTS:
            case T_STRS: {
                int* count = (int*)((char*)c + k->count_offset);
                char buf[2048];
                snprintf(buf, sizeof buf, "%s", value);
                *count = 0;
                for (char* tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
                    if (*count == SWEEP_MAX_AXIS) return snprintf(x->msg, sizeof x->msg, "%s: more than %d values", name, SWEEP_MAX_AXIS), 0;
                    int axis = axis_index(section, name);
                    if (k->type == T_STRS) {
                        snprintf(((char(*)[16])field)[*count], 16, "%s", tok);
                    } else if (strchr(tok, '>') && axis < 0) {
                        return snprintf(x->msg, sizeof x->msg, "%s: '%.40s': only [matrix] values take rounds (a>b)", name, tok), 0;
                    } else {  // a value, or in [matrix] a chain of rounds "a>b>c"
                        int* chain = axis >= 0 ? c->chain[axis][*count] : NULL;
                        int len = 0;
                        char whole[64];  // the value as written, for messages (tok is split in place)
                        snprintf(whole, sizeof whole, "%s", tok);
                        for (char *at = tok, *gt; at; at = gt ? gt + 1 : NULL) {
                            gt = strchr(at, '>');
                            if (gt) *gt = 0;
                            if (parse_long(at, &l) || l < 0 || l > 1L << 24)
                                return snprintf(x->msg, sizeof x->msg, "%s: '%.20s' is not a non-negative integer", name, at), 0;
                            if (len == SWEEP_MAX_ROUNDS)
                                return snprintf(x->msg, sizeof x->msg, "%s: more than %d rounds", name, SWEEP_MAX_ROUNDS), 0;
                            if (len && l == 0)
                                return snprintf(x->msg, sizeof x->msg, "%s: '%.40s' ends a round at 0, which is no %s (0 means keep, and "
                                                "only a plain value can keep)", name, whole, !strcmp(name, "layers") ? "layer count" : "width"), 0;
                            if (len && l >= chain[len - 1])
                                return snprintf(x->msg, sizeof x->msg, "%s: rounds must shrink: %ld after %d", name, l, chain[len - 1]), 0;
                            if (chain) chain[len] = (int)l;
                            len++;
                        }
                        if (chain && len > 1 && chain[0] == 0)
                            return snprintf(x->msg, sizeof x->msg, "%s: 0 (keep) cannot start a chain of rounds", name), 0;
                        if (chain) c->chain_len[axis][*count] = len;
                        ((int*)field)[*count] = (int)l;
                    }
                    (*count)++;
                }
                if (*count == 0) return snprintf(x->msg, sizeof x->msg, "%s: empty list", name), 0;
                return 1;
            }
        }
    }
    int known_section = 0;
    for (int i = 0; i < sweep_config_key_count() && !known_section; i++) {
        const char* sec;
        sweep_config_key(i, &sec);
        known_section = !strcmp(sec, section);
    }
    if (known_section) snprintf(x->msg, sizeof x->msg, "unknown key '%s' in [%s]", name, section);
    else
        snprintf(x->msg, sizeof x->msg, "unknown section [%s] (the sections are sweep, teacher, data, prune, distill, eval, bench, "
                 "matrix, scratch, hetero, slurm and baseline.NAME)", section);
    return 0;
}

// The line of `key` in [section] (for errors found after parsing), or 0.
static int line_of(const char* path, const char* section, const char* key) {
    FILE* f = fopen(path, "r");
    if (!f) return 0;
    char line[4096], cur[256] = "";
    int n = 0, found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        n++;
        char* p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '[') {
            char* end = strchr(p, ']');
            if (end) snprintf(cur, sizeof cur, "%.*s", (int)(end - p - 1), p + 1);
        } else if (!strcmp(cur, section) && !strncmp(p, key, strlen(key)) &&
                   (p[strlen(key)] == ' ' || p[strlen(key)] == '=' || p[strlen(key)] == '\t')) {
            found = n;
        }
    }
    fclose(f);
    return found;
}

// "FILE:LINE" of the key, or where the config leaves it at its default "FILE: [section] key (default)"
static void where(const char* path, const char* section, const char* key, char* out, size_t n) {
    int line = line_of(path, section, key);
    if (line) snprintf(out, n, "%s:%d", path, line);
    else snprintf(out, n, "%s: [%s] %s (not set: its default)", path, section, key);
}

#define BAD(sec, key, ...) (snprintf(msg, sizeof msg, __VA_ARGS__), where(path, sec, key, at_line, sizeof at_line), \
                            err_set(e, "%s: %.600s", at_line, msg))

static int exists(const char* p) { return p[0] && access(p, F_OK) == 0; }

// an input that is not on disk: an error, or (lenient) a note of the checks that could not be made
#define MISSING(sec, key, ...)                                                                        \
    do {                                                                                              \
        if (!lenient) return BAD(sec, key, __VA_ARGS__);                                              \
        snprintf(msg, sizeof msg, __VA_ARGS__);                                                       \
        size_t at_ = strlen(c->skipped);                                                              \
        where(path, sec, key, at_line, sizeof at_line);                                               \
        snprintf(c->skipped + at_, sizeof c->skipped - at_, "%s%s: %s", at_ ? "\n" : "", at_line, msg); \
    } while (0)

static int has_duplicate(const int* v, int n, int* dup) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (v[i] == v[j]) return *dup = v[i], 1;
    return 0;
}


static int tokenizer_files(const char* dir) {
    char a[1100], b[1100];
    snprintf(a, sizeof a, "%s/tokenizer.json", dir);
    if (access(a, F_OK) == 0) return 1;
    snprintf(a, sizeof a, "%s/vocab.json", dir);
    snprintf(b, sizeof b, "%s/merges.txt", dir);
    return access(a, F_OK) == 0 && access(b, F_OK) == 0;
}

static int load(const char* path, SweepConfig* c, int lenient, Err* e) {
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    // defaults
    snprintf(c->out, sizeof c->out, "results");
    snprintf(c->aggregation, sizeof c->aggregation, "l2");
    snprintf(c->schedule, sizeof c->schedule, "cosine");
    snprintf(c->grad_reduce, sizeof c->grad_reduce, "fp32");
    snprintf(c->hetero_widths, sizeof c->hetero_widths, "%s", BLOCK_DEFAULT_WIDTHS);
    snprintf(c->hetero_metric, sizeof c->hetero_metric, "kl");
    c->hetero_attention = 1;
    snprintf(c->loss, sizeof c->loss, "kl");
    snprintf(c->kd_scale, sizeof c->kd_scale, "none");
    snprintf(c->device_text, sizeof c->device_text, "cpu");
    snprintf(c->truncate_text, sizeof c->truncate_text, "tokens");
    c->calib_windows = 64, c->prune_seq_len = 256, c->max_cells = 1024;
    c->steps = 100, c->seq_len = 256, c->batch = 8, c->grad_accum = 1, c->warmup = 10;
    c->lr = 1e-4, c->min_lr = 1e-5, c->kd_temp = 1.0, c->weight_decay = 0.1, c->clip = 1.0;
    c->shots = 5, c->ppl_seq_len = 256, c->ppl_tokens = 65536;
    c->bench_batch[0] = 1, c->n_bench_batch = 1, c->prompt_len = 128, c->gen_len = 32, c->repeats = 3;
    FILE* f = fopen(path, "r");
    if (!f) return err_set(e, "%s: cannot open", path);
    Ctx x = {c, "", {{0}}, 0};
    int line = ini_parse_file(f, handler, &x);
    fclose(f);
    if (line > 0) return err_set(e, "%s:%d: %s", path, line, x.msg[0] ? x.msg : "malformed line");
    if (line < 0) return err_set(e, "%s: cannot read", path);
    char msg[2400], at_line[2600];
    if (!c->name[0]) snprintf(c->name, sizeof c->name, "sweep");
    if (!c->teacher[0]) return err_set(e, "%s: [teacher] model is required", path);

    // ---- the config on its own
    int matrix = c->n_strategies || c->n_layers || c->n_ffn || c->n_hidden || c->n_heads || c->n_kv_heads;
    for (int i = 0; i < c->n_strategies; i++) {
        DepthStrategy d;
        if (depth_strategy_parse(c->strategies[i], &d))
            return BAD("matrix", "strategies", "strategy '%s' is not one of bi, block, last, ppl, ablation, ablation-block",
                       c->strategies[i]);
        if ((d == DEPTH_ABLATION || d == DEPTH_ABLATION_BLOCK) && c->ablation_windows < 1)
            return BAD("matrix", "strategies", "strategy '%s' needs [prune] ablation_windows (sequences to ablate layers on)",
                       c->strategies[i]);
        for (int j = 0; j < i; j++)
            if (!strcmp(c->strategies[i], c->strategies[j]))
                return BAD("matrix", "strategies", "strategy '%s' is listed twice (the cells would repeat)", c->strategies[i]);
    }
    // [hetero]: comma lists of shares
    if (share_list_parse(c->hetero_ratio_text, 0, 0, c->hetero_ratio, SWEEP_MAX_AXIS, &c->n_hetero))
        return BAD("hetero", "ratio", "ratio = %s: at most %d shares in (0, 1), comma-separated", c->hetero_ratio_text, SWEEP_MAX_AXIS);
    if (share_list_parse(c->hetero_widths, 1, 1, c->hetero_width, BLOCK_MAX_WIDTHS, &c->n_hetero_widths))
        return BAD("hetero", "widths", "widths = %s: at most %d shares in [0, 1], comma-separated", c->hetero_widths, BLOCK_MAX_WIDTHS);
    if (strcmp(c->hetero_metric, "kl") && strcmp(c->hetero_metric, "loss")) return BAD("hetero", "metric", "metric must be kl or loss");
    if (!c->n_hetero && (strcmp(c->hetero_widths, BLOCK_DEFAULT_WIDTHS) || strcmp(c->hetero_metric, "kl") || !c->hetero_attention))
        return BAD("hetero", !c->hetero_attention ? "attention" : strcmp(c->hetero_metric, "kl") ? "metric" : "widths",
                   "[hetero] settings without [hetero] ratio (no heterogeneous cell reads them)");
    if (c->n_hetero && !c->n_hetero_widths) return BAD("hetero", "widths", "widths needs one share at least");
    for (int i = 0; i < c->n_hetero; i++)
        for (int j = 0; j < i; j++)
            if (c->hetero_ratio[i] == c->hetero_ratio[j]) return BAD("hetero", "ratio", "ratio %g is listed twice", c->hetero_ratio[i]);
    Aggregation agg;
    if (aggregation_parse(c->aggregation, &agg)) return BAD("prune", "aggregation", "aggregation must be l2, mean or variance");
    if (c->n_strategies && !c->n_layers) return BAD("matrix", "strategies", "strategies need [matrix] layers");
    if (c->n_layers && !c->n_strategies) return BAD("matrix", "layers", "layers need [matrix] strategies");
    if (!c->n_strategies && matrix) return BAD("matrix", "strategies", "width axes need [matrix] strategies and layers");
    for (int i = 0; i < c->n_layers; i++)
        if (c->layers[i] < 1) return BAD("matrix", "layers", "layers must be at least 1");
    SweepAxis axes[5];
    sweep_axes(c, axes);
    int rounds_axis = -1, lo[5], hi[5];  // an axis with chains of rounds; each axis's shortest and longest chain
    for (int a = 0; a < 5; a++) {
        lo[a] = SWEEP_MAX_ROUNDS + 1, hi[a] = 1;
        for (int i = 0; i < axes[a].n; i++) {
            for (int j = i + 1; j < axes[a].n; j++)
                if (c->chain_len[a][i] == c->chain_len[a][j] &&
                    !memcmp(c->chain[a][i], c->chain[a][j], sizeof(int) * (size_t)c->chain_len[a][i]))
                    return BAD("matrix", axes[a].key, "%s: %d is listed twice (the cells would repeat)", axes[a].key, axes[a].v[i]);
            int len = c->chain_len[a][i];
            if (len > 1) lo[a] = len < lo[a] ? len : lo[a], hi[a] = len > hi[a] ? len : hi[a];
        }
        if (hi[a] == 1) continue;
        // chains on different axes meet in some cell, so they must all have one length
        if (rounds_axis >= 0 && (lo[a] != hi[a] || lo[rounds_axis] != hi[rounds_axis] || lo[a] != lo[rounds_axis]))
            return BAD("matrix", axes[a].key, "%s and %s both have chains of rounds, of different lengths: a cell takes one from each, "
                       "so they must all have the same number of rounds", axes[rounds_axis].key, axes[a].key);
        rounds_axis = a;
    }
    long long cells = c->n_strategies;  // pruned cells; as many scratch ones at most; the teacher and baselines
    for (int a = 0; a < 5; a++) cells *= axes[a].n ? axes[a].n : 1;
    cells = cells * (c->scratch ? 2 : 1) + 1 + c->n_baselines;
    if (cells > c->max_cells)
        return BAD("matrix", c->n_strategies ? "strategies" : "layers",
                   "the matrix makes up to %lld cells, more than max_cells = %d (raise [sweep] max_cells to run it)", cells,
                   c->max_cells);
    if (c->shots > 5) return BAD("eval", "shots", "shots must be 0..5");
    if (mmlu_truncation_parse(c->truncate_text, &c->truncation))
        return BAD("eval", "truncate", "truncate must be tokens (lm-eval's left truncation) or shots, not '%s'", c->truncate_text);
    int chosen[MMLU_N_SUBJECTS], n_chosen;
    Err sub_e;
    if (c->subjects[0] && mmlu_subject_list(c->subjects, chosen, &n_chosen, &sub_e)) return BAD("eval", "subjects", "%s", sub_e.msg);
    if (device_parse(c->device_text, &c->device, e))
        return BAD("sweep", "device", "device must be cpu or cuda, not '%s'", c->device_text);
    if (c->n_hetero && c->device == DEVICE_CUDA)
        return BAD("hetero", "ratio", "heterogeneous cells run on the CPU (device = cpu): the CUDA path takes uniform layers only");
    // what each backend runs: the CPU's weights in fp32, bf16 or f16 (--weights), the GPU's in bf16
    Err wt_e;
    c->bench_weights = WEIGHT_F32;
    if (!c->precision[0]) snprintf(c->precision, sizeof c->precision, "%s", c->device == DEVICE_CUDA ? "bf16" : "fp32");
    if (c->device == DEVICE_CUDA && strcmp(c->precision, "bf16"))
        return BAD("bench", "precision", "precision '%s' with device cuda: the cuda backend runs bf16", c->precision);
    if (c->device == DEVICE_CPU && weight_type_parse(c->precision, &c->bench_weights, &wt_e))
        return BAD("bench", "precision", "precision '%s' with device cpu: the cpu backend runs fp32, bf16 or f16 weights",
                   c->precision);
    if (strcmp(c->schedule, "cosine") && strcmp(c->schedule, "linear")) return BAD("distill", "schedule", "schedule must be cosine or linear");
    if (c->seq_len < 1) return BAD("distill", "seq_len", "seq_len must be positive");
    if (c->batch < 1) return BAD("distill", "batch", "batch must be positive");
    if (c->grad_accum < 1) return BAD("distill", "grad_accum", "grad_accum must be positive");
    if (c->nodes < 0 || c->nodes > 4096) return BAD("distill", "nodes", "nodes %d must be in [1, 4096]", c->nodes);
    if (c->ranks_per_node < 0 || c->ranks_per_node > 1024)
        return BAD("distill", "ranks_per_node", "ranks_per_node %d must be in [1, 1024]", c->ranks_per_node);
    if (c->gpus_per_node < 0 || c->gpus_per_node > 64) return BAD("distill", "gpus_per_node", "gpus_per_node %d must be in [1, 64]", c->gpus_per_node);
    if (c->device == DEVICE_CPU && c->gpus_per_node > 0)
        return BAD("distill", "gpus_per_node", "gpus_per_node with device = cpu: set ranks_per_node (MPI ranks) instead");
    if (c->ablation_windows < 0) return BAD("prune", "ablation_windows", "ablation_windows must be 0 (off) or more");
    if (c->device == DEVICE_CUDA && (c->ablation_windows > 0 || c->bi_after_norm))
        return BAD("prune", c->ablation_windows > 0 ? "ablation_windows" : "bi_after_norm",
                   "layer ablation and Block Influence after the final norm run on the CPU calibration path (device = cpu)");
    if (c->device == DEVICE_CUDA && c->ranks_per_node > 0)
        return BAD("distill", "ranks_per_node", "ranks_per_node with device = cuda: set gpus_per_node (a rank per GPU) instead");
    int ranks = sweep_distill_ranks(c);
#ifndef ARBOR_HAVE_NCCL
    if (ranks > 1 && c->device == DEVICE_CUDA)
        return BAD("distill", c->gpus_per_node ? "gpus_per_node" : "nodes",
                   "%d GPU ranks: data parallel on the GPU needs NCCL, and this arbor was built without it (the CUDA "
                   "toolkit's or the nvidia-nccl wheel's libnccl)", ranks);
#endif
    if (c->bucket_mb < 0 || c->bucket_mb > 65536)
        return BAD("distill", "bucket_mb", "bucket_mb %g must be in (0, 65536] (0 or unset: 25)", c->bucket_mb);
    if (strcmp(c->grad_reduce, "fp32") && strcmp(c->grad_reduce, "bf16"))
        return BAD("distill", "grad_reduce", "grad_reduce must be fp32 or bf16");
    if (!strcmp(c->grad_reduce, "bf16") && (ranks <= 1 || c->device != DEVICE_CUDA))
        return BAD("distill", "grad_reduce", "grad_reduce = bf16 is for GPU ranks (device = cuda with gpus_per_node): the CPU sums in fp64");
    if (c->zero1 && ranks <= 1)
        return BAD("distill", "zero1", "zero1 without ranks (nodes, ranks_per_node or gpus_per_node): one process has nothing to shard");
    if (c->bucket_mb > 0 && ranks <= 1)
        return BAD("distill", "bucket_mb", "bucket_mb without ranks (nodes, ranks_per_node or gpus_per_node): one process reduces nothing");
    if (ranks > 1 && c->grad_accum % ranks != 0)
        return BAD("distill", "grad_accum", "grad_accum %d is the global accumulation and must split evenly over the %d ranks "
                   "(nodes x per node)", c->grad_accum, ranks);
    if (c->tokens > 0) {  // a token budget fixes the step count
        double per_step = (double)c->seq_len * c->batch * c->grad_accum;
        double steps = ceil(c->tokens / per_step);
        if (steps > 1 << 30) return BAD("distill", "tokens", "tokens = %g is %.3g steps of %.0f tokens (at most 2^30)", c->tokens, steps, per_step);
        c->steps = (int)steps;
    }
    if (c->steps < 1) return BAD("distill", "steps", "steps must be positive");
    if (c->round_steps && rounds_axis < 0)
        return BAD("distill", "round_steps", "round_steps: no cell has rounds (write a [matrix] chain such as layers = 30>24)");
    if (!c->round_steps) c->round_steps = c->steps;
    if (c->correct_lr > 0 && !c->correct_steps)
        return BAD("teacher", "correct_lr", "correct_lr without correct_steps: teacher correction is off");
    if (!(c->correct_lr > 0)) c->correct_lr = c->lr;
    if (c->correct_steps && !matrix && !c->n_hetero)
        return BAD("teacher", "correct_steps", "teacher correction serves the pruned cells: the sweep has no [matrix]");
    if (!(c->lr > 0)) return BAD("distill", "lr", "lr must be positive");
    if (c->min_lr > c->lr) return BAD("distill", "min_lr", "min_lr %g is above lr %g", c->min_lr, c->lr);
    Err le;
    if (loss_parse(c->loss, 1, &c->loss_cfg, &le)) return BAD("distill", "loss", "%s", le.msg);
    if (!(c->kd_temp >= 1e-3 && c->kd_temp <= 1e3)) return BAD("distill", "kd_temp", "kd_temp %g must be in [0.001, 1000]", c->kd_temp);
    c->loss_cfg.temperature = (float)c->kd_temp;
    c->loss_cfg.t2_scaling = c->t2;
    if (kd_scale_parse(c->kd_scale, &c->loss_cfg, &le)) return BAD("distill", "kd_scale", "%s", le.msg);
    if (c->calib_windows < 1) return BAD("prune", "calib_windows", "calib_windows must be at least 1");
    if (c->prune_seq_len < 2) return BAD("prune", "seq_len", "seq_len must be at least 2");
    if (c->ppl_seq_len < 2) return BAD("eval", "ppl_seq_len", "ppl_seq_len must be at least 2 (one prediction needs a context)");
    if (c->ppl_tokens < c->ppl_seq_len + 1)
        return BAD("eval", "ppl_tokens", "ppl_tokens %d is less than one window of ppl_seq_len + 1 = %d", c->ppl_tokens, c->ppl_seq_len + 1);
    for (int i = 0; i < c->n_bench_batch; i++)
        if (c->bench_batch[i] < 1) return BAD("bench", "batch", "bench batch sizes must be at least 1");
    int dup;
    if (has_duplicate(c->bench_batch, c->n_bench_batch, &dup)) return BAD("bench", "batch", "batch %d is listed twice", dup);
    if (c->prompt_len < 1) return BAD("bench", "prompt_len", "prompt_len must be at least 1");
    if (c->gen_len < 1) return BAD("bench", "gen_len", "gen_len must be at least 1");
    if (c->repeats < 1) return BAD("bench", "repeats", "repeats must be at least 1");
    if (c->device == DEVICE_CPU && c->slurm_gpus > 0)
        return BAD("slurm", "gpus_per_task", "gpus_per_task with device = cpu: the cells would not use them");
    for (const char* p = c->slurm_time; *p; p++)
        if (!strchr("0123456789:-", *p)) return BAD("slurm", "time", "time '%s' is not Slurm's [D-]HH:MM:SS", c->slurm_time);
    for (const char* p = c->slurm_mem; *p; p++)
        if (!strchr("0123456789KMGT", *p)) return BAD("slurm", "mem", "mem '%s' is not a Slurm size (e.g. 64G)", c->slurm_mem);
    const char* names[2] = {c->slurm_partition, c->slurm_account};
    for (int i = 0; i < 2; i++)
        for (const char* p = names[i]; *p; p++)
            if (!(isalnum((unsigned char)*p) || strchr("_-.,", *p)))
                return BAD("slurm", i ? "account" : "partition", "'%s' has characters Slurm names do not", names[i]);

    // ---- against what it names on disk
    char cfg_path[1100];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", c->teacher);
    ModelConfig t;
    int have_teacher = 0;
    if (!exists(cfg_path)) {
        MISSING("teacher", "model", "teacher checkpoint '%s' has no config.json (its shape checks were skipped)", c->teacher);
    } else {
        Err ce;
        if (config_load(c->teacher, &t, &ce)) return BAD("teacher", "model", "%s", ce.msg);
        have_teacher = 1;
    }
    for (int i = 0; i < c->n_baselines; i++) {
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", c->baseline_model[i]);
        char sec[80];
        snprintf(sec, sizeof sec, "baseline.%s", c->baseline_name[i]);
        if (!exists(cfg_path)) MISSING(sec, "model", "baseline checkpoint '%s' has no config.json", c->baseline_model[i]);
    }
    if (have_teacher && c->loss_cfg.kd == KD_TOPK && c->loss_cfg.topk >= t.vocab)
        return BAD("distill", "loss", "loss %s: top-%d of the teacher's %d-token vocabulary is the whole of it (use kl)", c->loss,
                   c->loss_cfg.topk, t.vocab);
    if (have_teacher) {
        int L = t.n_layers, P = t.max_positions;
        for (int i = 0; i < c->n_layers; i++)
            if (c->layers[i] > L) return BAD("matrix", "layers", "layers %d: the teacher has %d layers (keep 1..%d)", c->layers[i], L, L);
        int full[5] = {L, t.ffn, t.hidden, t.n_heads, t.n_kv_heads};
        for (int a = 0; a < 5; a++)
            for (int i = 0; i < axes[a].n; i++)
                if (c->chain_len[a][i] > 1 && c->chain[a][i][0] >= full[a])
                    return BAD("matrix", axes[a].key, "%s: the first round's %d does not prune the teacher's %d (start the chain below it)",
                               axes[a].key, c->chain[a][i][0], full[a]);
        for (int a = 1; a < 5; a++)  // each width axis alone, then every combination of them
            for (int i = 0; i < axes[a].n; i++) {
                PruneTarget pt = {0};
                int* slot[5] = {NULL, &pt.ffn, &pt.hidden, &pt.heads, &pt.kv_heads};
                *slot[a] = axes[a].v[i];
                Err we;
                if (prune_width_check(&t, &pt, &we)) return BAD("matrix", axes[a].key, "%s: %s", axes[a].key, we.msg);
            }
        for (int h = 0; h < (c->n_heads ? c->n_heads : 1); h++)
            for (int k = 0; k < (c->n_kv_heads ? c->n_kv_heads : 1); k++) {
                PruneTarget pt = {0};
                pt.heads = c->n_heads ? c->heads[h] : 0, pt.kv_heads = c->n_kv_heads ? c->kv_heads[k] : 0;
                Err we;
                if (prune_width_check(&t, &pt, &we)) return BAD("matrix", c->n_heads ? "heads" : "kv_heads", "%s", we.msg);
            }
        if (rounds_axis >= 0) {  // every round of every cell with rounds: its widths against the teacher's arithmetic
            Cell* all;
            int n_cells;
            sweep_cells(c, &all, &n_cells);
            int rc = 0;
            for (int i = 0; i < n_cells && !rc; i++)
                for (int r = 0; r < all[i].n_rounds - 1 && !rc; r++) {
                    const int* w = all[i].round[r];
                    PruneTarget pt = {DEPTH_NONE, 0, NULL, 0, w[1], w[3], w[4], w[2]};
                    Err we;
                    if (prune_width_check(&t, &pt, &we))
                        rc = BAD("matrix", axes[rounds_axis].key, "cell %s, round %d: %s", all[i].label, r + 1, we.msg);
                }
            free(all);
            if (rc) return rc;
        }
        if (P > 0) {
            if (c->seq_len > P) return BAD("distill", "seq_len", "seq_len %d is past the teacher's %d positions", c->seq_len, P);
            if (c->prune_seq_len > P) return BAD("prune", "seq_len", "seq_len %d is past the teacher's %d positions", c->prune_seq_len, P);
            if (c->val[0] && c->ppl_seq_len > P)
                return BAD("eval", "ppl_seq_len", "ppl_seq_len %d is past the teacher's %d positions", c->ppl_seq_len, P);
            if (c->prompt_len + c->gen_len > P)
                return BAD("bench", "gen_len", "prompt_len + gen_len = %d is past the teacher's %d positions", c->prompt_len + c->gen_len, P);
        }
    }
    struct {
        const char *key, *path;
        int need, min_tokens;
    } shards[] = {{"calib", c->calib, matrix, c->prune_seq_len + 1},
                  {"distill", c->distill_data, matrix, 2 * c->seq_len + 1},
                  {"val", c->val, c->val[0] != 0, c->ppl_seq_len + 1}};
    for (int i = 0; i < 3; i++) {
        if (!shards[i].need) continue;
        if (!exists(shards[i].path)) {
            MISSING("data", shards[i].key, "[data] %s '%s' does not exist (an existing token shard is needed)", shards[i].key,
                    shards[i].path);
            continue;
        }
        // the header only: the stage that reads the shard checks every id (a scan of a 90B-token shard here
        // would be paid again by every run and every Slurm task)
        Shard hdr;
        Err se;
        if (shard_peek(shards[i].path, &hdr, &se)) return BAD("data", shards[i].key, "%s", se.msg);
        uint64_t n_tok = hdr.n_tokens;
        int vocab = hdr.vocab_size;
        if (n_tok < (uint64_t)shards[i].min_tokens)
            return BAD("data", shards[i].key, "%s: %llu tokens, fewer than the %d its settings need", shards[i].path,
                       (unsigned long long)n_tok, shards[i].min_tokens);
        if (have_teacher && vocab > t.vocab)
            return BAD("data", shards[i].key, "%s: token ids up to %d, past the teacher's vocabulary of %d", shards[i].path, vocab - 1,
                       t.vocab);
    }
    if (c->mmlu[0] && !exists(c->mmlu)) MISSING("eval", "mmlu", "'%s' does not exist", c->mmlu);
    if (c->mmlu[0] && exists(c->mmlu)) {  // every subject's files, before any stage runs (not at the first eval)
        MmluOptions mo;
        plan_mmlu(c, &mo);
        int asked[MMLU_N_SUBJECTS], n_asked;
        Err pick_e;
        if (mmlu_pick_subjects(c->mmlu, &mo, asked, &n_asked, &pick_e)) return BAD("eval", "mmlu", "%s", pick_e.msg);
    }
    if (c->tokenizer[0] && !exists(c->tokenizer)) MISSING("teacher", "tokenizer", "'%s' does not exist", c->tokenizer);
    if (c->mmlu[0] && (have_teacher || c->tokenizer[0]) && exists(plan_tokenizer(c)) && !tokenizer_files(plan_tokenizer(c)))
        return BAD("teacher", c->tokenizer[0] ? "tokenizer" : "model",
                   "MMLU needs a tokenizer: '%s' has no tokenizer.json (nor vocab.json + merges.txt); set [teacher] tokenizer",
                   plan_tokenizer(c));
    return 0;
}

int sweep_config_load(const char* path, SweepConfig* c, Err* e) { return load(path, c, 0, e); }
int sweep_config_load_lenient(const char* path, SweepConfig* c, Err* e) { return load(path, c, 1, e); }

// ---------------------------------------------------------------------------------------------
// cells

// A cell's id names what the cell is (its kind, label and checkpoint), not how its stages are set: the same
// cell keeps its id when a setting changes (its stage keys change instead: sweep_graph.h), so Slurm's
// cells.txt and --only stay valid, and an edit of the config cannot make a second copy of a cell.
static void set_id(const SweepConfig* c, Cell* cell) {
    (void)c;
    char key[1400];
    snprintf(key, sizeof key, "kind=%d label=%s model=%s", cell->kind, cell->label, cell->model);
    snprintf(cell->id, sizeof cell->id, "%016llx", (unsigned long long)fnv1a64(key, strlen(key)));
}

// "L30>24-ffn96" (with_rounds) or "L24-ffn96": the cell's targets, the unchanged widths left out
static void shape_label(const Cell* x, int with_rounds, char* out, size_t n) {
    static const char* prefix[5] = {"L", "-ffn", "-h", "-heads", "-kv"};
    const int final[5] = {x->layers, x->ffn, x->hidden, x->heads, x->kv_heads};
    size_t len = 0;
    out[0] = 0;
    for (int a = 0; a < 5; a++) {
        if (!final[a]) continue;
        len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s", prefix[a]);
        for (int r = with_rounds ? 0 : x->n_rounds - 1; r < x->n_rounds; r++)
            if (x->round[r][a])
                len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%d%s", x->round[r][a], r < x->n_rounds - 1 ? ">" : "");
    }
}

int sweep_cells(const SweepConfig* c, Cell** out, int* n) {
    int axis_n[5], at[5];
    SweepAxis axes[5];
    sweep_axes(c, axes);
    int pruned = c->n_strategies;
    for (int a = 0; a < 5; a++) axis_n[a] = axes[a].n ? axes[a].n : 1, pruned *= axis_n[a];
    Cell* cells = xcalloc((size_t)(2 + c->n_baselines + 2 * pruned + c->n_hetero), sizeof(Cell));
    int k = 0;
    for (int corrected = 0; corrected <= (c->correct_steps > 0); corrected++) {
        cells[k].kind = corrected ? CELL_CORRECTED : CELL_TEACHER;
        cells[k].n_rounds = 1;
        snprintf(cells[k].model, sizeof cells[k].model, "%s", c->teacher);
        snprintf(cells[k].label, sizeof cells[k].label, "%s", cell_kind_name(cells[k].kind));
        set_id(c, &cells[k++]);
    }
    for (int i = 0; i < c->n_baselines; i++) {
        cells[k].kind = CELL_BASELINE;
        cells[k].n_rounds = 1;
        snprintf(cells[k].model, sizeof cells[k].model, "%s", c->baseline_model[i]);
        snprintf(cells[k].label, sizeof cells[k].label, "baseline-%s", c->baseline_name[i]);
        set_id(c, &cells[k++]);
    }
    int first_pruned = k;
    for (int s = 0; s < c->n_strategies; s++)
        for (int combo = 0; combo < pruned / c->n_strategies; combo++) {  // layers slowest, kv_heads fastest
            for (int a = 4, rest = combo; a >= 0; a--) at[a] = rest % axis_n[a], rest /= axis_n[a];
            Cell* x = &cells[k++];
            x->kind = CELL_PRUNED;
            snprintf(x->strategy, sizeof x->strategy, "%s", c->strategies[s]);
            int* final[5] = {&x->layers, &x->ffn, &x->hidden, &x->heads, &x->kv_heads};
            x->n_rounds = 1;
            for (int a = 0; a < 5; a++)
                if (axes[a].n && c->chain_len[a][at[a]] > x->n_rounds) x->n_rounds = c->chain_len[a][at[a]];
            for (int a = 0; a < 5; a++) {
                *final[a] = axes[a].n ? axes[a].v[at[a]] : 0;
                int len = axes[a].n ? c->chain_len[a][at[a]] : 1;
                for (int r = 0; r < x->n_rounds; r++)  // a plain value is reached in the last round
                    x->round[r][a] = len == x->n_rounds ? c->chain[a][at[a]][r] : r == x->n_rounds - 1 ? *final[a] : 0;
            }
            char shape[96];
            shape_label(x, 1, shape, sizeof shape);
            snprintf(x->label, sizeof x->label, "%s-%s", x->strategy, shape);
            set_id(c, x);
        }
    if (c->scratch)
        for (int i = first_pruned, end = k; i < end; i++) {  // each distinct final shape, trained from scratch
            int seen = 0;
            for (int j = end; j < k && !seen; j++)
                seen = cells[j].layers == cells[i].layers && cells[j].ffn == cells[i].ffn && cells[j].hidden == cells[i].hidden &&
                       cells[j].heads == cells[i].heads && cells[j].kv_heads == cells[i].kv_heads;
            if (seen) continue;
            Cell* x = &cells[k++];
            *x = cells[i];
            x->kind = CELL_SCRATCH;
            x->strategy[0] = 0;
            x->n_rounds = 1;
            memcpy(x->round[0], x->round[cells[i].n_rounds - 1], sizeof x->round[0]);
            char shape[96];
            shape_label(x, 0, shape, sizeof shape);
            snprintf(x->label, sizeof x->label, "scratch-%s", shape);
            set_id(c, x);
        }
    for (int i = 0; i < c->n_hetero; i++) {  // heterogeneous cells (no scratch twin: their shape is the search's)
        Cell* x = &cells[k++];
        x->kind = CELL_PRUNED;
        x->n_rounds = 1;
        x->hetero_ratio = c->hetero_ratio[i];
        snprintf(x->strategy, sizeof x->strategy, "hetero");
        snprintf(x->label, sizeof x->label, "hetero-p%g", 100 * c->hetero_ratio[i]);
        set_id(c, x);
    }
    *out = cells;
    *n = k;
    return 0;
}
