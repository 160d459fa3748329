// sweep_run.c: see sweep_run.h.
#include "sweep_run.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arbor_commit.h"  // ARBOR_COMMIT, generated at build time
#include "../distill/trainer.h"
#include "../evals/perplexity.h"
#include "../kernels/clock.h"
#include "../mmlu/mmlu_eval.h"
#include "../models/dir_lock.h"
#include "../models/file_io.h"
#include "../models/vec.h"
#include "../prune/search.h"
#include "../prune/block_library.h"
#include "../prune/hetero_search.h"
#include "../prune/hetero_surgery.h"
#include "sweep_bench.h"
#include "sweep_describe.h"
#include "sweep_graph.h"
#include "sweep_plan.h"
#include "sweep_ranks.h"
#include "sweep_store.h"

// One stage about to run: where its inputs are.
typedef struct {
    const SweepConfig* c;
    const SweepPlan* p;
    const PlanCell* pc;
    const PlanStage* st;
    char model_dir[2600];  // the model it reads: the output of st->model_from, else the checkpoint (or the teacher)
} Ctx;

typedef int (*StageFn)(Ctx* x, const char* tmp, cJSON* metrics, Err* e);

// the keys this run has run (with --force a stage two cells share runs once)
typedef struct {
    char (*keys)[PLAN_KEY];
    int n, cap;
} RanKeys;

static int ran_has(const RanKeys* r, const char* key) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->keys[i], key)) return 1;
    return 0;
}

static void ran_add(RanKeys* r, const char* key) {
    if (r->n == r->cap) r->keys = xrealloc(r->keys, sizeof *r->keys * (size_t)(r->cap = r->cap ? 2 * r->cap : 32));
    snprintf(r->keys[r->n++], PLAN_KEY, "%s", key);
}

// a finished stage's metrics (NULL when it has not finished)
static cJSON* stage_metrics(const SweepPlan* p, const PlanStage* st) {
    char path[2600];
    snprintf(path, sizeof path, "%s/stages/%s/metrics.json", p->dir, st->key);
    return json_read_optional(path);
}

// the folder of the model stage i of pc wrote (i < 0: the cell's own checkpoint, or the teacher for a
// pruned cell's first prune)
static void model_dir_of(const SweepPlan* p, const PlanCell* pc, int i, char* out, size_t n) {
    if (i >= 0) snprintf(out, n, "%.2100s/stages/%.32s/model", p->dir, pc->stages[i].key);
    else if (pc->cell.kind == CELL_PRUNED) snprintf(out, n, "%.2400s", p->teacher_dir);
    else snprintf(out, n, "%.1024s", pc->cell.model);
}

// ---- stages

static int add_shape(cJSON* m, const ModelConfig* c) {
    cJSON_AddNumberToObject(m, "params", (double)config_param_count(c));
    cJSON_AddNumberToObject(m, "layers", c->n_layers);
    cJSON_AddNumberToObject(m, "hidden", c->hidden);
    cJSON_AddNumberToObject(m, "ffn", c->ffn);
    cJSON_AddNumberToObject(m, "heads", c->n_heads);
    cJSON_AddNumberToObject(m, "kv_heads", c->n_kv_heads);
    return 0;
}

// The layers of the teacher that the source model of a prune holds: all of them when it prunes the
// teacher; after a round, the kept layers of the prune that made the distill it reads.
static int source_layers(const Ctx* x, int n, int* teacher_layer, Err* e) {
    for (int i = 0; i < n; i++) teacher_layer[i] = i;
    if (x->st->model_from < 0) return 0;
    const PlanStage* prev_prune = &x->pc->stages[x->pc->stages[x->st->model_from].model_from];
    cJSON* j = stage_metrics(x->p, prev_prune);  // done: this prune's key names it
    const cJSON* kept = cJSON_GetObjectItem(j, "kept_layers");
    int got = 0;
    for (const char* p = cJSON_IsString(kept) ? kept->valuestring : ""; *p && got < n;) {
        char* end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        teacher_layer[got++] = (int)v;
        p = end;
    }
    cJSON_Delete(j);
    return got == n ? 0 : err_set(e, "%s/stages/%s/metrics.json: kept_layers does not list the %d layers of the round's model",
                                  x->p->dir, prev_prune->key, n);
}

