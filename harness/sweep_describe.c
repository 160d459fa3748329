// sweep_describe.c: see sweep_describe.h.
#include "sweep_describe.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../evals/cpu_usage.h"
#include "../kernels/ops.h"
#include "../models/config.h"
#include "../models/file_io.h"
#include "../models/token_shard.h"
#include "cpu_policy.h"
#include "../kernels/cpu/blas_core.h"

void loss_describe(const LossConfig* l, char* out, size_t n) {
    char kd[128] = "";
    if (l->kd == KD_KL) snprintf(kd, sizeof kd, "forward KL(teacher || student)");
    else if (l->kd == KD_RKL) snprintf(kd, sizeof kd, "reverse KL(student || teacher)");
    else if (l->kd == KD_TOPK) snprintf(kd, sizeof kd, "KL over the teacher's top-%d tokens (renormalised)", l->topk);
    char temp[96] = "";
    if (l->kd != KD_NONE)
        snprintf(temp, sizeof temp, " at temperature %g%s", l->temperature, l->t2_scaling ? ", scaled by T^2" : "");
    if (l->kd == KD_NONE) snprintf(out, n, "cross-entropy on the data alone (no teacher signal)");
    else if (l->ce_weight > 0) snprintf(out, n, "%g x cross-entropy + %s%s", l->ce_weight, kd, temp);
    else snprintf(out, n, "%s%s", kd, temp);
}

static long long shard_size(const char* path) {
    Shard s;
    Err e;
    return path[0] && !shard_peek(path, &s, &e) ? (long long)s.n_tokens : -1;
}

