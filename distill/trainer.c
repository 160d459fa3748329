// trainer.c: see trainer.h.
#include "trainer.h"

#include <xxhash.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kernels/clock.h"
#include "../models/dir_lock.h"
#include "../models/file_io.h"
#include "../models/vec.h"

int trainer_init(Trainer* tr, Model* student, const Model* teacher, int B, int T, int recompute, int gpu, Err* e) {
    memset(tr, 0, sizeof *tr);
    const ModelConfig* c = &student->cfg;
    if (teacher && teacher->cfg.vocab != c->vocab)
        return err_set(e, "teacher and student vocabularies differ (%d vs %d)", teacher->cfg.vocab, c->vocab);
    if (T > c->max_positions) return err_set(e, "seq_len %d exceeds the student's context of %d", T, c->max_positions);
    if (teacher && T > teacher->cfg.max_positions)
        return err_set(e, "seq_len %d exceeds the teacher's context of %d", T, teacher->cfg.max_positions);
    tr->student = student;
    tr->teacher = teacher;
    tr->B = B;
    tr->T = T;
    tr->inputs = xmalloc(sizeof(int) * (size_t)B * T * 2);
    tr->targets = tr->inputs + (size_t)B * T;
    if (gpu) return trainer_gpu_open(&tr->gpu, student, teacher, B, T, recompute, e);
    size_t n = student->table.n_floats;
    tr->grads = xaligned_alloc(sizeof(float) * n);
    tr->m = xaligned_alloc(sizeof(float) * n);
    tr->v = xaligned_alloc(sizeof(float) * n);
    weights_bind(&student->table, c, tr->grads, &tr->g);
    train_acts_create(&tr->sa, c, B, T, recompute);
    if (teacher) {
        runstate_create(&tr->trs, &teacher->cfg, B * T, T);
        kvcache_create(&tr->tcache, &teacher->cfg, B, T);
        tr->t_hidden = xaligned_alloc_uninit(sizeof(float) * (size_t)B * T * teacher->cfg.hidden);
    }
    tr->d_xnf = xaligned_alloc_uninit(sizeof(float) * (size_t)B * T * c->hidden);
    return 0;
}

void trainer_free(Trainer* tr) {
    if (tr->gpu) {
        trainer_gpu_close(tr->gpu);
        free(tr->inputs);
        memset(tr, 0, sizeof *tr);
        return;
    }
    free(tr->grads);
    free(tr->m);
    free(tr->v);
    weights_free(&tr->g);
    train_acts_free(&tr->sa);
    if (tr->teacher) {
        runstate_free(&tr->trs);
        kvcache_free(&tr->tcache);
        free(tr->t_hidden);
    }
    free(tr->t_slot);
    free(tr->t_capture);
    free(tr->d_layers);
    free(tr->d_layer_ptrs);
    free(tr->d_xnf);
    free(tr->inputs);
    memset(tr, 0, sizeof *tr);
}

static void split_windows(Trainer* tr, const int* windows) {
    for (int b = 0; b < tr->B; b++)
        for (int t = 0; t < tr->T; t++) {
            tr->inputs[b * tr->T + t] = windows[(size_t)b * (tr->T + 1) + t];
            tr->targets[b * tr->T + t] = windows[(size_t)b * (tr->T + 1) + t + 1];
        }
}