// A heterogeneous cell's model: the teacher's block library scored on the calibration windows, the
// per-layer architecture of least damage within the cell's parameter share (exact, GLPK), made a model;
// metrics get the per-layer widths and attention and the planned damage.
static int hetero_prune(const SweepConfig* c, const Cell* cell, const Model* m, const Shard* calib, const Importance* imp,
                        Model* out, cJSON* metrics, Err* e) {
    CalibOptions co;
    plan_calib(c, &co);
    BlockLibraryOptions o = {0};
    o.n_widths = c->n_hetero_widths;
    for (int k = 0; k < o.n_widths; k++) o.widths[k] = c->hetero_width[k];
    o.attention_variants = c->hetero_attention;
    o.metric = !strcmp(c->hetero_metric, "loss") ? BLOCK_DAMAGE_LOSS : BLOCK_DAMAGE_KL;
    o.windows = co.windows, o.seq_len = co.seq_len, o.batch = co.batch;
    BlockVariant* v;
    int n, L = m->cfg.n_layers;
    if (block_library_score(m, calib, imp, &o, &v, &n, e)) return -1;
    HeteroRegime regime = {1, c->prune_seq_len, {"h100", 3350, 989}};  // only the parameter budget is read
    HeteroFixed fixed;
    hetero_fixed_costs(&m->cfg, &regime, &fixed);
    block_library_costs(&m->cfg, &regime, v, n);
    HeteroBudget b = {cell->hetero_ratio * (double)config_param_count(&m->cfg), 0, 0};
    int* choice = xmalloc(sizeof(int) * (size_t)L);
    int* widths = xmalloc(sizeof(int) * (size_t)L);
    unsigned char* attention = xmalloc((size_t)L);
    double damage = 0;
    int rc = hetero_search(v, n, L, &fixed, &b, choice, &damage, e);
    if (rc > 0) rc = err_prefix(e, "%s: parameter share %g", cell->label, cell->hetero_ratio);
    char ffn_list[4096] = "", attn_list[4096] = "";
    if (!rc) hetero_choice_layers(v, choice, L, widths, attention, ffn_list, attn_list, sizeof ffn_list);
    if (!rc) rc = prune_hetero(m, imp, widths, attention, out, e);
    if (!rc) {
        cJSON_AddStringToObject(metrics, "layer_ffn", ffn_list);
        cJSON_AddStringToObject(metrics, "layer_attention", attn_list);
        cJSON_AddNumberToObject(metrics, "hetero_damage", damage);
        cJSON_AddNumberToObject(metrics, "hetero_ratio", cell->hetero_ratio);
        fprintf(stderr, "  %s: FFN widths %s, attention %s, planned damage %.6g\n", cell->label, ffn_list, attn_list, damage);
    }
    free(choice), free(widths), free(attention), free(v);
    return rc;
}

