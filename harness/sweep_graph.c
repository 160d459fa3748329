// sweep_graph.c: see sweep_graph.h.
#include "sweep_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "../kernels/clock.h"
#include "../models/vec.h"
#include "sweep_plan.h"

const char* stage_kind_name(StageKind k) {
    static const char* names[] = {"correct", "prune", "eval_pruned", "distill", "init", "train", "eval", "bench"};
    return names[k];
}

static int hash_one(HashMemo* memo, const char* path, int lenient, char out[PLAN_KEY], int* missing, Err* e) {
    out[0] = 0;
    if (!path[0]) return 0;
    if (lenient && access(path, F_OK) != 0) return *missing = 1, 0;
    return content_hash(memo, path, out, e);
}

int sweep_hash_inputs(const SweepConfig* c, int lenient, InputHashes* in, Err* e) {
    memset(in, 0, sizeof *in);
    char memo_path[2200];
    snprintf(memo_path, sizeof memo_path, "%s/%s/content_hashes.tsv", c->out, c->name);
    HashMemo memo;
    char sweep_dir[2100];
    snprintf(sweep_dir, sizeof sweep_dir, "%s/%s", c->out, c->name);
    // kept beside the results; a dry run (or a plan made before any run) creates nothing
    hash_memo_open(&memo, access(sweep_dir, F_OK) == 0 && (!lenient || access(memo_path, F_OK) == 0) ? memo_path : NULL);
    double t0 = now_seconds();
    int matrix = c->n_strategies > 0, *m = &in->missing;
    int rc = hash_one(&memo, c->teacher, lenient, in->teacher, m, e);
    if (!rc && matrix) rc = hash_one(&memo, c->calib, lenient, in->calib, m, e);
    if (!rc && (matrix || c->correct_steps)) rc = hash_one(&memo, c->distill_data, lenient, in->distill, m, e);
    if (!rc) rc = hash_one(&memo, c->val, lenient, in->val, m, e);
    if (!rc) rc = hash_one(&memo, c->mmlu, lenient, in->mmlu, m, e);
    if (!rc) rc = hash_one(&memo, c->tokenizer, lenient, in->tokenizer, m, e);
    for (int i = 0; i < c->n_baselines && !rc; i++) rc = hash_one(&memo, c->baseline_model[i], lenient, in->baseline[i], m, e);
    if (memo.bytes_hashed > (1u << 30))
        fprintf(stderr, "sweep: hashed %.1f GB of inputs in %.0f s (remembered in %s)\n", memo.bytes_hashed / 1e9, now_seconds() - t0,
                memo_path);
    if (!rc && memo.file[0]) {
        Err ignored;
        if (hash_memo_save(&memo, &ignored)) fprintf(stderr, "sweep: could not save the hash memo: %s\n", ignored.msg);
    }
    hash_memo_free(&memo);
    return rc ? err_prefix(e, "hashing the sweep's inputs") : 0;
}

