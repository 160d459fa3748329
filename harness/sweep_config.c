// sweep_config.c: see sweep_config.h.
#include "../kernels/hash.h"
#include "../prune/surgery.h"
#include "sweep_config.h"

#include <ini.h>
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
    STR("teacher", "model", teacher),    STR("teacher", "tokenizer", tokenizer),
    STR("data", "calib", calib),         STR("data", "distill", distill_data),      STR("data", "val", val),
    INT("prune", "calib_windows", calib_windows), INT("prune", "seq_len", prune_seq_len),
    STR("prune", "aggregation", aggregation),
    INT("distill", "steps", steps),      DBL("distill", "tokens", tokens),          INT("distill", "seq_len", seq_len),
    INT("distill", "batch", batch),      INT("distill", "grad_accum", grad_accum),  DBL("distill", "lr", lr),
    DBL("distill", "min_lr", min_lr),    INT("distill", "warmup", warmup),          STR("distill", "schedule", schedule),
    STR("distill", "loss", loss),        DBL("distill", "kd_temp", kd_temp),        {"distill", "t2", T_BOOL, offsetof(SweepConfig, t2), 0, 0},
    DBL("distill", "weight_decay", weight_decay), DBL("distill", "clip", clip),     INT("distill", "seed", seed),
    STR("eval", "mmlu", mmlu),           INT("eval", "shots", shots),               STR("eval", "subjects", subjects),
    INT("eval", "limit", limit),         INT("eval", "ppl_seq_len", ppl_seq_len),   INT("eval", "ppl_tokens", ppl_tokens),
    INTS("bench", "batch", bench_batch, n_bench_batch), INT("bench", "prompt_len", prompt_len),
    INT("bench", "gen_len", gen_len),    INT("bench", "repeats", repeats),           STR("bench", "precision", precision),
    {"matrix", "strategies", T_STRS, offsetof(SweepConfig, strategies), 0, offsetof(SweepConfig, n_strategies)},
    INTS("matrix", "layers", layers, n_layers), INTS("matrix", "ffn", ffn, n_ffn),  INTS("matrix", "hidden", hidden, n_hidden),
    INTS("matrix", "heads", heads, n_heads), INTS("matrix", "kv_heads", kv_heads, n_kv_heads),
    {"scratch", "enabled", T_BOOL, offsetof(SweepConfig, scratch), 0, 0},
};

int sweep_config_key_count(void) { return (int)(sizeof keys / sizeof keys[0]); }

const char* sweep_config_key(int i, const char** section) {
    *section = keys[i].section;
    return keys[i].key;
}

typedef struct {
    SweepConfig* c;
    char msg[512];
} Ctx;

static int parse_long(const char* v, long* out) {
    char* end;
    *out = strtol(v, &end, 10);
    return end != v && *end == 0 ? 0 : -1;
}

static int handler(void* user, const char* section, const char* name, const char* value) {
    Ctx* x = user;
    SweepConfig* c = x->c;
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
                if (end == value || *end || *(double*)field < 0)
                    return snprintf(x->msg, sizeof x->msg, "%s = '%.40s' is not a non-negative number", name, value), 0;
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
                    if (k->type == T_STRS) {
                        snprintf(((char(*)[16])field)[*count], 16, "%s", tok);
                    } else {
                        if (parse_long(tok, &l) || l < 0 || l > 1L << 24)
                            return snprintf(x->msg, sizeof x->msg, "%s: '%.20s' is not a non-negative integer", name, tok), 0;
                        ((int*)field)[*count] = (int)l;
                    }
                    (*count)++;
                }
                if (*count == 0) return snprintf(x->msg, sizeof x->msg, "%s: empty list", name), 0;
                return 1;
            }
        }
    }
    snprintf(x->msg, sizeof x->msg, "unknown key '%s' in [%s]", name, section);
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

#define BAD(sec, key, ...) (snprintf(msg, sizeof msg, __VA_ARGS__), \
                            err_set(e, "%s:%d: %.600s", path, line_of(path, sec, key), msg))

static int exists(const char* p) { return p[0] && access(p, F_OK) == 0; }