static int prune_stage(Ctx* x, const char* tmp, cJSON* metrics, Err* e) {
    const SweepConfig* c = x->c;
    const Cell* cell = &x->pc->cell;
    int round = x->st->round;
    Model m, p;
    Shard calib;
    if (model_load(&m, x->model_dir, e)) return -1;
    int rc = shard_open(&calib, c->calib, e);
    Importance imp;
    int have = 0, keep[1024], n_keep = 0, teacher_layer[1024];
    PruneTarget t;
    plan_prune_target(cell, round, &t);
    if (!t.layers) t.layers = m.cfg.n_layers;  // this round keeps the depth
    if (!rc) rc = source_layers(x, m.cfg.n_layers, teacher_layer, e);
    if (!rc) {
        CalibOptions co;
        plan_calib(c, &co);
        calib_for_target(&co, m.cfg.n_layers, &t);  // the block size it picks
        rc = importance_compute(&m, &calib, &co, &imp, e);
        have = !rc;
    }
    if (!rc && !strcmp(cell->strategy, "hetero")) {  // the block library, the best plan under the share, its model
        rc = hetero_prune(c, cell, &m, &calib, &imp, &p, metrics, e);
        for (int l = 0; l < m.cfg.n_layers; l++) keep[l] = l;
        n_keep = m.cfg.n_layers;
    } else if (!rc && t.depth == DEPTH_PPL) {
        int64_t n;
        int* tokens = shard_read_tokens(&calib, 8192, &n);
        rc = prune_depth_ppl(&m, tokens, n, c->prune_seq_len, t.layers, keep, &n_keep, e);
        free(tokens);
    } else if (!rc) {
        rc = prune_pick_layers(&m.cfg, &imp, &t, keep, &n_keep, e);
    }
    if (!rc && strcmp(cell->strategy, "hetero")) rc = prune_model(&m, &imp, &t, keep, n_keep, &p, e);
    if (!rc) {
        // the kept layers in the teacher's numbering, whatever the round: the lineage the hidden-state loss
        // reads, and what results.csv reports
        int kept_in_teacher[1024];
        for (int i = 0; i < n_keep; i++) kept_in_teacher[i] = teacher_layer[keep[i]];
        char path[2700];
        snprintf(path, sizeof path, "%s/model", tmp);
        rc = prune_write(&p, &imp, &m.cfg, x->p->teacher_dir, cell->strategy, kept_in_teacher, n_keep, path, ST_F32, e);
        add_shape(metrics, &p.cfg);
        char kept[4096] = "";
        for (int i = 0, len = 0; i < n_keep && len < (int)sizeof kept - 8; i++)
            len += snprintf(kept + len, sizeof kept - (size_t)len, "%s%d", i ? " " : "", kept_in_teacher[i]);
        cJSON_AddStringToObject(metrics, "kept_layers", kept);
        cJSON_AddNumberToObject(metrics, "round", round + 1);
        cJSON_AddStringToObject(metrics, "source", x->model_dir);
        model_free(&p);
    }
    if (have) importance_free(&imp);
    shard_close(&calib);
    model_free(&m);
    return rc;
}

// Trains student_dir as tc says (distilled from teacher_dir, or on the data alone when it is NULL).
static int train_common(Ctx* x, const char* tmp, cJSON* metrics, const char* student_dir, const char* teacher_dir, TrainConfig tc,
                        Err* e) {
    const SweepConfig* c = x->c;
    Model s, t;
    Shard data;
    int with_teacher = teacher_dir != NULL;
    if (model_load(&s, student_dir, e)) return -1;
    int rc = shard_open(&data, c->distill_data, e);
    if (!rc && with_teacher) rc = model_load(&t, teacher_dir, e);
    if (!rc) {
        tc.out_dir = tmp;
        tc.resume = 1;  // continues the state a killed run of this same stage saved (stage() kept the folder)
        // ARBOR_TEST_STOP_AT=N: end as if killed after step N (tests of the resume path)
        if (getenv("ARBOR_TEST_STOP_AT")) tc.stop_at = atoi(getenv("ARBOR_TEST_STOP_AT"));
        TrainSummary sum;
        if (sweep_distill_ranks(c) > 1)  // the cluster's launcher starts the ranks; they write tmp as this would
            rc = sweep_train_ranks(c, &tc, teacher_dir, student_dir, &sum, e);
        else
            rc = train_run(&s, with_teacher ? &t : NULL, &data, &tc, &sum, e);
        if (with_teacher) model_free(&t);
        if (!rc && tc.stop_at > 0 && tc.stop_at < tc.steps)
            rc = err_set(e, "stopped after step %d of %d (ARBOR_TEST_STOP_AT): re-run to continue", tc.stop_at, tc.steps);
        if (!rc) {
            cJSON_AddNumberToObject(metrics, "final_loss", sum.last.total);
            cJSON_AddNumberToObject(metrics, "final_kd", sum.last.kd);
            if (!isnan(sum.val_loss)) cJSON_AddNumberToObject(metrics, "val_loss", sum.val_loss);
            cJSON_AddNumberToObject(metrics, "tokens_per_s", sum.tokens_per_s);
            double kd[2];  // the KD weights of every logged step, the parts before a resume too
            TrainSummary logged;
            Err ignored;
            if (with_teacher && !train_log_read(tmp, &logged, kd, &ignored) && !isnan(kd[0]))
                cJSON_AddNumberToObject(metrics, "kd_weight_min", kd[0]), cJSON_AddNumberToObject(metrics, "kd_weight_max", kd[1]);
        }
        cJSON_AddNumberToObject(metrics, "tokens", (double)tc.steps * c->batch * c->grad_accum * c->seq_len);
        cJSON_AddNumberToObject(metrics, "steps", tc.steps);
    }
    shard_close(&data);
    model_free(&s);
    return rc;
}