// Buffers of the intermediate hidden-state loss, made on first use.
static int hidden_setup(Trainer* tr, const TrainConfig* cfg, Err* e) {
    if (tr->t_slot) return 0;
    const ModelConfig *sc = &tr->student->cfg, *tc = tr->teacher ? &tr->teacher->cfg : NULL;
    if (!tc) return err_set(e, "the hidden-state loss needs a teacher");
    if (tc->hidden != sc->hidden)
        return err_set(e, "the hidden-state loss needs equal hidden sizes (teacher %d, student %d)", tc->hidden, sc->hidden);
    if (!cfg->layer_map) return err_set(e, "the hidden-state loss needs a layer map");
    size_t NC = (size_t)tr->B * tr->T * sc->hidden;
    tr->t_slot = xmalloc(sizeof(int) * (size_t)tc->n_layers);
    for (int l = 0; l < tc->n_layers; l++) tr->t_slot[l] = -1;
    for (int i = 0; i < sc->n_layers; i++) {
        if (cfg->layer_map[i] < 0 || cfg->layer_map[i] >= tc->n_layers)
            return err_set(e, "layer map: student layer %d -> %d is not a teacher layer", i, cfg->layer_map[i]);
        tr->t_slot[cfg->layer_map[i]] = cfg->layer_map[i];
    }
    tr->t_capture = xaligned_alloc_uninit(sizeof(float) * NC * (size_t)tc->n_layers);
    tr->d_layers = xaligned_alloc_uninit(sizeof(float) * NC * (size_t)sc->n_layers);
    tr->d_layer_ptrs = xmalloc(sizeof(float*) * (size_t)sc->n_layers);
    for (int i = 0; i < sc->n_layers; i++) tr->d_layer_ptrs[i] = tr->d_layers + NC * (size_t)i;
    return 0;
}

// forward of teacher and student on tr->inputs, then the loss (and its gradients when `grads`)
static int forward_loss(Trainer* tr, const TrainConfig* cfg, float grad_scale, int grads, LossValues* lv, Err* e) {
    const Model* s = tr->student;
    int N = tr->B * tr->T, hidden = cfg->hidden_kind != HIDDEN_NONE;
    if (tr->gpu)
        return trainer_gpu_forward_loss(tr->gpu, &cfg->loss, cfg->hidden_kind, cfg->hidden_weight, cfg->layer_map,
                                        tr->inputs, tr->targets, grads ? grad_scale : 0.0f, lv, e);
    if (hidden && hidden_setup(tr, cfg, e)) return -1;
    if (tr->teacher && model_forward_hidden(tr->teacher, &tr->trs, &tr->tcache, tr->inputs, tr->sa.seq, tr->sa.pos, N,
                                            tr->t_hidden, hidden ? tr->t_capture : NULL, tr->t_slot, e))
        return -1;
    if (train_forward(s, &tr->sa, tr->inputs, e)) return -1;
    if (lm_head_loss(&cfg->loss, tr->sa.xnf, s->w.lm_head, N, s->cfg.hidden, s->cfg.vocab, tr->targets,
                     tr->teacher ? tr->t_hidden : NULL, tr->teacher ? tr->teacher->w.lm_head : NULL,
                     tr->teacher ? tr->teacher->cfg.hidden : 0, grad_scale, tr->d_xnf, grads ? tr->g.lm_head : NULL,
                     lv, e))
        return -1;
    lv->hidden = 0;
    if (hidden) {
        int Ls = s->cfg.n_layers;
        size_t NC = (size_t)N * s->cfg.hidden;
        float scale = grad_scale * cfg->hidden_weight / (float)Ls;
        for (int i = 0; i < Ls; i++)
            lv->hidden += hidden_loss(cfg->hidden_kind, tr->sa.res + NC * (size_t)(i + 1),
                                      tr->t_capture + NC * (size_t)cfg->layer_map[i], N, s->cfg.hidden, scale,
                                      tr->d_layer_ptrs[i]);
        lv->hidden /= Ls;
        lv->total += cfg->hidden_weight * lv->hidden;
        if (!isfinite(lv->total)) return err_set(e, "the loss is not finite (%g)", lv->total);
    }
    return 0;
}

