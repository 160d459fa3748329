// sweep_run.c: see sweep_run.h.
#include "../kernels/hash.h"
#include "sweep_run.h"

#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "arbor_commit.h"  // ARBOR_COMMIT, generated at build time
#include "../distill/trainer.h"
#include "../evals/perplexity.h"
#include "../evals/throughput.h"
#include "../kernels/clock.h"
#include "../mmlu/mmlu_eval.h"
#include "../models/dir_lock.h"
#include "../models/file_io.h"
#include "../prune/search.h"
#include "content_hash.h"
#include "sweep_bench.h"
#include "sweep_describe.h"
#include "sweep_plan.h"
#include "sweep_ranks.h"

// The content of every input the stages read (content_hash.h): part of each stage's key, so a
// replaced checkpoint or a shard rewritten in place re-runs what read it. The pruned cells' teacher
// (student_teacher) is the checkpoint, or after teacher correction the corrected model: its hash is
// then the key of the correction stage (which holds the checkpoint's and the data's).
typedef struct {
    char teacher[CONTENT_HASH_HEX], calib[CONTENT_HASH_HEX], distill[CONTENT_HASH_HEX], val[CONTENT_HASH_HEX];
    char mmlu[CONTENT_HASH_HEX], tokenizer[CONTENT_HASH_HEX];
    char baseline[SWEEP_MAX_BASELINES][CONTENT_HASH_HEX];
    char student_teacher[CONTENT_HASH_HEX];
    char student_teacher_dir[2400];
} InputHashes;

typedef struct {
    const SweepConfig* c;
    const Cell* cell;
    const InputHashes* in;
    char dir[2048];    // the cell's folder
    char key[32];      // input hash of the previous stage
    double seconds;    // this stage's wall time
    int eval_pruned;   // the eval stage looks at prune/model (pruned, not yet distilled)
    const char* only;  // run only this stage (the ones before must be done), or NULL
    int worked;        // a stage of this cell ran (was not found done)
    int round;         // the prune-distill round the prune and distill stages run (0-based)
} Ctx;

// runs one stage (fn writes into tmp) unless its .done matches; returns -1 on failure
typedef int (*StageFn)(Ctx* x, const char* tmp, cJSON* metrics, Err* e);