static int distill_stage(Ctx* x, const char* tmp, cJSON* metrics, Err* e) {
    const SweepConfig* c = x->c;
    int round = x->st->round, last = round == x->pc->cell.n_rounds - 1;
    TrainConfig tc;
    plan_train(c, 1, last ? c->steps : c->round_steps, &tc);
    // every round distils from the same teacher; the tokens of this round and of the rounds before it
    cJSON_AddNumberToObject(metrics, "round", round + 1);
    cJSON_AddNumberToObject(metrics, "tokens_all_rounds", ((double)round * c->round_steps + tc.steps) * c->batch * c->grad_accum * c->seq_len);
    cJSON_AddNumberToObject(metrics, "steps_all_rounds", (double)round * c->round_steps + tc.steps);
    return train_common(x, tmp, metrics, x->model_dir, x->p->teacher_dir, tc, e);
}

// teacher correction: the teacher trained on the distillation data (cross-entropy) before it teaches
static int correct_stage(Ctx* x, const char* tmp, cJSON* metrics, Err* e) {
    TrainConfig tc;
    plan_correct(x->c, &tc);
    return train_common(x, tmp, metrics, x->c->teacher, NULL, tc, e);
}

static int init_stage(Ctx* x, const char* tmp, cJSON* metrics, Err* e) {
    // the shape of the matching pruned model: the teacher's config with the cell's targets
    const Cell* cell = &x->pc->cell;
    ModelConfig c;
    if (config_load(x->c->teacher, &c, e)) return -1;
    int NKV = cell->kv_heads ? cell->kv_heads : c.n_kv_heads;
    c.n_heads = cell->heads ? cell->heads : c.n_heads * NKV / c.n_kv_heads;
    c.n_kv_heads = NKV;
    c.n_layers = cell->layers, c.ffn = cell->ffn ? cell->ffn : c.ffn, c.hidden = cell->hidden ? cell->hidden : c.hidden;
    if (config_validate(&c, "scratch shape", e)) return -1;
    char path[2400];
    snprintf(path, sizeof path, "%s/model", tmp);
    add_shape(metrics, &c);
    // N(0, 0.02) matrices as transformers initialises; seed from the sweep's
    return checkpoint_write_random(&c, (uint64_t)x->c->seed + 17, path, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, e);
}

static int train_stage(Ctx* x, const char* tmp, cJSON* metrics, Err* e) {
    TrainConfig tc;
    plan_train(x->c, 0, x->c->steps, &tc);
    return train_common(x, tmp, metrics, x->model_dir, NULL, tc, e);
}