int trainer_step(Trainer* tr, const TrainConfig* cfg, const int* windows, LossValues* lv, double* gnorm, float* lr,
                 Err* e) {
    int K = cfg->grad_accum > 0 ? cfg->grad_accum : 1;
    size_t n = tr->student->table.n_floats;
    if (!tr->gpu) memset(tr->grads, 0, sizeof(float) * n);  // the GPU's were zeroed by its last step
    memset(lv, 0, sizeof *lv);
    for (int k = 0; k < K; k++) {
        split_windows(tr, windows + (size_t)k * tr->B * (tr->T + 1));
        LossValues mv;
        if (forward_loss(tr, cfg, 1.0f / (float)K, 1, &mv, e)) return err_prefix(e, "step %d", tr->step + 1);
        if (tr->gpu)
            trainer_gpu_backward(tr->gpu, tr->inputs);
        else
            train_backward(tr->student, &tr->sa, tr->inputs, tr->d_xnf,
                           cfg->hidden_kind != HIDDEN_NONE ? tr->d_layer_ptrs : NULL, &tr->g);
        lv->total += mv.total / K;
        lv->ce += mv.ce / K;
        lv->kd += mv.kd / K;
        lv->hidden += mv.hidden / K;
        lv->matmul_seconds += mv.matmul_seconds;
        lv->matmul_flops += mv.matmul_flops;
    }
    if (tr->gpu) {  // clipping and AdamW on the device, the same rules
        *lr = lr_at(&cfg->optim, tr->step);
        *gnorm = trainer_gpu_optimizer_step(tr->gpu, &cfg->optim, *lr);
        if (!isfinite(*gnorm)) return err_set(e, "step %d: the gradient norm is not finite", tr->step + 1);
        tr->step++;
        return 0;
    }
    *gnorm = grad_norm(tr->grads, n);
    if (!isfinite(*gnorm)) return err_set(e, "step %d: the gradient norm is not finite", tr->step + 1);
    if (cfg->optim.clip > 0 && *gnorm > cfg->optim.clip) {
        float scale = (float)(cfg->optim.clip / (*gnorm + 1e-6));
        for (size_t i = 0; i < n; i++) tr->grads[i] *= scale;
    }
    *lr = lr_at(&cfg->optim, tr->step);
    adamw_step(&cfg->optim, &tr->student->table, tr->student->arena, tr->grads, tr->m, tr->v, tr->step + 1, *lr);
    tr->step++;
    return 0;
}

int trainer_validate(Trainer* tr, const TrainConfig* cfg, const DataLoader* d, LossValues* lv, Err* e) {
    uint64_t n = cfg->val_windows > 0 && (uint64_t)cfg->val_windows < d->n_val ? (uint64_t)cfg->val_windows : d->n_val;
    memset(lv, 0, sizeof *lv);
    if (n == 0) return 0;
    int* windows = xmalloc(sizeof(int) * (size_t)tr->B * (tr->T + 1));
    int batches = 0, rc = 0;
    for (uint64_t k0 = 0; k0 < n && !rc; k0 += (uint64_t)tr->B, batches++) {
        for (int b = 0; b < tr->B; b++) data_val_window(d, (k0 + (uint64_t)b) % n, windows + (size_t)b * (tr->T + 1));
        split_windows(tr, windows);
        LossValues mv;
        rc = forward_loss(tr, cfg, 1.0f, 0, &mv, e);
        lv->total += mv.total, lv->ce += mv.ce, lv->kd += mv.kd, lv->hidden += mv.hidden;
    }
    free(windows);
    lv->total /= batches, lv->ce /= batches, lv->kd /= batches, lv->hidden /= batches;
    return rc;
}

// ---------------------------------------------------------------------------------------------
// state file: "ARBORTRN", u32 version (2), u32 0, u64 step, n_floats, epoch, cursor, seed, n_train; at
// byte 64 the XXH3-64 of the whole file with these 8 bytes zeroed; padded to 128 bytes; then parameters,
// m, v (float32). Version 1 files (no checksum) are still read, their fields checked the same way.

#define STATE_HEADER 128
#define STATE_SUM_AT 64