int sweep_describe(const SweepConfig* c, const Cell* cells, int n, Err* e) {
    cJSON* j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", c->name);
    cJSON_AddStringToObject(j, "config", c->path);
    ModelConfig t;
    Err ce;
    cJSON* teacher = cJSON_AddObjectToObject(j, "teacher");
    cJSON_AddStringToObject(teacher, "model", c->teacher);
    cJSON_AddNumberToObject(teacher, "correct_steps", c->correct_steps);  // teacher correction (0: none)
    if (c->correct_steps) {
        cJSON_AddNumberToObject(teacher, "correct_lr", c->correct_lr);
        cJSON_AddNumberToObject(teacher, "correct_tokens", (double)c->correct_steps * c->seq_len * c->batch * c->grad_accum);
    }
    if (!config_load(c->teacher, &t, &ce)) {
        cJSON_AddNumberToObject(teacher, "params", (double)config_param_count(&t));
        cJSON_AddNumberToObject(teacher, "layers", t.n_layers);
        cJSON_AddNumberToObject(teacher, "hidden", t.hidden);
        cJSON_AddNumberToObject(teacher, "ffn", t.ffn);
        cJSON_AddNumberToObject(teacher, "heads", t.n_heads);
        cJSON_AddNumberToObject(teacher, "kv_heads", t.n_kv_heads);
    }
    int pruned = 0, scratch = 0, baselines = 0;
    for (int i = 0; i < n; i++) pruned += cells[i].kind == CELL_PRUNED, scratch += cells[i].kind == CELL_SCRATCH, baselines += cells[i].kind == CELL_BASELINE;
    cJSON* m = cJSON_AddObjectToObject(j, "matrix");
    cJSON* st = cJSON_AddArrayToObject(m, "strategies");
    for (int i = 0; i < c->n_strategies; i++) cJSON_AddItemToArray(st, cJSON_CreateString(c->strategies[i]));
    SweepAxis axes[5];
    sweep_axes(c, axes);
    int max_rounds = 1, round_cells = 0;
    for (int a = 0; a < 5; a++) {  // each value as written: "24", or a chain of rounds "30>24"
        cJSON* values = cJSON_AddArrayToObject(m, axes[a].key);
        for (int i = 0; i < axes[a].n; i++) {
            char text[128] = "";
            for (int r = 0, len = 0; r < c->chain_len[a][i] && len < 100; r++)
                len += snprintf(text + len, sizeof text - (size_t)len, "%s%d", r ? ">" : "", c->chain[a][i][r]);
            if (!text[0]) snprintf(text, sizeof text, "%d", axes[a].v[i]);
            cJSON_AddItemToArray(values, cJSON_CreateString(text));
        }
    }
    for (int i = 0; i < n; i++)
        if (cells[i].kind == CELL_PRUNED && cells[i].n_rounds > 1) {
            round_cells++;
            if (cells[i].n_rounds > max_rounds) max_rounds = cells[i].n_rounds;
        }
    cJSON_AddNumberToObject(m, "round_cells", round_cells);  // pruned cells with more than one prune-distill round
    cJSON_AddNumberToObject(m, "max_rounds", max_rounds);
    cJSON_AddNumberToObject(m, "pruned_cells", pruned);
    cJSON* labels = cJSON_AddArrayToObject(m, "cells");  // their labels: a chain "L30>24" is a cell with rounds
    for (int i = 0; i < n; i++)
        if (cells[i].kind == CELL_PRUNED) cJSON_AddItemToArray(labels, cJSON_CreateString(cells[i].label));
    cJSON_AddNumberToObject(m, "scratch_cells", scratch);
    cJSON_AddNumberToObject(m, "baselines", baselines);
    cJSON* pr = cJSON_AddObjectToObject(j, "prune");
    cJSON_AddStringToObject(pr, "calib", c->calib);
    cJSON_AddNumberToObject(pr, "windows", c->calib_windows);
    cJSON_AddNumberToObject(pr, "seq_len", c->prune_seq_len);
    cJSON_AddStringToObject(pr, "aggregation", c->aggregation);
    cJSON* d = cJSON_AddObjectToObject(j, "distill");
    char loss[256];
    loss_describe(&c->loss_cfg, loss, sizeof loss);
    cJSON_AddStringToObject(d, "loss", c->loss);
    cJSON_AddStringToObject(d, "loss_text", loss);
    cJSON_AddStringToObject(d, "data", c->distill_data);
    cJSON_AddNumberToObject(d, "data_tokens", (double)shard_size(c->distill_data));
    cJSON_AddNumberToObject(d, "steps", c->steps);
    cJSON_AddNumberToObject(d, "round_steps", c->round_steps);  // each round before the last of a cell with rounds
    cJSON_AddNumberToObject(d, "round_tokens", (double)c->round_steps * c->seq_len * c->batch * c->grad_accum);
    cJSON_AddStringToObject(d, "kd_scale", c->kd_scale[0] ? c->kd_scale : "none");
    cJSON_AddNumberToObject(d, "tokens_per_step", (double)c->seq_len * c->batch * c->grad_accum);
    cJSON_AddNumberToObject(d, "tokens", (double)c->steps * c->seq_len * c->batch * c->grad_accum);
    cJSON_AddNumberToObject(d, "seq_len", c->seq_len);
    cJSON_AddNumberToObject(d, "lr", c->lr);
    cJSON_AddNumberToObject(d, "min_lr", c->min_lr);
    cJSON_AddNumberToObject(d, "warmup", c->warmup);
    cJSON_AddStringToObject(d, "schedule", c->schedule);
    cJSON_AddNumberToObject(d, "seed", c->seed);
    cJSON* ev = cJSON_AddObjectToObject(j, "eval");
    char bench_json[1200], name[128] = "MMLU", what[512] = "the 57-subject MMLU benchmark";
    int synthetic = 0;
    snprintf(bench_json, sizeof bench_json, "%s/benchmark.json", c->mmlu);
    if (c->mmlu[0] && access(bench_json, F_OK) == 0) {
        char* text = file_read_all(bench_json, NULL, &ce);
        cJSON* b = text ? cJSON_Parse(text) : NULL;
        const cJSON* bn = cJSON_GetObjectItem(b, "name");
        const cJSON* bd = cJSON_GetObjectItem(b, "description");
        if (cJSON_IsString(bn)) snprintf(name, sizeof name, "%s", bn->valuestring);
        if (cJSON_IsString(bd)) snprintf(what, sizeof what, "%s", bd->valuestring);
        synthetic = cJSON_IsTrue(cJSON_GetObjectItem(b, "synthetic"));
        cJSON_Delete(b);
        free(text);
    }
    cJSON_AddBoolToObject(ev, "mmlu", c->mmlu[0] != 0);
    cJSON_AddStringToObject(ev, "benchmark", name);
    cJSON_AddStringToObject(ev, "benchmark_text", what);
    cJSON_AddBoolToObject(ev, "synthetic", synthetic);
    cJSON_AddNumberToObject(ev, "shots", c->shots);
    cJSON_AddStringToObject(ev, "subjects", c->subjects[0] ? c->subjects : "all");
    cJSON_AddNumberToObject(ev, "limit", c->limit);
    cJSON_AddStringToObject(ev, "truncate", c->truncate_text[0] ? c->truncate_text : "tokens");
    cJSON_AddStringToObject(ev, "val", c->val);
    cJSON_AddNumberToObject(ev, "ppl_tokens", c->ppl_tokens);
    cJSON* be = cJSON_AddObjectToObject(j, "bench");
    cJSON_AddItemToObject(be, "batch", cJSON_CreateIntArray(c->bench_batch, c->n_bench_batch));
    cJSON_AddNumberToObject(be, "prompt_len", c->prompt_len);
    cJSON_AddNumberToObject(be, "gen_len", c->gen_len);
    cJSON_AddNumberToObject(be, "rounds", c->repeats);
    cJSON_AddStringToObject(be, "device", device_name(c->device));
    cJSON_AddStringToObject(be, "precision", c->precision);
    cJSON_AddNumberToObject(be, "threads", kernels_cpu_threads());
    cJSON_AddStringToObject(be, "wait_policy", cpu_wait_policy());
    cJSON_AddStringToObject(be, "blas_core", blas_core_name());
    cJSON_AddNumberToObject(be, "cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    char dir[2200];
    snprintf(dir, sizeof dir, "%s/%s", c->out, c->name);
    return json_write_atomic(dir, "sweep.json", j, e);
}