static void add_mmlu(cJSON* metrics, const MmluResult* r) {
    MmluSummary sum;
    mmlu_summarize(r, &sum);
    cJSON_AddNumberToObject(metrics, "mmlu_micro", sum.micro);
    // the 95% Wilson interval of the accuracy over these n questions, and what guessing scores
    double n_q = sum.total, z = 1.959964, p = sum.micro;
    double mid = (p + z * z / (2 * n_q)) / (1 + z * z / n_q);
    double half = z / (1 + z * z / n_q) * sqrt(p * (1 - p) / n_q + z * z / (4 * n_q * n_q));
    cJSON_AddNumberToObject(metrics, "mmlu_n", sum.total);
    cJSON_AddNumberToObject(metrics, "mmlu_ci_low", n_q > 0 ? mid - half : 0);
    cJSON_AddNumberToObject(metrics, "mmlu_ci_high", n_q > 0 ? mid + half : 0);
    cJSON_AddNumberToObject(metrics, "mmlu_chance", 0.25);  // four options
    cJSON_AddNumberToObject(metrics, "mmlu_macro", sum.macro);
    cJSON_AddNumberToObject(metrics, "mmlu_shots", r->shots);
    cJSON_AddStringToObject(metrics, "mmlu_truncate", mmlu_truncation_name(r->truncation));
    cJSON_AddNumberToObject(metrics, "mmlu_truncated", r->n_truncated);  // contexts cut to fit the model
    cJSON_AddNumberToObject(metrics, "mmlu_fewer_shots", r->n_fewer_shots);
    for (int k = 0; k < MMLU_N_CATEGORIES; k++) {
        char key[64];
        snprintf(key, sizeof key, "mmlu_%s", mmlu_category_name((MmluCategory)k));
        if (sum.cat_n[k]) cJSON_AddNumberToObject(metrics, key, (double)sum.cat_correct[k] / sum.cat_n[k]);
    }
}

static int eval_stage(Ctx* x, const char* tmp, cJSON* metrics, Err* e) {
    const SweepConfig* c = x->c;
    Model m;
    if (model_load(&m, x->model_dir, e)) return -1;
    add_shape(metrics, &m.cfg);
    Engine en;
    int rc = engine_open(&en, &m, c->device, e);
    if (rc) {
        model_free(&m);
        return -1;
    }
    cJSON_AddStringToObject(metrics, "device", device_name(c->device));
    if (c->mmlu[0]) {
        Tokenizer tok;
        rc = tokenizer_load(&tok, plan_tokenizer(c), e);
        if (!rc) {
            MmluOptions o;
            plan_mmlu(c, &o);
            MmluResult r;
            rc = mmlu_evaluate_on(&en, &tok, c->mmlu, &o, &r, e) || mmlu_write_results(&r, tmp, e);
            if (!rc) {
                add_mmlu(metrics, &r);
                mmlu_result_free(&r);
            }
            tokenizer_free(&tok);
        }
    }
    if (!rc && c->val[0]) {
        Shard v;
        rc = shard_open(&v, c->val, e);
        if (!rc) {
            int64_t n;
            int* tokens = shard_read_tokens(&v, (uint64_t)c->ppl_tokens, &n);
            PplOptions po;
            plan_ppl(c, &po);
            PplResult pr;
            rc = perplexity_eval_on(&en, tokens, n, &po, &pr, e);
            if (!rc) cJSON_AddNumberToObject(metrics, "val_nll", pr.mean_nll);
            free(tokens);
            shard_close(&v);
        }
    }
    engine_close(&en);
    model_free(&m);
    return rc;
}

static StageFn stage_fn(StageKind k) {
    switch (k) {
    case STAGE_CORRECT: return correct_stage;
    case STAGE_PRUNE: return prune_stage;
    case STAGE_DISTILL: return distill_stage;
    case STAGE_INIT: return init_stage;
    case STAGE_TRAIN: return train_stage;
    case STAGE_EVAL_PRUNED:
    case STAGE_EVAL: return eval_stage;
    case STAGE_BENCH: break;
    }
    return NULL;
}