static uint64_t state_checksum(const uint8_t* header, const float* const parts[3], size_t n) {
    uint8_t h[STATE_HEADER];
    memcpy(h, header, sizeof h);
    memset(h + STATE_SUM_AT, 0, 8);
    XXH3_state_t* st = XXH3_createState();
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, h, sizeof h);
    for (int i = 0; i < 3; i++) XXH3_64bits_update(st, parts[i], sizeof(float) * n);
    uint64_t sum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return sum;
}

int trainer_save(const Trainer* tr, const DataLoader* d, const char* path, Err* e) {
    uint8_t h[STATE_HEADER] = "ARBORTRN";
    uint64_t fields[6] = {(uint64_t)tr->step, tr->student->table.n_floats, d ? d->epoch : 0, d ? d->cursor : 0,
                          d ? d->seed : 0, d ? d->n_train : 0};
    uint32_t version = 2;
    memcpy(h + 8, &version, 4);
    memcpy(h + 16, fields, sizeof fields);
    size_t n = tr->student->table.n_floats;
    float *m = tr->m, *v = tr->v;
    if (tr->gpu) {  // the GPU's masters into the student's arena, its moments into host copies
        m = xmalloc(sizeof(float) * n * 2);
        v = m + n;
        trainer_gpu_get_state(tr->gpu, tr->student->arena, m, v);
    }
    const float* parts[3] = {tr->student->arena, m, v};
    uint64_t sum = state_checksum(h, parts, n);
    memcpy(h + STATE_SUM_AT, &sum, 8);
    AtomicFile f;
    int rc = atomic_open(&f, path, e) || atomic_write(&f, h, sizeof h, e) ||
                     atomic_write(&f, tr->student->arena, sizeof(float) * n, e) ||
                     atomic_write(&f, m, sizeof(float) * n, e) || atomic_write(&f, v, sizeof(float) * n, e)
                 ? -1
                 : 0;
    if (!rc) rc = atomic_commit(&f, e);
    if (tr->gpu) free(m);
    return rc;
}