static cJSON* read_json_file(const char* path) {
    Err e;
    char* text = access(path, F_OK) == 0 ? file_read_all(path, NULL, &e) : NULL;
    cJSON* j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

// by := the arbor commit recorded in DIR/metrics.json ("" when none is)
static void stage_commit(const char* dir, char* by, size_t n) {
    char path[2300];
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    cJSON* j = read_json_file(path);
    const cJSON* c = cJSON_GetObjectItemCaseSensitive(j, "arbor_commit");
    snprintf(by, n, "%s", cJSON_IsString(c) ? c->valuestring : "");
    cJSON_Delete(j);
}

static int stage(Ctx* x, const char* name, const char* settings, StageFn fn, int force, Err* e) {
    char buf[12288], done[2200], final_dir[2200], tmp[2200];
    snprintf(buf, sizeof buf, "%s|%s|%s", name, settings, x->key);
    char key[32];
    snprintf(key, sizeof key, "%016llx", (unsigned long long)fnv1a64(buf, strlen(buf)));
    snprintf(done, sizeof done, "%s/%s.done", x->dir, name);
    snprintf(final_dir, sizeof final_dir, "%s/%s", x->dir, name);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", x->dir, name);
    char* have = access(done, F_OK) == 0 ? file_read_all(done, NULL, e) : NULL;
    int up_to_date = have && strcmp(have, key) == 0, cached = up_to_date && !force;
    free(have);
    if (x->only && strcmp(x->only, name) != 0) {  // --stage: the other stages are only walked through
        if (!up_to_date)
            return err_set(e, "%s: --stage %s needs stage %s done (and up to date) first", x->cell->label, x->only, name);
        snprintf(x->key, sizeof x->key, "%s", key);
        return 0;
    }
    if (cached) {
        char by[64] = "";  // a result another build computed is used, and said so
        stage_commit(final_dir, by, sizeof by);
        if (strcmp(by, ARBOR_COMMIT))
            fprintf(stderr, "sweep: %s %s: done (by arbor %s; this build is %s: --force re-runs it)\n", x->cell->label, name,
                    by[0] ? by : "of unknown commit", ARBOR_COMMIT);
        else
            fprintf(stderr, "sweep: %s %s: done\n", x->cell->label, name);
        snprintf(x->key, sizeof x->key, "%s", key);
        return 0;
    }
    unlink(done);
    // a stage killed part way keeps its folder when it was working on exactly these inputs: training
    // stages save their state periodically there and continue from it (bit-identically); anything else
    // starts over
    char key_path[2300];
    snprintf(key_path, sizeof key_path, "%s/.stage_key", tmp);
    char* tmp_key = access(key_path, F_OK) == 0 ? file_read_all(key_path, NULL, e) : NULL;
    const char* base;  // the training stages: distill (of any round), train, correct
    sweep_stage_round(x->cell, name, &base);
    int resume = tmp_key && !strcmp(tmp_key, key) && (!strcmp(base, "distill") || !strcmp(base, "train") || !strcmp(base, "correct"));
    free(tmp_key);
    if (!resume && (remove_tree(tmp, e) || make_dirs(tmp, e) || file_write_atomic(key_path, key, strlen(key), e))) return -1;
    fprintf(stderr, "sweep: %s %s ...%s\n", x->cell->label, name, resume ? " (resuming its saved state)" : "");
    x->worked = 1;
    cJSON* metrics = cJSON_CreateObject();
    double t0 = now_seconds();
    int rc = fn(x, tmp, metrics, e);
    cJSON_AddNumberToObject(metrics, "seconds", now_seconds() - t0);
    cJSON_AddStringToObject(metrics, "arbor_commit", ARBOR_COMMIT);
    if (!rc) rc = json_write_atomic(tmp, "metrics.json", metrics, e);
    else cJSON_Delete(metrics);
    if (rc) return err_prefix(e, "%s %s", x->cell->label, name);
    if (remove_tree(final_dir, e)) return -1;
    if (rename(tmp, final_dir) != 0) return err_set(e, "%s: cannot rename into place", final_dir);
    fsync_parent(final_dir);
    snprintf(x->key, sizeof x->key, "%s", key);
    return file_write_atomic(done, key, strlen(key), e);
}

// ---- stages

static const char* stage_model(const Ctx* x, char* buf, size_t n) {  // the model the eval and bench stages see
    if (x->cell->kind == CELL_TEACHER || x->cell->kind == CELL_BASELINE) return x->cell->model;
    if (x->cell->kind == CELL_CORRECTED) {
        snprintf(buf, n, "%s/correct/model", x->dir);
        return buf;
    }
    if (x->eval_pruned) {
        snprintf(buf, n, "%s/prune/model", x->dir);
        return buf;
    }
    snprintf(buf, n, "%s/%s/model", x->dir, x->cell->kind == CELL_PRUNED ? "distill" : "train");
    return buf;
}

static int add_shape(cJSON* m, const ModelConfig* c) {
    cJSON_AddNumberToObject(m, "params", (double)config_param_count(c));
    cJSON_AddNumberToObject(m, "layers", c->n_layers);
    cJSON_AddNumberToObject(m, "hidden", c->hidden);
    cJSON_AddNumberToObject(m, "ffn", c->ffn);
    cJSON_AddNumberToObject(m, "heads", c->n_heads);
    cJSON_AddNumberToObject(m, "kv_heads", c->n_kv_heads);
    return 0;
}

// a finished stage's metrics (NULL when it has not finished)
static cJSON* stage_metrics(const char* cell_dir, const char* stage_name) {
    char done[2800], path[2800];
    snprintf(done, sizeof done, "%s/%s.done", cell_dir, stage_name);
    snprintf(path, sizeof path, "%s/%s/metrics.json", cell_dir, stage_name);
    return access(done, F_OK) == 0 ? read_json_file(path) : NULL;
}

// The layers of the teacher that round r's source model holds (all of them in round 0; after that, the
// previous round's prune metrics list them): teacher_layer (n) maps the source's layer i to the teacher's.
static int source_layers(const Ctx* x, int n, int* teacher_layer, Err* e) {
    for (int i = 0; i < n; i++) teacher_layer[i] = i;
    if (x->round == 0) return 0;
    char stage_name[64];
    sweep_round_stage(x->cell->n_rounds, x->round - 1, "prune", stage_name, sizeof stage_name);
    cJSON* j = stage_metrics(x->dir, stage_name);  // done: this round's prune is keyed on it
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
    return got == n ? 0 : err_set(e, "%s/%s/metrics.json: kept_layers does not list the %d layers of the round's model", x->dir,
                                  stage_name, n);
}

static int prune_stage(Ctx* x, const char* tmp, cJSON* metrics, Err* e) {
    const SweepConfig* c = x->c;
    const Cell* cell = x->cell;
    Model m, p;
    Shard calib;
    // round 0 prunes the teacher; each later round the model the round before distilled, scored again
    char source[2600], prev[64];
    if (x->round == 0) {
        snprintf(source, sizeof source, "%s", x->in->student_teacher_dir);
    } else {
        sweep_round_stage(cell->n_rounds, x->round - 1, "distill", prev, sizeof prev);
        snprintf(source, sizeof source, "%s/%s/model", x->dir, prev);
    }
    if (model_load(&m, source, e)) return -1;
    int rc = shard_open(&calib, c->calib, e);
    Importance imp;
    int have = 0, keep[1024], n_keep = 0, teacher_layer[1024];
    PruneTarget t;
    plan_prune_target(cell, x->round, &t);
    if (!t.layers) t.layers = m.cfg.n_layers;  // this round keeps the depth
    if (!rc) rc = source_layers(x, m.cfg.n_layers, teacher_layer, e);
    if (!rc) {
        CalibOptions co;
        plan_calib(c, &co);
        calib_for_target(&co, m.cfg.n_layers, &t);  // the block size it picks
        rc = importance_compute(&m, &calib, &co, &imp, e);
        have = !rc;
    }
    if (!rc && t.depth == DEPTH_PPL) {
        int64_t n;
        int* tokens = shard_read_tokens(&calib, 8192, &n);
        rc = prune_depth_ppl(&m, tokens, n, c->prune_seq_len, cell->layers, keep, &n_keep, e);
        free(tokens);
    } else if (!rc) {
        rc = prune_pick_layers(&m.cfg, &imp, &t, keep, &n_keep, e);
    }
    if (!rc) rc = prune_model(&m, &imp, &t, keep, n_keep, &p, e);
    if (!rc) {
        // the kept layers in the teacher's numbering, whatever the round: the lineage the hidden-state loss
        // reads, and what results.csv reports
        int kept_in_teacher[1024];
        for (int i = 0; i < n_keep; i++) kept_in_teacher[i] = teacher_layer[keep[i]];
        char path[2700];
        snprintf(path, sizeof path, "%s/model", tmp);
        rc = prune_write(&p, &imp, &m.cfg, x->in->student_teacher_dir, cell->strategy, kept_in_teacher, n_keep, path, ST_F32, e);
        add_shape(metrics, &p.cfg);
        char kept[4096] = "";
        for (int i = 0, len = 0; i < n_keep && len < (int)sizeof kept - 8; i++)
            len += snprintf(kept + len, sizeof kept - (size_t)len, "%s%d", i ? " " : "", kept_in_teacher[i]);
        cJSON_AddStringToObject(metrics, "kept_layers", kept);
        cJSON_AddNumberToObject(metrics, "round", x->round + 1);
        cJSON_AddStringToObject(metrics, "source", source);
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
    char student[2400], prune_name[64];
    sweep_round_stage(x->cell->n_rounds, x->round, "prune", prune_name, sizeof prune_name);
    snprintf(student, sizeof student, "%s/%s/model", x->dir, prune_name);
    TrainConfig tc;
    int last = x->round == x->cell->n_rounds - 1;
    plan_train(c, 1, last ? c->steps : c->round_steps, &tc);
    // every round distils from the same teacher; the tokens of this round and of the rounds before it
    cJSON_AddNumberToObject(metrics, "round", x->round + 1);
    cJSON_AddNumberToObject(metrics, "tokens_all_rounds",
                            ((double)x->round * c->round_steps + tc.steps) * c->batch * c->grad_accum * c->seq_len);
    return train_common(x, tmp, metrics, student, x->in->student_teacher_dir, tc, e);
}

// teacher correction: the teacher trained on the distillation data (cross-entropy) before it teaches
static int correct_stage(Ctx* x, const char* tmp, cJSON* metrics, Err* e) {
    TrainConfig tc;
    plan_correct(x->c, &tc);
    return train_common(x, tmp, metrics, x->c->teacher, NULL, tc, e);
}

static int init_stage(Ctx* x, const char* tmp, cJSON* metrics, Err* e) {
    // the shape of the matching pruned model: the teacher's config with the cell's targets
    ModelConfig c;
    if (config_load(x->c->teacher, &c, e)) return -1;
    int NKV = x->cell->kv_heads ? x->cell->kv_heads : c.n_kv_heads;
    c.n_heads = x->cell->heads ? x->cell->heads : c.n_heads * NKV / c.n_kv_heads;
    c.n_kv_heads = NKV;
    c.n_layers = x->cell->layers, c.ffn = x->cell->ffn ? x->cell->ffn : c.ffn, c.hidden = x->cell->hidden ? x->cell->hidden : c.hidden;
    if (config_validate(&c, "scratch shape", e)) return -1;
    char path[2400];
    snprintf(path, sizeof path, "%s/model", tmp);
    add_shape(metrics, &c);
    // N(0, 0.02) matrices as transformers initialises; seed from the sweep's
    return checkpoint_write_random(&c, (uint64_t)x->c->seed + 17, path, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, e);
}

static int train_stage(Ctx* x, const char* tmp, cJSON* metrics, Err* e) {
    char student[2400];
    snprintf(student, sizeof student, "%s/init/model", x->dir);
    TrainConfig tc;
    plan_train(x->c, 0, x->c->steps, &tc);
    return train_common(x, tmp, metrics, student, NULL, tc, e);
}

static int eval_stage(Ctx* x, const char* tmp, cJSON* metrics, Err* e) {
    const SweepConfig* c = x->c;
    char buf[2400];
    const char* model_dir = stage_model(x, buf, sizeof buf);
    Model m;
    if (model_load(&m, model_dir, e)) return -1;
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
                MmluSummary sum;
                mmlu_summarize(&r, &sum);
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
                cJSON_AddNumberToObject(metrics, "mmlu_truncated", r.n_truncated);  // contexts cut to fit the model
                cJSON_AddNumberToObject(metrics, "mmlu_fewer_shots", r.n_fewer_shots);
                for (int k = 0; k < MMLU_N_CATEGORIES; k++) {
                    char key[64];
                    snprintf(key, sizeof key, "mmlu_%s", mmlu_category_name((MmluCategory)k));
                    if (sum.cat_n[k]) cJSON_AddNumberToObject(metrics, key, (double)sum.cat_correct[k] / sum.cat_n[k]);
                }
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

// ---- the run

// A stage's settings in its key: what it runs (sweep_plan.h) and the content of what it reads.
static void settings_of(const SweepConfig* c, const InputHashes* in, const Cell* cell, const char* stage_name, char* out,
                        size_t n) {
    char plan[8192];
    sweep_stage_plan(c, cell, stage_name, plan, sizeof plan);
    const char* base;
    sweep_stage_round(cell, stage_name, &base);
    if (!strcmp(stage_name, "eval") || !strcmp(stage_name, "eval_pruned"))
        snprintf(out, n, "%s | mmlu=%s val=%s tokenizer=%s teacher=%s", plan, in->mmlu, in->val, in->tokenizer, in->teacher);
    else if (!strcmp(base, "prune"))
        snprintf(out, n, "%s | teacher=%s calib=%s", plan, in->student_teacher, in->calib);
    else if (!strcmp(base, "distill"))
        snprintf(out, n, "%s | teacher=%s data=%s", plan, in->student_teacher, in->distill);
    else if (!strcmp(stage_name, "correct"))
        snprintf(out, n, "%s | teacher=%s data=%s", plan, in->teacher, in->distill);
    else if (!strcmp(stage_name, "init"))
        snprintf(out, n, "%s | teacher=%s", plan, in->teacher);  // its config.json gives the shape
    else if (!strcmp(stage_name, "train"))
        snprintf(out, n, "%s | data=%s", plan, in->distill);
    else
        snprintf(out, n, "%s", plan);
}

// Hashes what the sweep reads (memo in OUT/NAME/content_hashes.tsv). Paths the config leaves empty hash as "".
static int hash_inputs(const SweepConfig* c, InputHashes* in, Err* e) {
    memset(in, 0, sizeof *in);
    char memo_path[2200];
    snprintf(memo_path, sizeof memo_path, "%s/%s/content_hashes.tsv", c->out, c->name);
    HashMemo memo;
    hash_memo_open(&memo, memo_path);
    double t0 = now_seconds();
    int matrix = c->n_strategies > 0;
    int rc = content_hash(&memo, c->teacher, in->teacher, e);
    if (!rc && matrix) rc = content_hash(&memo, c->calib, in->calib, e) || content_hash(&memo, c->distill_data, in->distill, e);
    if (!rc && c->val[0]) rc = content_hash(&memo, c->val, in->val, e);
    if (!rc && c->mmlu[0]) rc = content_hash(&memo, c->mmlu, in->mmlu, e);
    if (!rc && c->tokenizer[0]) rc = content_hash(&memo, c->tokenizer, in->tokenizer, e);
    for (int i = 0; i < c->n_baselines && !rc; i++) rc = content_hash(&memo, c->baseline_model[i], in->baseline[i], e);
    if (memo.bytes_hashed > (1u << 30))
        fprintf(stderr, "sweep: hashed %.1f GB of inputs in %.0f s (remembered in %s)\n", memo.bytes_hashed / 1e9,
                now_seconds() - t0, memo_path);
    if (!rc) {
        Err ignored;
        if (hash_memo_save(&memo, &ignored)) fprintf(stderr, "sweep: could not save the hash memo: %s\n", ignored.msg);
    }
    hash_memo_free(&memo);
    snprintf(in->student_teacher, sizeof in->student_teacher, "%s", in->teacher);  // until teacher correction says otherwise
    snprintf(in->student_teacher_dir, sizeof in->student_teacher_dir, "%s", c->teacher);
    return rc ? err_prefix(e, "hashing the sweep's inputs") : 0;
}

// A cell's folder and the key its first stage starts from: the cell's settings and, for a cell that
// reads a checkpoint as it is (teacher, corrected teacher, baseline), the checkpoint's content.
static void cell_ctx(const SweepConfig* c, const Cell* cell, const InputHashes* in, const char* stage_only, Ctx* x) {
    *x = (Ctx){c, cell, in, "", "", 0, 0, stage_only, 0, 0};
    snprintf(x->dir, sizeof x->dir, "%s/%s/cells/%s", c->out, c->name, cell->id);
    const char* model_hash = "";
    if (cell->kind == CELL_TEACHER || cell->kind == CELL_CORRECTED) model_hash = in->teacher;
    for (int b = 0; b < c->n_baselines; b++)
        if (cell->kind == CELL_BASELINE && !strcmp(cell->model, c->baseline_model[b])) model_hash = in->baseline[b];
    char first[128];
    snprintf(first, sizeof first, "%s:%s", cell->id, model_hash);
    snprintf(x->key, sizeof x->key, "%016llx", (unsigned long long)fnv1a64(first, strlen(first)));
}

// Teacher correction before the cells that need it (with `only`, when that cell is one): the corrected
// model and the key of its stage become the pruned cells' teacher in `in`. Runs started together (a Slurm
// array's tasks) wait here for the one that corrects.
static int correct_teacher(const SweepConfig* c, const Cell* cells, int n, const char* only, InputHashes* in,
                           const char* stage_only, int force, Err* e) {
    const Cell* corrected = NULL;
    int needed = 0;
    for (int i = 0; i < n; i++) {
        if (cells[i].kind == CELL_CORRECTED) corrected = &cells[i];
        if (!only || !strcmp(only, cells[i].id)) needed |= cells[i].kind == CELL_PRUNED || cells[i].kind == CELL_CORRECTED;
    }
    if (!corrected || !needed) return 0;
    Ctx x;
    cell_ctx(c, corrected, in, stage_only, &x);
    char settings[9000];
    settings_of(c, in, corrected, "correct", settings, sizeof settings);
    int lock = -1;
    if (make_dirs(x.dir, e) || dir_lock_wait(x.dir, &lock, e)) return -1;
    int rc = stage(&x, "correct", settings, correct_stage, force, e);
    dir_unlock(lock);
    if (rc) return -1;
    snprintf(in->student_teacher, sizeof in->student_teacher, "%s", x.key);
    snprintf(in->student_teacher_dir, sizeof in->student_teacher_dir, "%s/correct/model", x.dir);
    return 0;
}

// the stages of a pruned cell: each round prunes (scoring the model it starts from) and distils; the
// last round's pruned model is also evaluated before distillation (what distillation has to recover)
static int pruned_cell_stages(Ctx* x, int force, Err* e) {
    const SweepConfig* c = x->c;
    const Cell* cell = x->cell;
    int rc = 0;
    for (int r = 0; r < cell->n_rounds && !rc; r++) {
        char name[64], settings[9000];
        x->round = r;
        sweep_round_stage(cell->n_rounds, r, "prune", name, sizeof name);
        settings_of(c, x->in, cell, name, settings, sizeof settings);
        rc = stage(x, name, settings, prune_stage, force, e);
        if (!rc && c->mmlu[0] && r == cell->n_rounds - 1) {
            char key[32];
            snprintf(key, sizeof key, "%s", x->key);
            settings_of(c, x->in, cell, "eval_pruned", settings, sizeof settings);
            x->eval_pruned = 1;
            rc = stage(x, "eval_pruned", settings, eval_stage, force, e);
            x->eval_pruned = 0;
            snprintf(x->key, sizeof x->key, "%s", key);  // distillation does not depend on it
        }
        sweep_round_stage(cell->n_rounds, r, "distill", name, sizeof name);
        settings_of(c, x->in, cell, name, settings, sizeof settings);
        if (!rc) rc = stage(x, name, settings, distill_stage, force, e);
    }
    return rc;
}

int sweep_run(const SweepConfig* c, const Cell* cells, int n, const char* only, const char* stage_only, int force,
              int keep_going, Err* e) {
    static const char* stage_names[] = {"correct", "prune", "eval_pruned", "distill", "init", "train", "eval", "bench"};
    int known = !stage_only, round;
    char rest[32];
    for (size_t i = 0; i < sizeof stage_names / sizeof stage_names[0] && !known; i++) known = !strcmp(stage_only, stage_names[i]);
    if (!known && sscanf(stage_only, "round%d_%31s", &round, rest) == 2 && round >= 1)
        known = !strcmp(rest, "prune") || !strcmp(rest, "distill");
    if (!known)
        return err_set(e, "--stage %s: not a stage (correct, prune, eval_pruned, distill, init, train, eval, bench; roundN_prune, "
                       "roundN_distill)", stage_only);
    char sweep_dir[2048];
    snprintf(sweep_dir, sizeof sweep_dir, "%s/%s", c->out, c->name);
    if (device_available(c->device, e)) return err_prefix(e, "%s: [sweep] device", c->path);  // before any work
    InputHashes in;
    if (make_dirs(sweep_dir, e) || hash_inputs(c, &in, e) || sweep_describe(c, cells, n, e) ||
        correct_teacher(c, cells, n, only, &in, stage_only, force, e))
        return -1;
    int stale = remove_stale_tmp(sweep_dir);
    if (stale) fprintf(stderr, "sweep: removed %d half-written files left by killed runs\n", stale);
    int ran = 0, failed = 0, to_run = 0, worked = 0;
    for (int i = 0; i < n; i++) to_run += !only || !strcmp(only, cells[i].id);
    char first_failure[sizeof e->msg] = "";
    BenchMember* group = xcalloc((size_t)n + 1, sizeof(BenchMember));
    int n_group = 0;
    double t_start = now_seconds(), t_work = 0;
    for (int i = 0; i < n; i++) {
        const Cell* cell = &cells[i];
        if (only && strcmp(only, cell->id) != 0) continue;
        ran++;
        double t_cell = now_seconds();
        if (worked) {
            double per_cell = t_work / worked;  // cells that did work; cached ones cost nothing
            fprintf(stderr, "sweep: cell %d/%d %s (elapsed %.0f s; ETA %.0f s if the rest need work)\n", ran, to_run, cell->label,
                    now_seconds() - t_start, per_cell * (to_run - ran + 1));
        } else {
            fprintf(stderr, "sweep: cell %d/%d %s (elapsed %.0f s)\n", ran, to_run, cell->label, now_seconds() - t_start);
        }
        Ctx x;
        cell_ctx(c, cell, &in, stage_only, &x);
        int lock = -1;  // one run per cell folder at a time (two sweeps on one folder mixed their stages once)
        // the corrected teacher's folder is also taken briefly by every pruned cell's run (correct_teacher): wait for those
        int (*take)(const char*, int*, Err*) = cell->kind == CELL_CORRECTED ? dir_lock_wait : dir_lock;
        if (make_dirs(x.dir, e) || take(x.dir, &lock, e)) return free(group), -1;
        cJSON* info = cJSON_CreateObject();
        cJSON_AddStringToObject(info, "id", cell->id);
        cJSON_AddStringToObject(info, "label", cell->label);
        cJSON_AddStringToObject(info, "kind", cell_kind_name(cell->kind));
        cJSON_AddNumberToObject(info, "rounds", cell->n_rounds);
        cJSON_AddStringToObject(info, "strategy", cell->strategy);
        cJSON_AddStringToObject(info, "source", cell->model[0] ? cell->model : c->teacher);
        cJSON_AddNumberToObject(info, "order", i);  // results.csv lists cells in the config's order, teacher first
        if (cell->kind != CELL_PRUNED)  // a pruned cell's come from its prune stage
            cJSON_AddStringToObject(info, "kept_layers", cell->kind == CELL_SCRATCH ? "(random init)" : "all");
        if (json_write_atomic(x.dir, "cell.json", info, e)) return dir_unlock(lock), free(group), -1;
        char settings[9000];
        int rc = 0;
        if (cell->kind == CELL_PRUNED) rc = pruned_cell_stages(&x, force, e);
        if (cell->kind == CELL_CORRECTED)  // its correct stage ran first (correct_teacher): the eval follows it
            snprintf(x.key, sizeof x.key, "%.31s", in.student_teacher);
        if (cell->kind == CELL_SCRATCH) {
            settings_of(c, &in, cell, "init", settings, sizeof settings);
            rc = stage(&x, "init", settings, init_stage, force, e);
            settings_of(c, &in, cell, "train", settings, sizeof settings);
            if (!rc) rc = stage(&x, "train", settings, train_stage, force, e);
        }
        BenchMember* bm = &group[n_group++];  // benched with the others below, from the model's key
        *bm = (BenchMember){cell, "", "", "", 1};
        snprintf(bm->dir, sizeof bm->dir, "%s", x.dir);
        snprintf(bm->model_key, sizeof bm->model_key, "%s", x.key);
        char model_buf[2400];
        snprintf(bm->model_dir, sizeof bm->model_dir, "%s", stage_model(&x, model_buf, sizeof model_buf));
        settings_of(c, &in, cell, "eval", settings, sizeof settings);
        if (!rc) rc = stage(&x, "eval", settings, eval_stage, force, e);
        dir_unlock(lock);
        if (x.worked) t_work += now_seconds() - t_cell, worked++;
        if (rc) {
            n_group--;  // not benched
            if (!keep_going) return free(group), -1;
            fprintf(stderr, "sweep: cell %s failed: %s (going on: --keep-going)\n", cell->label, e->msg);
            if (!failed++) snprintf(first_failure, sizeof first_failure, "%s", e->msg);
        }
    }
    // throughput: every cell of this run together, in interleaved rounds; with --only, the cell beside
    // the teacher (a reference: its own results are left to its own run)
    if (only && ran && group[0].cell->kind != CELL_TEACHER) {
        memmove(group + 1, group, sizeof(BenchMember) * (size_t)n_group);
        n_group++;
        BenchMember* t = &group[0];
        *t = (BenchMember){&cells[0], "", "", "", 0};
        snprintf(t->dir, sizeof t->dir, "%s/%s/cells/%s", c->out, c->name, cells[0].id);
        char first[128];
        snprintf(first, sizeof first, "%s:%s", cells[0].id, in.teacher);
        snprintf(t->model_key, sizeof t->model_key, "%016llx", (unsigned long long)fnv1a64(first, strlen(first)));
        snprintf(t->model_dir, sizeof t->model_dir, "%s", c->teacher);
    }
    int rc = 0;
    if (n_group && (!stage_only || !strcmp(stage_only, "bench"))) rc = sweep_bench_group(c, group, n_group, force, e);
    free(group);
    if (rc) return -1;
    if (failed) {
        sweep_collect(sweep_dir, e);  // what did finish
        return err_set(e, "%d of %d cells failed; the first: %.600s", failed, to_run, first_failure);
    }
    if (only && !ran) return err_set(e, "--only %s: no such cell in this sweep (arbor sweep CONFIG --dry-run lists them)", only);
    return sweep_collect(sweep_dir, e);
}

// ---- collect

static const char* columns[] = {
    "id", "label", "kind", "strategy", "kept_layers", "params", "layers", "hidden", "ffn", "heads", "kv_heads", "rounds",
    "eval_pruned.mmlu_micro", "eval_pruned.mmlu_ci_low", "eval_pruned.mmlu_ci_high", "eval_pruned.val_nll", "distill.tokens",
    "distill.tokens_all_rounds", "distill.final_loss", "distill.final_kd", "distill.val_loss", "correct.tokens", "correct.val_loss", "train.tokens", "train.final_loss", "train.val_loss", "eval.mmlu_micro",
    "eval.mmlu_ci_low", "eval.mmlu_ci_high", "eval.mmlu_n", "eval.mmlu_chance", "eval.mmlu_macro", "eval.mmlu_stem",
    "eval.mmlu_humanities", "eval.mmlu_social_sciences", "eval.mmlu_other", "eval.val_nll", "bench.prefill_tps_b1",
    "bench.prefill_tps_b1_min", "bench.prefill_tps_b1_max", "bench.decode_tps_b1", "bench.decode_tps_b1_min",
    "bench.decode_tps_b1_max", "bench.ms_per_token_b1", "bench.prefill_ratio_b1", "bench.decode_ratio_b1", "bench.rounds",
    "bench.contended_rounds", "bench.remeasured", "bench.wait_share_max", "bench.cpu_per_wall", "bench.load_1m", "bench.peak_rss_mb",
    "bench.prompt_len", "bench.gen_len", "bench.precision", "prune.seconds", "distill.seconds", "train.seconds",
    "eval.seconds", "bench.seconds", "bench.backend", "bench.threads", "bench.wait_policy", "bench.blas_core", "bench.device",
    "prune.arbor_commit", "distill.arbor_commit", "train.arbor_commit", "eval.arbor_commit", "bench.arbor_commit",
};

// DIR/NAME := out, atomically; out is freed
static int write_table(const char* dir, const char* name, ByteVec* out, Err* e) {
    char path[2400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = file_write_atomic(path, out->data, out->len, e);
    free(out->data);
    return rc;
}

// DIR/mmlu_subjects.csv: every cell's per-subject, per-category and overall MMLU rows side by side
static int collect_subjects(const char* dir, const char* cells_dir, Err* e) {
    DIR* d = opendir(cells_dir);
    if (!d) return 0;
    ByteVec out = {0};
    const char* header = "cell,label,level,name,questions,correct,accuracy\n";
    bytevec_append(&out, header, strlen(header));
    for (struct dirent* ent; (ent = readdir(d));) {
        if (ent->d_name[0] == '.') continue;
        char path[2600], done[2600];
        snprintf(done, sizeof done, "%s/%s/eval.done", cells_dir, ent->d_name);
        snprintf(path, sizeof path, "%s/%s/eval/summary.csv", cells_dir, ent->d_name);
        if (access(done, F_OK) != 0 || access(path, F_OK) != 0) continue;
        char* text = file_read_all(path, NULL, e);
        snprintf(path, sizeof path, "%s/%s/cell.json", cells_dir, ent->d_name);
        char* info_text = file_read_all(path, NULL, e);
        cJSON* info = info_text ? cJSON_Parse(info_text) : NULL;
        const cJSON* label = info ? cJSON_GetObjectItem(info, "label") : NULL;
        char* rest = text ? strchr(text, '\n') : NULL;  // skip the header
        for (char* line = rest ? strtok(rest + 1, "\n") : NULL; line; line = strtok(NULL, "\n")) {
            char row[1024];
            int len = snprintf(row, sizeof row, "%s,%s,%s\n", ent->d_name, cJSON_IsString(label) ? label->valuestring : "", line);
            bytevec_append(&out, row, (size_t)len);
        }
        cJSON_Delete(info);
        free(info_text);
        free(text);
    }
    closedir(d);
    return write_table(dir, "mmlu_subjects.csv", &out, e);
}

typedef struct {
    int kind_rank, order;
    char label[128];
    char* text;  // the CSV row
} Row;

static int row_order(const void* a, const void* b) {  // teacher, baselines, pruned, scratch; then config order
    const Row *x = a, *y = b;
    if (x->kind_rank != y->kind_rank) return x->kind_rank - y->kind_rank;
    if (x->order != y->order) return x->order - y->order;
    return strcmp(x->label, y->label);
}

// rows sorted (row_order) onto out; the rows are freed
static void append_rows(ByteVec* out, Row* rows, int n) {
    qsort(rows, (size_t)n, sizeof(Row), row_order);
    for (int i = 0; i < n; i++) {
        bytevec_append(out, rows[i].text, strlen(rows[i].text));
        free(rows[i].text);
    }
    free(rows);
}

// DIR/rounds.csv: every pruned cell's rounds in order (one row for a one-shot cell): the shape each
// prune reached, the teacher layers it kept, where its scores are, and what the distillation after it
// read and reached; cells in the config's order
static int collect_rounds(const char* dir, const char* cells_dir, Err* e) {
    DIR* d = opendir(cells_dir);
    if (!d) return 0;
    ByteVec out = {0};
    Row* rows = NULL;
    int n_rows = 0, cap = 0;
    const char* header = "cell,label,round,rounds,layers,hidden,ffn,heads,kv_heads,params,kept_layers,scores,distill_tokens,"
                         "tokens_all_rounds,distill_final_loss,distill_val_loss\n";
    bytevec_append(&out, header, strlen(header));
    for (struct dirent* ent; (ent = readdir(d));) {
        if (ent->d_name[0] == '.') continue;
        char cell_dir[2500], path[2600];
        snprintf(cell_dir, sizeof cell_dir, "%s/%s", cells_dir, ent->d_name);
        snprintf(path, sizeof path, "%s/cell.json", cell_dir);
        cJSON* info = read_json_file(path);
        const cJSON* kind = cJSON_GetObjectItem(info, "kind");
        const cJSON* label = cJSON_GetObjectItem(info, "label");
        const cJSON* n_rounds = cJSON_GetObjectItem(info, "rounds");
        const cJSON* order = cJSON_GetObjectItem(info, "order");
        int pruned = cJSON_IsString(kind) && !strcmp(kind->valuestring, "pruned");
        int rounds = !pruned ? 0 : cJSON_IsNumber(n_rounds) ? n_rounds->valueint : 1;
        for (int r = 1; r <= rounds; r++) {
            char prune_name[64], distill_name[64];
            sweep_round_stage(rounds, r - 1, "prune", prune_name, sizeof prune_name);
            sweep_round_stage(rounds, r - 1, "distill", distill_name, sizeof distill_name);
            cJSON* pm = stage_metrics(cell_dir, prune_name);
            cJSON* dm = stage_metrics(cell_dir, distill_name);
            if (pm) {
                char row[4096];  // no field here holds a comma or a quote: labels and kept layers are names and numbers
                const char* num[] = {"layers", "hidden", "ffn", "heads", "kv_heads", "params"};
                const cJSON* kept = cJSON_GetObjectItem(pm, "kept_layers");
                size_t len = (size_t)snprintf(row, sizeof row, "%s,%s,%d,%d", ent->d_name, cJSON_IsString(label) ? label->valuestring : "",
                                              r, rounds);
                for (int k = 0; k < 6; k++) {
                    const cJSON* v = cJSON_GetObjectItem(pm, num[k]);
                    len += (size_t)snprintf(row + len, sizeof row - len, ",%.0f", cJSON_IsNumber(v) ? v->valuedouble : NAN);
                }
                len += (size_t)snprintf(row + len, sizeof row - len, ",%s,cells/%s/%s/model/scores.json",
                                        cJSON_IsString(kept) ? kept->valuestring : "", ent->d_name, prune_name);
                const char* dnum[] = {"tokens", "tokens_all_rounds", "final_loss", "val_loss"};
                for (int k = 0; k < 4; k++) {
                    const cJSON* v = dm ? cJSON_GetObjectItem(dm, dnum[k]) : NULL;
                    if (cJSON_IsNumber(v)) len += (size_t)snprintf(row + len, sizeof row - len, ",%.6g", v->valuedouble);
                    else len += (size_t)snprintf(row + len, sizeof row - len, ",");
                }
                snprintf(row + len, sizeof row - len, "\n");
                if (n_rows == cap) rows = xrealloc(rows, sizeof(Row) * (size_t)(cap = cap ? 2 * cap : 16));
                rows[n_rows++] = (Row){0, (cJSON_IsNumber(order) ? order->valueint : 1 << 20) * SWEEP_MAX_ROUNDS + r, "", xstrdup(row)};
            }
            cJSON_Delete(pm);
            cJSON_Delete(dm);
        }
        cJSON_Delete(info);
    }
    closedir(d);
    append_rows(&out, rows, n_rows);
    return write_table(dir, "rounds.csv", &out, e);
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

int sweep_collect(const char* dir, Err* e) {
    char cells_dir[2200];
    snprintf(cells_dir, sizeof cells_dir, "%s/cells", dir);
    DIR* d = opendir(cells_dir);
    if (!d) return err_set(e, "%s: no cells to collect", cells_dir);
    const char* stages[] = {"prune", "distill", "init", "train", "eval", "bench", "eval_pruned", "correct"};
    enum { N_STAGES = 8 };
    // every cell folder's info and finished stages' metrics
    typedef struct {
        char name[256];
        cJSON* info;
        cJSON* metrics[N_STAGES];
    } CellFiles;
    CellFiles* cf = NULL;
    int n_cells = 0, cap = 0;
    for (struct dirent* ent; (ent = readdir(d));) {
        if (ent->d_name[0] == '.') continue;
        char path[2600];
        snprintf(path, sizeof path, "%s/%s/cell.json", cells_dir, ent->d_name);
        cJSON* info = read_json_file(path);
        if (!info) continue;
        if (n_cells == cap) cf = xrealloc(cf, sizeof(CellFiles) * (size_t)(cap = cap ? 2 * cap : 16));
        CellFiles* c = &cf[n_cells++];
        snprintf(c->name, sizeof c->name, "%s", ent->d_name);
        c->info = info;
        snprintf(path, sizeof path, "%s/%s", cells_dir, ent->d_name);
        for (int s = 0; s < N_STAGES; s++) c->metrics[s] = stage_metrics(path, stages[s]);  // only finished stages count
    }
    closedir(d);
    // the fixed columns, then per-batch bench columns beyond batch 1 as found
    size_t nfixed = sizeof columns / sizeof columns[0], ncol = nfixed;
    char** cols = xmalloc(sizeof(char*) * (nfixed + 512));
    for (size_t k = 0; k < nfixed; k++) cols[k] = xstrdup(columns[k]);
    for (int i = 0; i < n_cells; i++) {
        const cJSON* bm = cf[i].metrics[5];
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
    Row* rows = xcalloc((size_t)(n_cells ? n_cells : 1), sizeof(Row));
    for (int i = 0; i < n_cells; i++) {
        CellFiles* c = &cf[i];
        ByteVec line = {0};
        for (size_t k = 0; k < ncol; k++) {
            const char* col = cols[k];
            const char* dot = strchr(col, '.');
            const cJSON* v = NULL;
            if (!dot) {  // the cell's own facts, else its shape from eval (or prune)
                v = cJSON_GetObjectItem(c->info, col);
                if (!v && c->metrics[4]) v = cJSON_GetObjectItem(c->metrics[4], col);
                if (!v && c->metrics[0]) v = cJSON_GetObjectItem(c->metrics[0], col);
            } else {
                for (int s = 0; s < N_STAGES; s++)
                    if (!strncmp(col, stages[s], (size_t)(dot - col)) && strlen(stages[s]) == (size_t)(dot - col) && c->metrics[s])
                        v = cJSON_GetObjectItem(c->metrics[s], dot + 1);
            }
            char cellv[512] = "";
            if (cJSON_IsString(v)) snprintf(cellv, sizeof cellv, "%s", v->valuestring);
            else if (cJSON_IsNumber(v)) snprintf(cellv, sizeof cellv, "%.6g", v->valuedouble);
            csv_field(&line, cellv);
            bytevec_append(&line, k + 1 < ncol ? "," : "\n", 1);
        }
        bytevec_append(&line, "", 1);
        const cJSON* kind = cJSON_GetObjectItem(c->info, "kind");
        const cJSON* order = cJSON_GetObjectItem(c->info, "order");
        const cJSON* label = cJSON_GetObjectItem(c->info, "label");
        const char* k = cJSON_IsString(kind) ? kind->valuestring : "";
        rows[i].kind_rank = !strcmp(k, "teacher") ? 0 : !strcmp(k, "teacher-corrected") ? 1 : !strcmp(k, "baseline") ? 2
                            : !strcmp(k, "pruned") ? 3 : 4;
        rows[i].order = cJSON_IsNumber(order) ? order->valueint : 1 << 30;
        snprintf(rows[i].label, sizeof rows[i].label, "%s", cJSON_IsString(label) ? label->valuestring : c->name);
        rows[i].text = line.data;
        for (int s = 0; s < N_STAGES; s++) cJSON_Delete(c->metrics[s]);
        cJSON_Delete(c->info);
    }
    append_rows(&csv, rows, n_cells);
    free(cf);
    for (size_t k = 0; k < ncol; k++) free(cols[k]);
    free(cols);
    char out[2200];
    snprintf(out, sizeof out, "%s/results.csv", dir);
    int rc = write_table(dir, "results.csv", &csv, e) || collect_subjects(dir, cells_dir, e) || collect_rounds(dir, cells_dir, e);
    if (!rc) fprintf(stderr, "collect: %d cells -> %s\n", n_cells, out);
    return rc;
}