// ---- running a stage against the store

typedef struct {
    const SweepConfig* c;
    const SweepPlan* p;
    const char* stage_only;  // --stage: run only this stage; the ones before must be done
    int force;
    RanKeys ran;
    int worked;              // a stage of the current cell ran
    int reused, run;         // stages reused / run so far
} Runner;

// by := the arbor commit recorded in DIR/metrics.json ("" when none is)
static void stage_commit(const char* dir, char* by, size_t n) {
    char path[2700];
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    cJSON* j = json_read_optional(path);
    const cJSON* c = cJSON_GetObjectItemCaseSensitive(j, "arbor_commit");
    snprintf(by, n, "%s", cJSON_IsString(c) ? c->valuestring : "");
    cJSON_Delete(j);
}

static void say_reused(const PlanCell* pc, const PlanStage* st, const char* final_dir) {
    char by[64] = "";  // a result another build computed is used, and said so
    stage_commit(final_dir, by, sizeof by);
    if (strcmp(by, ARBOR_COMMIT))
        fprintf(stderr, "sweep: %s %s: reused %.12s (by arbor %s; this build is %s: --force re-runs it)\n", pc->cell.label, st->name,
                st->key, by[0] ? by : "of unknown commit", ARBOR_COMMIT);
    else
        fprintf(stderr, "sweep: %s %s: reused %.12s\n", pc->cell.label, st->name, st->key);
}

static int wanted(const Runner* r, const PlanStage* st) { return !r->stage_only || !strcmp(r->stage_only, st->name); }