int trainer_load(Trainer* tr, DataLoader* d, const char* path, Err* e) {
    size_t len;
    char* buf = file_read_all(path, &len, e);
    if (!buf) return -1;
    size_t n = tr->student->table.n_floats;
    uint64_t fields[6], stored_sum = 0;
    uint32_t version = 0;
    if (len >= STATE_HEADER) memcpy(&version, buf + 8, 4), memcpy(fields, buf + 16, sizeof fields), memcpy(&stored_sum, buf + STATE_SUM_AT, 8);
    const float* p = (const float*)(buf + STATE_HEADER);
    int rc = 0;
    if (len < STATE_HEADER || memcmp(buf, "ARBORTRN", 8) != 0 || (version != 1 && version != 2))
        rc = err_set(e, "%s: not an arbor training state (version 1 or 2)", path);
    else if (fields[1] != n || len != STATE_HEADER + 3 * sizeof(float) * n)
        rc = err_set(e, "%s: holds %llu parameters (in %zu bytes), the student has %zu", path, (unsigned long long)fields[1], len, n);
    else if (version == 2) {
        const float* parts[3] = {p, p + n, p + 2 * n};
        if (state_checksum((const uint8_t*)buf, parts, n) != stored_sum)
            rc = err_set(e, "%s: checksum mismatch: the state file is corrupt", path);
    }
    if (!rc && fields[0] > (1u << 30)) rc = err_set(e, "%s: step %llu is not a step count", path, (unsigned long long)fields[0]);
    if (!rc && d && (fields[4] != d->seed || fields[5] != d->n_train))
        rc = err_set(e, "%s: was written for another data split or seed", path);
    if (!rc && d && (fields[3] > d->n_train || fields[2] > (1u << 30)))
        rc = err_set(e, "%s: data position (epoch %llu, window %llu) is outside the %llu training windows", path,
                     (unsigned long long)fields[2], (unsigned long long)fields[3], (unsigned long long)d->n_train);
    for (size_t i = 0; i < 3 * n && !rc; i++)  // parameters and moments finite; second moments not negative
        if (!isfinite(p[i]) || (i >= 2 * n && p[i] < 0))
            rc = err_set(e, "%s: value %zu of the %s is %g", path, i % n, i < n ? "parameters" : i < 2 * n ? "first moments" : "second moments",
                         (double)p[i]);
    if (!rc) {
        memcpy(tr->student->arena, p, sizeof(float) * n);
        tr->step = (int)fields[0];
        if (tr->gpu) {
            trainer_gpu_set_state(tr->gpu, tr->student->arena, p + n, p + 2 * n, tr->step);
        } else {
            memcpy(tr->m, p + n, sizeof(float) * n);
            memcpy(tr->v, p + 2 * n, sizeof(float) * n);
        }
        if (d) data_seek(d, fields[2], fields[3]);
    }
    free(buf);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// the run

static void fmt_duration(char* out, size_t n, double s) {
    if (s < 60) snprintf(out, n, "%.0fs", s);
    else if (s < 3600) snprintf(out, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(out, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

// keeps log.csv's header and its rows up to `step` (a resumed run logs the later steps again)
static int log_keep_until(const char* path, int step, Err* e) {
    if (access(path, F_OK) != 0) return 0;
    size_t len;
    char* text = file_read_all(path, &len, e);
    if (!text) return -1;
    ByteVec kept = {0};
    char* line = text;
    for (int first = 1; *line; first = 0) {
        char* end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line + 1) : strlen(line);
        if (first || atoi(line) <= step) bytevec_append(&kept, line, n);
        line += n;
    }
    int rc = file_write_atomic(path, kept.data ? kept.data : "", kept.len, e);
    free(kept.data);
    free(text);
    return rc;
}

static int train_run_locked(Model* student, const Model* teacher, const Shard* shard, const TrainConfig* cfg_in,
                            TrainSummary* summary, Err* e) {
    TrainSummary sum = {{NAN, NAN, NAN, NAN, 0, 0}, NAN, 0, 0};
    TrainConfig cfg = *cfg_in;
    cfg.optim.total_steps = cfg.steps;
    if (shard->vocab_size > student->cfg.vocab)
        return err_set(e, "%s: the shard's vocabulary (%d) exceeds the student's (%d)", shard->path, shard->vocab_size,
                       student->cfg.vocab);
    if (make_dirs(cfg.out_dir, e)) return -1;
    DataLoader d;
    if (data_open(&d, shard, cfg.seq_len, cfg.val_fraction, cfg.seed, e)) return -1;
    Trainer tr;
    if (trainer_init(&tr, student, teacher, cfg.batch, cfg.seq_len, cfg.recompute, cfg.gpu, e)) {
        trainer_free(&tr);
        data_close(&d);
        return -1;
    }
    char state[4200], log_path[4200];
    snprintf(state, sizeof state, "%s/train_state.bin", cfg.out_dir);
    snprintf(log_path, sizeof log_path, "%s/log.csv", cfg.out_dir);
    int rc = 0;
    if (cfg.resume && access(state, F_OK) == 0) {
        rc = trainer_load(&tr, &d, state, e);
        if (!rc) fprintf(stderr, "resumed from %s at step %d\n", state, tr.step);
    }
    if (!rc && tr.step > 0) rc = log_keep_until(log_path, tr.step, e);  // steps after the saved state run again
    FILE* log = rc ? NULL : fopen(log_path, tr.step > 0 ? "a" : "w");
    if (!rc && !log) rc = err_set(e, "%s: cannot write the log", log_path);
    if (log && tr.step == 0) fprintf(log, "step,loss,ce,kd,lr,grad_norm,tokens_per_s,val_loss\n");
    int K = cfg.grad_accum > 0 ? cfg.grad_accum : 1;
    int* windows = xmalloc(sizeof(int) * (size_t)K * cfg.batch * (cfg.seq_len + 1));
    double t_start = now_seconds();
    int first_step = tr.step, last_saved = tr.step;
    while (!rc && tr.step < cfg.steps && !(cfg.stop_at > 0 && tr.step >= cfg.stop_at)) {
        double t0 = now_seconds();
        data_next_train(&d, K * cfg.batch, windows);
        LossValues lv;
        double gnorm;
        float lr;
        rc = trainer_step(&tr, &cfg, windows, &lv, &gnorm, &lr, e);
        if (rc) break;
        double dt = now_seconds() - t0, tok_s = (double)K * cfg.batch * cfg.seq_len / dt;
        LossValues val = {NAN, NAN, NAN, NAN, 0, 0};
        if (cfg.val_every > 0 && (tr.step % cfg.val_every == 0 || tr.step == cfg.steps))
            rc = trainer_validate(&tr, &cfg, &d, &val, e);
        fprintf(log, "%d,%.6f,%.6f,%.6f,%.6g,%.6f,%.1f,%.6f\n", tr.step, lv.total, lv.ce, lv.kd, lr, gnorm, tok_s, val.total);
        sum.last = lv, sum.tokens_per_s = tok_s, sum.steps = tr.step;
        if (!isnan(val.total)) sum.val_loss = val.total;
        fflush(log);
        int log_every = cfg.log_every > 0 ? cfg.log_every : 1;
        if (tr.step % log_every == 0 || tr.step == cfg.steps || !isnan(val.total)) {
            double elapsed = now_seconds() - t_start, eta = elapsed / (tr.step - first_step) * (cfg.steps - tr.step);
            char eta_s[32];
            fmt_duration(eta_s, sizeof eta_s, eta);
            fprintf(stderr, "step %d/%d | loss %.4f (ce %.4f kd %.4f", tr.step, cfg.steps, lv.total, lv.ce, lv.kd);
            if (cfg.hidden_kind != HIDDEN_NONE) fprintf(stderr, " hidden %.4f", lv.hidden);
            fprintf(stderr, ") | lr %.3g | grad norm %.3f | %.0f tokens/s | ETA %s", lr, gnorm, tok_s, eta_s);
            if (!isnan(val.total)) fprintf(stderr, " | val %.4f", val.total);
            fprintf(stderr, "\n");
        }
        if (!rc && cfg.save_every > 0 && tr.step % cfg.save_every == 0 && tr.step < cfg.steps) {
            rc = trainer_save(&tr, &d, state, e);
            last_saved = tr.step;
        }
    }
    if (rc && last_saved > 0) err_prefix(e, "stopped; the last good state is %s (step %d)", state, last_saved);
    if (!rc) rc = trainer_save(&tr, &d, state, e);
    if (!rc) {
        char model_dir[4200];
        snprintf(model_dir, sizeof model_dir, "%s/model", cfg.out_dir);
        rc = model_save(student, model_dir, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, e);
        if (!rc) fprintf(stderr, "saved %s\n", model_dir);
    }
    if (log) fclose(log);
    if (summary) *summary = sum;
    free(windows);
    trainer_free(&tr);
    data_close(&d);
    return rc;
}

// one run per output folder at a time: two runs on one --out would write one state and log between them
int train_run(Model* student, const Model* teacher, const Shard* shard, const TrainConfig* cfg, TrainSummary* summary,
              Err* e) {
    int lock = -1;
    if (make_dirs(cfg->out_dir, e) || dir_lock(cfg->out_dir, &lock, e)) return -1;
    remove_stale_tmp(cfg->out_dir);  // a killed run's half-written state (it can be model-sized)
    int rc = train_run_locked(student, teacher, shard, cfg, summary, e);
    dir_unlock(lock);
    return rc;
}