// appends stage (settings, input keys) to pc and names it by the hash of its text
static PlanStage* add_stage(PlanCell* pc, const SweepConfig* c, StageKind kind, int round, int model_from, const char* inputs) {
    PlanStage* s = &pc->stages[pc->n_stages++];
    s->kind = kind, s->round = round, s->model_from = model_from;
    if (kind == STAGE_PRUNE || kind == STAGE_DISTILL) sweep_round_stage(pc->cell.n_rounds, round, stage_kind_name(kind), s->name, sizeof s->name);
    else snprintf(s->name, sizeof s->name, "%s", stage_kind_name(kind));
    char settings[4096];
    sweep_stage_plan(c, &pc->cell, s->name, settings, sizeof settings);
    size_t n = strlen(settings) + strlen(inputs) + 8;
    s->text = xmalloc(n);
    snprintf(s->text, n, "%s | %s", settings, inputs);
    XXH128_hash_t h = XXH3_128bits(s->text, strlen(s->text));
    snprintf(s->key, sizeof s->key, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    return s;
}

// the key of the model stage i of pc made (or the teacher's, for -1 in a pruned cell)
static const char* model_of(const PlanCell* pc, int i, const char* fallback) { return i >= 0 ? pc->stages[i].key : fallback; }

void sweep_plan_build(const SweepConfig* c, const Cell* cells, int n, const InputHashes* in, SweepPlan* p) {
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "%s/%s", c->out, c->name);
    p->in = *in;
    p->n = n;
    p->cells = xcalloc((size_t)(n ? n : 1), sizeof(PlanCell));
    const char* tok = c->tokenizer[0] ? in->tokenizer : in->teacher;  // the teacher's folder holds it unless one is named
    char eval_inputs[512];
    snprintf(eval_inputs, sizeof eval_inputs, "mmlu=%s tokenizer=%s val=%s", in->mmlu, c->mmlu[0] ? tok : "", in->val);
    // the corrected teacher (one stage, in each chain that needs it)
    char correct_inputs[256];
    snprintf(correct_inputs, sizeof correct_inputs, "teacher=%s data=%s", in->teacher, in->distill);
    snprintf(p->teacher_key, sizeof p->teacher_key, "%s", in->teacher);
    snprintf(p->teacher_dir, sizeof p->teacher_dir, "%s", c->teacher);
    for (int i = 0; i < n; i++) {
        PlanCell* pc = &p->cells[i];
        pc->cell = cells[i];
        pc->model_stage = -1;
        const Cell* cell = &pc->cell;
        if (c->correct_steps && (cell->kind == CELL_CORRECTED || cell->kind == CELL_PRUNED)) {
            PlanStage* s = add_stage(pc, c, STAGE_CORRECT, 0, -1, correct_inputs);  // the same stage in every chain
            snprintf(p->teacher_key, sizeof p->teacher_key, "%s", s->key);
            snprintf(p->teacher_dir, sizeof p->teacher_dir, "%s/stages/%s/model", p->dir, s->key);
            if (cell->kind == CELL_CORRECTED) pc->model_stage = 0;
        }
        char inputs[1024];
        const char* teacher = p->teacher_key;  // the checkpoint's content, or the correction above (in this cell's chain)
        if (cell->kind == CELL_PRUNED) {
            int source = -1;  // round 0 prunes the teacher; each later round the distill before it
            for (int r = 0; r < cell->n_rounds; r++) {
                snprintf(inputs, sizeof inputs, "model=%s teacher=%s calib=%s", model_of(pc, source, teacher), teacher, in->calib);
                int prune = pc->n_stages;
                add_stage(pc, c, STAGE_PRUNE, r, source, inputs);
                if (r == cell->n_rounds - 1 && (c->mmlu[0] || c->val[0])) {  // what distillation has to recover
                    snprintf(inputs, sizeof inputs, "model=%s %s", pc->stages[prune].key, eval_inputs);
                    add_stage(pc, c, STAGE_EVAL_PRUNED, r, prune, inputs);
                }
                snprintf(inputs, sizeof inputs, "student=%s teacher=%s data=%s", pc->stages[prune].key, teacher, in->distill);
                source = pc->n_stages;
                add_stage(pc, c, STAGE_DISTILL, r, prune, inputs);
            }
            pc->model_stage = source;
        } else if (cell->kind == CELL_SCRATCH) {
            snprintf(inputs, sizeof inputs, "shape_of=%s", in->teacher);  // the teacher's config.json with the cell's targets
            add_stage(pc, c, STAGE_INIT, 0, -1, inputs);
            snprintf(inputs, sizeof inputs, "model=%s data=%s", pc->stages[pc->n_stages - 1].key, in->distill);
            add_stage(pc, c, STAGE_TRAIN, 0, pc->n_stages - 1, inputs);
            pc->model_stage = pc->n_stages - 1;
        }
        const char* checkpoint = in->teacher;
        for (int b = 0; b < c->n_baselines; b++)
            if (cell->kind == CELL_BASELINE && !strcmp(cell->model, c->baseline_model[b])) checkpoint = in->baseline[b];
        snprintf(pc->model_key, sizeof pc->model_key, "%s", model_of(pc, pc->model_stage, checkpoint));
        snprintf(inputs, sizeof inputs, "model=%s %s", pc->model_key, eval_inputs);
        add_stage(pc, c, STAGE_EVAL, 0, pc->model_stage, inputs);
    }
    // benches last: each reads its model and the teacher's (the reference its ratios are taken against)
    for (int i = 0; i < n; i++) {
        PlanCell* pc = &p->cells[i];
        char inputs[256];
        snprintf(inputs, sizeof inputs, "model=%s reference=%s", pc->model_key, p->cells[0].model_key);
        add_stage(pc, c, STAGE_BENCH, 0, pc->model_stage, inputs);
    }
}

void sweep_plan_free(SweepPlan* p) {
    for (int i = 0; i < p->n; i++)
        for (int s = 0; s < p->cells[i].n_stages; s++) free(p->cells[i].stages[s].text);
    free(p->cells);
    memset(p, 0, sizeof *p);
}

const PlanStage* plan_stage(const PlanCell* pc, const char* name) {
    for (int s = 0; s < pc->n_stages; s++)
        if (!strcmp(pc->stages[s].name, name)) return &pc->stages[s];
    return NULL;
}

const PlanCell* plan_cell(const SweepPlan* p, const char* name) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->cells[i].cell.id, name) || !strcmp(p->cells[i].cell.label, name)) return &p->cells[i];
    return NULL;
}
