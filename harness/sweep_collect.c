// sweep_collect.c: results.csv, mmlu_subjects.csv and rounds.csv of a sweep, from the cells its
// manifest lists (sweep_store.h) and nothing else: stages of earlier configs stay in the store, unreported.
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../models/file_io.h"
#include "../models/vec.h"
#include "sweep_plan.h"
#include "sweep_run.h"
#include "sweep_store.h"

static const char* columns[] = {
    "id", "label", "kind", "strategy", "kept_layers", "params", "layers", "hidden", "ffn", "heads", "kv_heads", "rounds",
    "eval_pruned.mmlu_micro", "eval_pruned.mmlu_ci_low", "eval_pruned.mmlu_ci_high", "eval_pruned.val_nll", "distill.steps",
    "distill.steps_all_rounds", "distill.tokens", "distill.tokens_all_rounds", "distill.final_loss", "distill.final_kd",
    "distill.val_loss", "distill.kd_weight_min", "distill.kd_weight_max", "correct.steps", "correct.tokens", "correct.val_loss", "train.tokens", "train.final_loss", "train.val_loss",
    "eval.mmlu_micro", "eval.mmlu_ci_low", "eval.mmlu_ci_high", "eval.mmlu_n", "eval.mmlu_chance", "eval.mmlu_macro",
    "eval.mmlu_stem", "eval.mmlu_humanities", "eval.mmlu_social_sciences", "eval.mmlu_other", "eval.mmlu_shots",
    "eval.mmlu_truncate", "eval.mmlu_truncated", "eval.mmlu_fewer_shots", "eval.val_nll", "bench.prefill_tps_b1",
    "bench.prefill_tps_b1_min", "bench.prefill_tps_b1_max", "bench.decode_tps_b1", "bench.decode_tps_b1_min",
    "bench.decode_tps_b1_max", "bench.ms_per_token_b1", "bench.prefill_ratio_b1", "bench.decode_ratio_b1", "bench.rounds",
    "bench.contended_rounds", "bench.remeasured", "bench.wait_share_max", "bench.cpu_per_wall", "bench.load_1m", "bench.peak_rss_mb",
    "bench.prompt_len", "bench.gen_len", "bench.precision", "prune.seconds", "distill.seconds", "train.seconds",
    "eval.seconds", "bench.seconds", "bench.backend", "bench.threads", "bench.wait_policy", "bench.blas_core", "bench.device",
    "prune.arbor_commit", "distill.arbor_commit", "train.arbor_commit", "eval.arbor_commit", "bench.arbor_commit",
    "prune.layer_ffn", "prune.layer_attention", "prune.hetero_damage",
};

static const char* stages[] = {"prune", "distill", "init", "train", "eval", "bench", "eval_pruned", "correct"};
enum { N_STAGES = 8, S_PRUNE = 0, S_EVAL = 4, S_BENCH = 5 };

// the metrics of cell's stage `name` when it has finished (NULL otherwise)
static cJSON* metrics_of(const char* dir, const cJSON* cell, const char* name) {
    const char* key = manifest_stage_key(cell, name);
    if (!key) return NULL;
    char path[2600];
    snprintf(path, sizeof path, "%s/stages/%s/metrics.json", dir, key);
    return json_read_optional(path);
}