int sweep_config_load(const char* path, SweepConfig* c, Err* e) {
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    // defaults
    snprintf(c->out, sizeof c->out, "results");
    snprintf(c->aggregation, sizeof c->aggregation, "l2");
    snprintf(c->schedule, sizeof c->schedule, "cosine");
    snprintf(c->loss, sizeof c->loss, "kl");
    snprintf(c->device_text, sizeof c->device_text, "cpu");
    c->calib_windows = 64, c->prune_seq_len = 256;
    c->steps = 100, c->seq_len = 256, c->batch = 8, c->grad_accum = 1, c->warmup = 10;
    c->lr = 1e-4, c->min_lr = 1e-5, c->kd_temp = 1.0, c->weight_decay = 0.1, c->clip = 1.0;
    c->shots = 5, c->ppl_seq_len = 256, c->ppl_tokens = 65536;
    c->bench_batch[0] = 1, c->n_bench_batch = 1, c->prompt_len = 128, c->gen_len = 32, c->repeats = 3;
    FILE* f = fopen(path, "r");
    if (!f) return err_set(e, "%s: cannot open", path);
    Ctx x = {c, ""};
    int line = ini_parse_file(f, handler, &x);
    fclose(f);
    if (line > 0) return err_set(e, "%s:%d: %s", path, line, x.msg[0] ? x.msg : "malformed line");
    if (line < 0) return err_set(e, "%s: cannot read", path);
    char msg[2400];
    if (!c->name[0]) snprintf(c->name, sizeof c->name, "sweep");
    if (!c->teacher[0]) return err_set(e, "%s: [teacher] model is required", path);
    char cfg_path[1100];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", c->teacher);
    if (!exists(cfg_path)) return BAD("teacher", "model", "teacher checkpoint '%s' has no config.json", c->teacher);
    for (int i = 0; i < c->n_baselines; i++) {
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", c->baseline_model[i]);
        char sec[80];
        snprintf(sec, sizeof sec, "baseline.%s", c->baseline_name[i]);
        if (!exists(cfg_path)) return BAD(sec, "model", "baseline checkpoint '%s' has no config.json", c->baseline_model[i]);
    }
    int matrix = c->n_strategies || c->n_layers || c->n_ffn || c->n_hidden || c->n_heads || c->n_kv_heads;
    for (int i = 0; i < c->n_strategies; i++) {
        DepthStrategy d;
        if (depth_strategy_parse(c->strategies[i], &d))
            return BAD("matrix", "strategies", "strategy '%s' is not one of bi, block, last, ppl", c->strategies[i]);
    }
    Aggregation agg;
    if (aggregation_parse(c->aggregation, &agg)) return BAD("prune", "aggregation", "aggregation must be l2, mean or variance");
    if (c->n_strategies && !c->n_layers) return BAD("matrix", "strategies", "strategies need [matrix] layers");
    if (c->n_layers && !c->n_strategies) return BAD("matrix", "layers", "layers need [matrix] strategies");
    for (int i = 0; i < c->n_layers; i++)
        if (c->layers[i] < 1) return BAD("matrix", "layers", "layers must be at least 1");
    if (matrix) {
        if (!exists(c->calib)) return BAD("data", "calib", "the matrix needs [data] calib, an existing token shard ('%s')", c->calib);
        if (!exists(c->distill_data))
            return BAD("data", "distill", "the matrix needs [data] distill, an existing token shard ('%s')", c->distill_data);
    }
    if (c->val[0] && !exists(c->val)) return BAD("data", "val", "'%s' does not exist", c->val);
    if (c->mmlu[0] && !exists(c->mmlu)) return BAD("eval", "mmlu", "'%s' does not exist", c->mmlu);
    if (c->shots > 5) return BAD("eval", "shots", "shots must be 0..5");
    if (device_parse(c->device_text, &c->device, e))
        return BAD("sweep", "device", "device must be cpu or cuda, not '%s'", c->device_text);
    const char* precision = c->device == DEVICE_CUDA ? "bf16" : "fp32";  // what each backend runs
    if (c->precision[0] && strcmp(c->precision, precision))
        return BAD("bench", "precision", "precision '%s' with device %s: the %s backend runs %s", c->precision,
                   device_name(c->device), device_name(c->device), precision);
    snprintf(c->precision, sizeof c->precision, "%s", precision);
    if (strcmp(c->schedule, "cosine") && strcmp(c->schedule, "linear")) return BAD("distill", "schedule", "schedule must be cosine or linear");
    if (c->seq_len < 1 || c->batch < 1 || c->grad_accum < 1) return BAD("distill", "seq_len", "seq_len, batch and grad_accum must be positive");
    if (c->tokens > 0) {  // a token budget fixes the step count
        double per_step = (double)c->seq_len * c->batch * c->grad_accum;
        c->steps = (int)((c->tokens + per_step - 1) / per_step);
    }
    if (c->steps < 1) return BAD("distill", "steps", "steps must be positive");
    if (c->min_lr > c->lr) return BAD("distill", "min_lr", "min_lr %g is above lr %g", c->min_lr, c->lr);
    Err le;
    if (loss_parse(c->loss, 1, &c->loss_cfg, &le)) return BAD("distill", "loss", "%s", le.msg);
    if (!(c->kd_temp >= 1e-3 && c->kd_temp <= 1e3)) return BAD("distill", "kd_temp", "kd_temp %g must be in [0.001, 1000]", c->kd_temp);
    c->loss_cfg.temperature = (float)c->kd_temp;
    c->loss_cfg.t2_scaling = c->t2;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// cells

static void set_id(const SweepConfig* c, Cell* cell) {
    char key[8192];
    snprintf(key, sizeof key,
             "kind=%d device=%s model=%s teacher=%s calib=%s:%d:%d:%s distill=%s:%d:%d:%d:%d:%g:%g:%d:%s:%s:%g:%d:%g:%g:%d "
             "strategy=%s shape=%d,%d,%d,%d,%d",
             cell->kind, device_name(c->device), cell->model, c->teacher, c->calib, c->calib_windows, c->prune_seq_len, c->aggregation,
             c->distill_data, c->steps, c->seq_len, c->batch, c->grad_accum, c->lr, c->min_lr, c->warmup, c->schedule,
             c->loss, c->kd_temp, c->t2, c->weight_decay, c->clip, c->seed, cell->strategy, cell->layers, cell->ffn,
             cell->hidden, cell->heads, cell->kv_heads);
    snprintf(cell->id, sizeof cell->id, "%016llx", (unsigned long long)fnv1a64(key, strlen(key)));
}

int sweep_cells(const SweepConfig* c, Cell** out, int* n) {
    int axis_l = c->n_layers ? c->n_layers : 1, axis_f = c->n_ffn ? c->n_ffn : 1, axis_h = c->n_hidden ? c->n_hidden : 1;
    int axis_a = c->n_heads ? c->n_heads : 1, axis_k = c->n_kv_heads ? c->n_kv_heads : 1;
    int pruned = c->n_strategies * axis_l * axis_f * axis_h * axis_a * axis_k;
    Cell* cells = xcalloc((size_t)(1 + c->n_baselines + 2 * pruned), sizeof(Cell));
    int k = 0;
    cells[k].kind = CELL_TEACHER;
    snprintf(cells[k].model, sizeof cells[k].model, "%s", c->teacher);
    snprintf(cells[k].label, sizeof cells[k].label, "teacher");
    set_id(c, &cells[k++]);
    for (int i = 0; i < c->n_baselines; i++) {
        cells[k].kind = CELL_BASELINE;
        snprintf(cells[k].model, sizeof cells[k].model, "%s", c->baseline_model[i]);
        snprintf(cells[k].label, sizeof cells[k].label, "baseline-%s", c->baseline_name[i]);
        set_id(c, &cells[k++]);
    }
    for (int s = 0; s < c->n_strategies; s++)
        for (int l = 0; l < axis_l; l++)
            for (int f = 0; f < axis_f; f++)
                for (int h = 0; h < axis_h; h++)
                    for (int a = 0; a < axis_a; a++)
                        for (int kv = 0; kv < axis_k; kv++) {
                            Cell* x = &cells[k++];
                            x->kind = CELL_PRUNED;
                            snprintf(x->strategy, sizeof x->strategy, "%s", c->strategies[s]);
                            x->layers = c->layers[l];
                            x->ffn = c->n_ffn ? c->ffn[f] : 0;
                            x->hidden = c->n_hidden ? c->hidden[h] : 0;
                            x->heads = c->n_heads ? c->heads[a] : 0;
                            x->kv_heads = c->n_kv_heads ? c->kv_heads[kv] : 0;
                            int len = snprintf(x->label, sizeof x->label, "%s-L%d", x->strategy, x->layers);
                            if (x->ffn) len += snprintf(x->label + len, sizeof x->label - (size_t)len, "-ffn%d", x->ffn);
                            if (x->hidden) len += snprintf(x->label + len, sizeof x->label - (size_t)len, "-h%d", x->hidden);
                            if (x->heads) len += snprintf(x->label + len, sizeof x->label - (size_t)len, "-heads%d", x->heads);
                            if (x->kv_heads) snprintf(x->label + len, sizeof x->label - (size_t)len, "-kv%d", x->kv_heads);
                            set_id(c, x);
                        }
    if (c->scratch)
        for (int i = 1 + c->n_baselines, end = k; i < end; i++) {  // each distinct shape, trained from scratch
            int seen = 0;
            for (int j = end; j < k && !seen; j++)
                seen = cells[j].layers == cells[i].layers && cells[j].ffn == cells[i].ffn && cells[j].hidden == cells[i].hidden &&
                       cells[j].heads == cells[i].heads && cells[j].kv_heads == cells[i].kv_heads;
            if (seen) continue;
            Cell* x = &cells[k++];
            *x = cells[i];
            x->kind = CELL_SCRATCH;
            x->strategy[0] = 0;
            char label[128];
            snprintf(label, sizeof label, "scratch-%s", strchr(cells[i].label, '-') + 1);
            snprintf(x->label, sizeof x->label, "%s", label);
            set_id(c, x);
        }
    *out = cells;
    *n = k;
    return 0;
}