static int run_stage(Runner* r, const PlanCell* pc, const PlanStage* st, Err* e) {
    const SweepPlan* p = r->p;
    char final_dir[2400], tmp[2500];
    store_stage_dir(p->dir, st->key, final_dir, sizeof final_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", final_dir);
    int redo = r->force && wanted(r, st) && !ran_has(&r->ran, st->key);  // --force: once per run
    int lock = -1;
    if (!store_has(p->dir, st->key) || redo) {
        if (!wanted(r, st))
            return err_set(e, "%s: --stage %s needs stage %s done first (its inputs or settings changed, or it never ran)",
                           pc->cell.label, r->stage_only, st->name);
        if (store_lock(p->dir, st->key, &lock, e)) return -1;
    }
    if (store_has(p->dir, st->key) && !redo) {  // done before, or by another run (a Slurm task) while this one waited
        dir_unlock(lock);
        say_reused(pc, st, final_dir);
        r->reused++;
        return 0;
    }
    // a training stage killed part way continues from the state it saved in KEY.tmp (the key names exactly
    // its inputs and settings); anything else starts over
    int training = st->kind == STAGE_DISTILL || st->kind == STAGE_TRAIN || st->kind == STAGE_CORRECT;
    int resume = training && access(tmp, F_OK) == 0 && !redo;
    if (!resume && (remove_tree(tmp, e) || make_dirs(tmp, e))) return dir_unlock(lock), -1;
    if (store_write_stage_info(tmp, st->name, pc->cell.label, st->key, st->text, e)) return dir_unlock(lock), -1;
    fprintf(stderr, "sweep: %s %s ...%s\n", pc->cell.label, st->name, resume ? " (resuming its saved state)" : "");
    r->worked = 1, r->run++;
    Ctx x = {r->c, p, pc, st, ""};
    model_dir_of(p, pc, st->model_from, x.model_dir, sizeof x.model_dir);
    cJSON* metrics = cJSON_CreateObject();
    // the seconds of every part a resumed stage ran, this one included
    char prev_path[2600];
    snprintf(prev_path, sizeof prev_path, "%s/seconds_so_far", tmp);
    char* prev = resume && access(prev_path, F_OK) == 0 ? file_read_all(prev_path, NULL, e) : NULL;
    double before = prev ? atof(prev) : 0, t0 = now_seconds();
    free(prev);
    int rc = stage_fn(st->kind)(&x, tmp, metrics, e);
    double seconds = before + now_seconds() - t0;
    if (rc && training) {  // a stopped training stage resumes: keep its time
        char text[64];
        int len = snprintf(text, sizeof text, "%.3f", seconds);
        Err ignored;
        file_write_atomic(prev_path, text, (size_t)len, &ignored);
    }
    cJSON_AddNumberToObject(metrics, "seconds", seconds);
    cJSON_AddStringToObject(metrics, "arbor_commit", ARBOR_COMMIT);
    if (!rc) rc = json_write_atomic(tmp, "metrics.json", metrics, e);
    else cJSON_Delete(metrics);
    if (!rc) unlink(prev_path);
    if (!rc && (remove_tree(final_dir, e) || rename(tmp, final_dir) != 0))
        rc = err_set(e, "%s: cannot rename into place", final_dir);
    if (!rc) fsync_parent(final_dir), ran_add(&r->ran, st->key);
    dir_unlock(lock);
    return rc ? err_prefix(e, "%s %s", pc->cell.label, st->name) : 0;
}

// the benches of cells (their indices in the plan) that need one, measured together beside the teacher
static int run_benches(Runner* r, const int* cells, int n, Err* e) {
    const SweepPlan* p = r->p;
    if (r->stage_only && strcmp(r->stage_only, "bench")) return 0;
    BenchMember* mem = xcalloc((size_t)n + 1, sizeof(BenchMember));
    const PlanStage** stages = xcalloc((size_t)n + 1, sizeof(PlanStage*));
    int* locks = xmalloc(sizeof(int) * ((size_t)n + 1));
    int m = 0, pending = 0, rc = 0, teacher_selected = 0;
    for (int i = 0; i < n; i++) teacher_selected |= cells[i] == 0;
    // the teacher first: the reference every ratio is taken against, written only when its own bench is due
    for (int k = -1; k < n && !rc; k++) {
        if (k >= 0 && cells[k] == 0) continue;
        const PlanCell* pc = &p->cells[k < 0 ? 0 : cells[k]];
        const PlanStage* st = stages[m] = plan_stage(pc, "bench");
        BenchMember* b = &mem[m];
        *b = (BenchMember){&pc->cell, "", "", st->text, 0};
        model_dir_of(p, pc, pc->model_stage, b->model_dir, sizeof b->model_dir);
        store_stage_dir(p->dir, st->key, b->stage_dir, sizeof b->stage_dir);
        int selected = k >= 0 || teacher_selected, redo = r->force && !ran_has(&r->ran, st->key);
        locks[m] = -1;
        if (selected && (!store_has(p->dir, st->key) || redo)) {
            rc = store_lock(p->dir, st->key, &locks[m], e);  // waits while another run measures it
            b->write = !rc && (!store_has(p->dir, st->key) || redo);
        }
        if (selected && !b->write && !rc) say_reused(pc, st, b->stage_dir), r->reused++;
        pending += b->write;
        m++;
    }
    if (!rc && pending) {
        rc = sweep_bench_group(r->c, mem, m, e);
        for (int i = 0; i < m && !rc; i++)
            if (mem[i].write) ran_add(&r->ran, stages[i]->key), r->run++;
    }
    for (int i = 0; i < m; i++) dir_unlock(locks[i]);
    free(locks);
    free(stages);
    free(mem);
    return rc;
}

// ---- the run

static int stage_name_known(const char* s) {
    static const char* names[] = {"correct", "prune", "eval_pruned", "distill", "init", "train", "eval", "bench"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i])) return 1;
    int round;
    char rest[32];
    return sscanf(s, "round%d_%31s", &round, rest) == 2 && round >= 1 && (!strcmp(rest, "prune") || !strcmp(rest, "distill"));
}