static const char* str_of(const cJSON* o, const char* k) {
    const cJSON* v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int int_of(const cJSON* o, const char* k, int fallback) {
    const cJSON* v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valueint : fallback;
}

static void csv_field(ByteVec* out, const char* v) {
    if (strpbrk(v, ",\"\n")) {  // RFC 4180 quoting
        bytevec_append(out, "\"", 1);
        for (const char* p = v; *p; p++) bytevec_append(out, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
        bytevec_append(out, "\"", 1);
    } else {
        bytevec_append(out, v, strlen(v));
    }
}

static int write_table(const char* dir, const char* name, ByteVec* out, Err* e) {
    char path[2400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = file_write_atomic(path, out->data, out->len, e);
    free(out->data);
    return rc;
}

// DIR/mmlu_subjects.csv: every cell's per-subject, per-category and overall MMLU rows, in manifest order
static int collect_subjects(const char* dir, const cJSON* cells, Err* e) {
    ByteVec out = {0};
    const char* header = "cell,label,level,name,questions,correct,accuracy,shots,max_len,truncate\n";
    bytevec_append(&out, header, strlen(header));
    const cJSON* cell;
    cJSON_ArrayForEach(cell, cells) {
        const char* key = manifest_stage_key(cell, "eval");
        char path[2600];
        snprintf(path, sizeof path, "%s/stages/%s/summary.csv", dir, key ? key : "-");
        if (!key || access(path, F_OK) != 0) continue;
        char* text = file_read_all(path, NULL, e);
        char* rest = text ? strchr(text, '\n') : NULL;  // skip the header
        for (char* line = rest ? strtok(rest + 1, "\n") : NULL; line; line = strtok(NULL, "\n")) {
            char row[1024];
            int len = snprintf(row, sizeof row, "%s,%s,%s\n", str_of(cell, "id"), str_of(cell, "label"), line);
            bytevec_append(&out, row, (size_t)len);
        }
        free(text);
    }
    return write_table(dir, "mmlu_subjects.csv", &out, e);
}

// DIR/rounds.csv: every pruned cell's rounds in order (one row for a one-shot cell): the shape each prune
// reached, the teacher layers it kept, where its scores are, and what the distillation after it read and reached
static int collect_rounds(const char* dir, const cJSON* cells, Err* e) {
    ByteVec out = {0};
    const char* header = "cell,label,round,rounds,layers,hidden,ffn,heads,kv_heads,params,kept_layers,scores,distill_steps,"
                         "distill_tokens,tokens_all_rounds,distill_final_loss,distill_val_loss\n";
    bytevec_append(&out, header, strlen(header));
    const cJSON* cell;
    cJSON_ArrayForEach(cell, cells) {
        if (strcmp(str_of(cell, "kind"), "pruned")) continue;
        int rounds = int_of(cell, "rounds", 1);
        for (int r = 1; r <= rounds; r++) {
            char prune_name[64], distill_name[64];
            sweep_round_stage(rounds, r - 1, "prune", prune_name, sizeof prune_name);
            sweep_round_stage(rounds, r - 1, "distill", distill_name, sizeof distill_name);
            cJSON* pm = metrics_of(dir, cell, prune_name);
            cJSON* dm = metrics_of(dir, cell, distill_name);
            if (pm) {
                char row[4096];  // no field here holds a comma or a quote: labels and kept layers are names and numbers
                const char* num[] = {"layers", "hidden", "ffn", "heads", "kv_heads", "params"};
                size_t len = (size_t)snprintf(row, sizeof row, "%s,%s,%d,%d", str_of(cell, "id"), str_of(cell, "label"), r, rounds);
                for (int k = 0; k < 6; k++) {
                    const cJSON* v = cJSON_GetObjectItem(pm, num[k]);
                    len += (size_t)snprintf(row + len, sizeof row - len, ",%.0f", cJSON_IsNumber(v) ? v->valuedouble : NAN);
                }
                len += (size_t)snprintf(row + len, sizeof row - len, ",%s,stages/%s/model/scores.json", str_of(pm, "kept_layers"),
                                        manifest_stage_key(cell, prune_name));
                const char* dnum[] = {"steps", "tokens", "tokens_all_rounds", "final_loss", "val_loss"};
                for (int k = 0; k < 5; k++) {
                    const cJSON* v = dm ? cJSON_GetObjectItem(dm, dnum[k]) : NULL;
                    if (cJSON_IsNumber(v)) len += (size_t)snprintf(row + len, sizeof row - len, ",%.9g", v->valuedouble);
                    else len += (size_t)snprintf(row + len, sizeof row - len, ",");
                }
                snprintf(row + len, sizeof row - len, "\n");
                bytevec_append(&out, row, strlen(row));
            }
            cJSON_Delete(pm);
            cJSON_Delete(dm);
        }
    }
    return write_table(dir, "rounds.csv", &out, e);
}

static int kind_rank(const char* k) {  // teacher, corrected teacher, baselines, pruned, scratch
    return !strcmp(k, "teacher") ? 0 : !strcmp(k, "teacher-corrected") ? 1 : !strcmp(k, "baseline") ? 2 : !strcmp(k, "pruned") ? 3 : 4;
}

typedef struct {
    const cJSON* cell;
    cJSON* metrics[N_STAGES];
} CellRow;

static int row_order(const void* a, const void* b) {  // by kind, then the config's order
    const CellRow *x = a, *y = b;
    int kx = kind_rank(str_of(x->cell, "kind")), ky = kind_rank(str_of(y->cell, "kind"));
    if (kx != ky) return kx - ky;
    return int_of(x->cell, "order", 0) - int_of(y->cell, "order", 0);
}

int sweep_collect(const char* dir, Err* e) {
    cJSON* manifest = manifest_read(dir, e);
    if (!manifest) return -1;
    const cJSON* cells = cJSON_GetObjectItem(manifest, "cells");
    int n = cJSON_GetArraySize(cells), finished = 0;
    CellRow* rows = xcalloc((size_t)(n ? n : 1), sizeof(CellRow));
    for (int i = 0; i < n; i++) {
        rows[i].cell = cJSON_GetArrayItem(cells, i);
        for (int s = 0; s < N_STAGES; s++) rows[i].metrics[s] = metrics_of(dir, rows[i].cell, stages[s]);
        finished += rows[i].metrics[S_EVAL] != NULL;
    }
    qsort(rows, (size_t)n, sizeof(CellRow), row_order);
    // the fixed columns, then per-batch bench columns beyond batch 1 as found
    size_t nfixed = sizeof columns / sizeof columns[0], ncol = nfixed;
    char** cols = xmalloc(sizeof(char*) * (nfixed + 512));
    for (size_t k = 0; k < nfixed; k++) cols[k] = xstrdup(columns[k]);
    for (int i = 0; i < n; i++) {
        const cJSON* bm = rows[i].metrics[S_BENCH];
        for (const cJSON* it = bm ? bm->child : NULL; it && ncol < nfixed + 512; it = it->next) {
            const char* b = strstr(it->string, "_b");
            if (!b || b[2] < '0' || b[2] > '9' || (!strncmp(b, "_b1", 3) && (b[3] == 0 || b[3] == '_'))) continue;
            char name[200];
            snprintf(name, sizeof name, "bench.%s", it->string);
            int seen = 0;
            for (size_t k = 0; k < ncol && !seen; k++) seen = !strcmp(cols[k], name);
            if (!seen) cols[ncol++] = xstrdup(name);
        }
    }
    ByteVec csv = {0};
    for (size_t k = 0; k < ncol; k++) {
        csv_field(&csv, cols[k]);
        bytevec_append(&csv, k + 1 < ncol ? "," : "\n", 1);
    }
    for (int i = 0; i < n; i++) {
        CellRow* c = &rows[i];
        for (size_t k = 0; k < ncol; k++) {
            const char* col = cols[k];
            const char* dot = strchr(col, '.');
            const cJSON* v = NULL;
            if (!dot) {  // the cell's own facts, else its shape from eval (or prune)
                v = cJSON_GetObjectItem(c->cell, col);
                if (!v && c->metrics[S_EVAL]) v = cJSON_GetObjectItem(c->metrics[S_EVAL], col);
                if (!v && c->metrics[S_PRUNE]) v = cJSON_GetObjectItem(c->metrics[S_PRUNE], col);
            } else {
                for (int s = 0; s < N_STAGES; s++)
                    if (strlen(stages[s]) == (size_t)(dot - col) && !strncmp(col, stages[s], (size_t)(dot - col)) && c->metrics[s])
                        v = cJSON_GetObjectItem(c->metrics[s], dot + 1);
            }
            char cellv[512] = "";
            if (cJSON_IsString(v)) snprintf(cellv, sizeof cellv, "%s", v->valuestring);
            else if (cJSON_IsNumber(v)) snprintf(cellv, sizeof cellv, "%.9g", v->valuedouble);
            csv_field(&csv, cellv);
            bytevec_append(&csv, k + 1 < ncol ? "," : "\n", 1);
        }
    }
    for (int i = 0; i < n; i++)
        for (int s = 0; s < N_STAGES; s++) cJSON_Delete(rows[i].metrics[s]);
    free(rows);
    for (size_t k = 0; k < ncol; k++) free(cols[k]);
    free(cols);
    int rc = write_table(dir, "results.csv", &csv, e) || collect_subjects(dir, cells, e) || collect_rounds(dir, cells, e);
    if (!rc) fprintf(stderr, "collect: %d cells of %s (%d evaluated) -> %s/results.csv\n", n, str_of(manifest, "config"), finished, dir);
    cJSON_Delete(manifest);
    return rc;
}