int sweep_run(const SweepConfig* c, const Cell* cells, int n, const char* only, const char* stage_only, int force,
              int keep_going, Err* e) {
    if (stage_only && !stage_name_known(stage_only))
        return err_set(e, "--stage %s: not a stage (correct, prune, eval_pruned, distill, init, train, eval, bench; roundN_prune, "
                       "roundN_distill)", stage_only);
    if (device_available(c->device, e)) return err_prefix(e, "%s: [sweep] device", c->path);  // before any work
    InputHashes in;
    char sweep_dir[2100];
    snprintf(sweep_dir, sizeof sweep_dir, "%s/%s", c->out, c->name);
    if (make_dirs(sweep_dir, e) || sweep_hash_inputs(c, 0, &in, e)) return -1;
    SweepPlan p;
    sweep_plan_build(c, cells, n, &in, &p);
    const PlanCell* only_cell = only ? plan_cell(&p, only) : NULL;
    if (only && !only_cell) {
        sweep_plan_free(&p);
        return err_set(e, "--only %s: no such cell in this sweep (arbor sweep CONFIG --dry-run lists them)", only);
    }
    if (manifest_write(&p, c, e) || sweep_describe(c, cells, n, e)) return sweep_plan_free(&p), -1;
    int stale = remove_stale_tmp(sweep_dir);
    if (stale) fprintf(stderr, "sweep: removed %d half-written files left by killed runs\n", stale);
    Runner r = {c, &p, stage_only, force, {0}, 0, 0, 0};
    int* done_cells = xmalloc(sizeof(int) * (size_t)(n ? n : 1));
    int n_done = 0, ran = 0, failed = 0, to_run = only ? 1 : n, worked = 0;
    char first_failure[sizeof e->msg] = "";
    double t_start = now_seconds(), t_work = 0;
    for (int i = 0; i < n; i++) {
        const PlanCell* pc = &p.cells[i];
        if (only_cell && pc != only_cell) continue;
        ran++;
        double t_cell = now_seconds();
        if (worked)  // cells that did work; reused ones cost nothing
            fprintf(stderr, "sweep: cell %d/%d %s (elapsed %.0f s; ETA %.0f s if the rest need work)\n", ran, to_run, pc->cell.label,
                    now_seconds() - t_start, t_work / worked * (to_run - ran + 1));
        else
            fprintf(stderr, "sweep: cell %d/%d %s (elapsed %.0f s)\n", ran, to_run, pc->cell.label, now_seconds() - t_start);
        r.worked = 0;
        int rc = 0;
        for (int s = 0; s < pc->n_stages && !rc; s++)
            if (pc->stages[s].kind != STAGE_BENCH) rc = run_stage(&r, pc, &pc->stages[s], e);
        if (r.worked) t_work += now_seconds() - t_cell, worked++;
        if (!rc) {
            done_cells[n_done++] = i;
            continue;
        }
        if (!keep_going) return free(done_cells), free(r.ran.keys), sweep_plan_free(&p), -1;
        fprintf(stderr, "sweep: cell %s failed: %s (going on: --keep-going)\n", pc->cell.label, e->msg);
        if (!failed++) snprintf(first_failure, sizeof first_failure, "%s", e->msg);
    }
    int rc = n_done ? run_benches(&r, done_cells, n_done, e) : 0;
    fprintf(stderr, "sweep: %d stages run, %d reused\n", r.run, r.reused);
    free(done_cells);
    free(r.ran.keys);
    sweep_plan_free(&p);
    if (rc) return err_prefix(e, "bench");
    if (failed) {
        Err ignored;
        sweep_collect(sweep_dir, &ignored);  // what did finish
        return err_set(e, "%d of %d cells failed; the first: %.600s", failed, to_run, first_failure);
    }
    return sweep_collect(sweep_dir, e);
}
