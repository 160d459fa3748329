// trainer.c: see trainer.h.
#include "trainer.h"

#include <xxhash.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kernels/clock.h"
#include "../models/dir_lock.h"
#include "../models/file_io.h"
#include "../models/vec.h"

int trainer_init(Trainer* tr, Model* student, const Model* teacher, int B, int T, int recompute, int gpu, const Dist* dist,
                 Err* e) {
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
    tr->world = 1;
    tr->hi = student->table.n_floats;  // one process: the whole arena (trainer_set_dist changes it)
    tr->inputs = xmalloc(sizeof(int) * (size_t)B * T * 2);
    tr->targets = tr->inputs + (size_t)B * T;
    if (gpu) return trainer_gpu_open(&tr->gpu, student, teacher, B, T, recompute, dist, e);
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
    free(tr->acc);
    free(tr->bounds);
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
    collectives_close(&tr->coll);
    grad_bucket_plan_free(&tr->plan);
    memset(tr, 0, sizeof *tr);
}

int trainer_set_dist(Trainer* tr, const Dist* dist, int zero1, uint64_t global_windows, size_t bucket_bytes, int reduce_bf16,
                     Err* e) {
    tr->global_windows = global_windows;
    tr->dist = dist && dist->world > 1 ? dist : NULL;
    tr->world = tr->dist ? dist->world : 1;
    collectives_close(&tr->coll);
    grad_bucket_plan_free(&tr->plan);
    if (!bucket_bytes) bucket_bytes = GRAD_BUCKET_DEFAULT_BYTES;
    if (tr->gpu) {
        tr->zero1 = zero1 && tr->dist;  // the GPU side shards its own state (reported in run.json and the log)
        return tr->dist ? trainer_gpu_set_dist(tr->gpu, tr->dist, bucket_bytes, zero1, reduce_bf16, e) : 0;
    }
    if (reduce_bf16) return err_set(e, "bf16 gradient reduction is the GPU path's (the CPU sums in fp64, exactly)");
    if (tr->dist) {  // the CPU path reduces the fp64 sums: a bucket's bound in fp64 elements
        GradTensor* tensors = grad_tensors_of_table(&tr->student->table);
        size_t elems = bucket_bytes / sizeof(double);
        int rc = grad_bucket_plan(tensors, tr->student->table.n_params, elems ? elems : 1, 0, &tr->plan, e);
        free(tensors);
        if (rc) return -1;
        collectives_open_mpi(&tr->coll, tr->dist);
    }
    size_t n = tr->student->table.n_floats;
    tr->zero1 = zero1 && tr->world > 1;
    free(tr->bounds);
    tr->bounds = xmalloc(sizeof(size_t) * (size_t)(tr->world + 1));
    // whole grad-norm blocks per rank, so each rank's share of the norm is the blocks it owns
    size_t blocks = (n + GRAD_NORM_BLOCK - 1) / GRAD_NORM_BLOCK;
    for (int r = 0; r <= tr->world; r++) {
        size_t b = blocks * (size_t)r / (size_t)tr->world * GRAD_NORM_BLOCK;
        tr->bounds[r] = tr->zero1 ? (b < n ? b : n) : (r ? n : 0);
    }
    tr->lo = tr->zero1 ? tr->bounds[dist->rank] : 0;
    tr->hi = tr->zero1 ? tr->bounds[dist->rank + 1] : n;
    free(tr->m);
    free(tr->v);
    size_t own = tr->hi - tr->lo;
    tr->m = xaligned_alloc(sizeof(float) * (own ? own : 1));
    tr->v = xaligned_alloc(sizeof(float) * (own ? own : 1));
    return 0;
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
    LossConfig loss = cfg->loss;
    if (grads && loss.kd_auto_scale > 0) {  // this micro-batch's values first (no gradient), then the weight
        LossValues probe;
        if (lm_head_loss(&loss, tr->sa.xnf, s->w.lm_head, N, s->cfg.hidden, s->cfg.vocab, tr->targets, tr->t_hidden,
                         tr->teacher->w.lm_head, tr->teacher->cfg.hidden, grad_scale, tr->d_xnf, NULL, &probe, e))
            return -1;
        loss.kd_weight = probe.kd > 0 && probe.ce > 0 ? (float)(loss.kd_auto_scale * probe.ce / probe.kd) : loss.kd_auto_scale;
    }
    if (lm_head_loss(&loss, tr->sa.xnf, s->w.lm_head, N, s->cfg.hidden, s->cfg.vocab, tr->targets,
                     tr->teacher ? tr->t_hidden : NULL, tr->teacher ? tr->teacher->w.lm_head : NULL,
                     tr->teacher ? tr->teacher->cfg.hidden : 0, grad_scale, tr->d_xnf, grads ? tr->g.lm_head : NULL,
                     lv, e))
        return -1;
    lv->kd_weight = loss.kd_weight;
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

// the per-micro-batch losses of every rank, summed in global micro-batch order (rank-major): the same
// additions whatever the split
static int sum_losses(const Trainer* tr, const LossValues* mine, int K, LossValues* lv, Err* e) {
    int M = K * tr->world;
    enum { F = 5 };  // fields per micro-batch
    double* local = xmalloc(sizeof(double) * F * (size_t)K);
    double* all = xmalloc(sizeof(double) * F * (size_t)M);
    for (int k = 0; k < K; k++) {
        double* f = local + F * k;
        f[0] = mine[k].total, f[1] = mine[k].ce, f[2] = mine[k].kd, f[3] = mine[k].hidden, f[4] = mine[k].kd_weight;
    }
    int rc = tr->dist ? dist_all_gather(tr->dist, local, sizeof(double) * F * (size_t)K, all, e) : 0;
    if (!tr->dist) memcpy(all, local, sizeof(double) * F * (size_t)K);
    for (int j = 0; j < M && !rc; j++) {
        const double* f = all + F * j;
        lv->total += f[0] / M, lv->ce += f[1] / M, lv->kd += f[2] / M, lv->hidden += f[3] / M, lv->kd_weight += f[4] / M;
    }
    free(local);
    free(all);
    return rc;
}

// the global gradient norm of this rank's slice made whole: each rank's blocks, summed over ranks
// (one non-zero term per block: exact), then added in block order as grad_norm does
static int sharded_grad_norm(const Trainer* tr, double* out, Err* e) {
    size_t n = tr->student->table.n_floats, blocks = (n + GRAD_NORM_BLOCK - 1) / GRAD_NORM_BLOCK;
    double* partial = xcalloc(blocks ? blocks : 1, sizeof(double));
    grad_norm_blocks(tr->grads, n, tr->lo / GRAD_NORM_BLOCK, (tr->hi + GRAD_NORM_BLOCK - 1) / GRAD_NORM_BLOCK, partial);
    int rc = dist_sum_doubles(tr->dist, partial, blocks, e);
    double total = 0;
    for (size_t b = 0; b < blocks; b++) total += partial[b];
    free(partial);
    *out = sqrt(total);
    return rc;
}

// The fp64 gradient sums over the ranks, bucket by bucket in the order the backward finishes them
// (the schedule the GPU path overlaps with its backward): each bucket all-reduced, or with ZeRO-1
// reduce-scattered to the ranks owning its parts. Every element is summed once over the ranks either
// way, so the result does not depend on the buckets.
static int reduce_gradients(Trainer* tr, Err* e) {
    size_t* clipped = xmalloc(sizeof(size_t) * (size_t)(tr->world + 1));
    int rc = 0;
    for (int b = 0; b < tr->plan.n && !rc; b++) {
        const GradBucket* k = &tr->plan.buckets[b];
        if (!tr->zero1) {
            rc = tr->coll.ops->all_reduce(&tr->coll, tr->acc + k->lo, k->hi - k->lo, DIST_F64, e);
            continue;
        }
        grad_bucket_owners(k, tr->bounds, tr->world, clipped);
        rc = tr->coll.ops->reduce_scatter(&tr->coll, tr->acc, clipped, DIST_F64, e);
    }
    free(clipped);
    return rc ? rc : tr->coll.ops->wait(&tr->coll, e);
}

int trainer_step(Trainer* tr, const TrainConfig* cfg, const int* windows, LossValues* lv, double* gnorm, float* lr,
                 Err* e) {
    int K = cfg->grad_accum > 0 ? cfg->grad_accum : 1, M = K * tr->world;
    size_t n = tr->student->table.n_floats;
    int sum_fp64 = !tr->gpu && M > 1;  // each micro-batch from zero, summed in fp64
    if (sum_fp64 && !tr->acc) tr->acc = xaligned_alloc(sizeof(double) * n);
    if (sum_fp64) memset(tr->acc, 0, sizeof(double) * n);
    if (!tr->gpu && !sum_fp64) memset(tr->grads, 0, sizeof(float) * n);  // the GPU's were zeroed by its last step
    memset(lv, 0, sizeof *lv);
    LossValues* mine = xmalloc(sizeof(LossValues) * (size_t)K);
    for (int k = 0; k < K; k++) {
        split_windows(tr, windows + (size_t)k * tr->B * (tr->T + 1));
        if (sum_fp64) memset(tr->grads, 0, sizeof(float) * n);
        if (forward_loss(tr, cfg, 1.0f / (float)M, 1, &mine[k], e)) {
            free(mine);
            return err_prefix(e, "step %d", tr->step + 1);
        }
        if (tr->gpu)
            trainer_gpu_backward(tr->gpu, tr->inputs, k == K - 1);
        else
            train_backward(tr->student, &tr->sa, tr->inputs, tr->d_xnf,
                           cfg->hidden_kind != HIDDEN_NONE ? tr->d_layer_ptrs : NULL, &tr->g);
        if (sum_fp64) {
            double* acc = tr->acc;
            const float* g = tr->grads;
#pragma omp parallel for simd if (n > 65536)
            for (size_t i = 0; i < n; i++) acc[i] += g[i];
        }
        lv->matmul_seconds += mine[k].matmul_seconds;
        lv->matmul_flops += mine[k].matmul_flops;
    }
    int rc = sum_losses(tr, mine, K, lv, e);
    free(mine);
    if (rc) return err_prefix(e, "step %d", tr->step + 1);
    if (tr->gpu) {  // clipping and AdamW on the device, the same rules
        *lr = lr_at(&cfg->optim, tr->step);
        e->msg[0] = 0;
        *gnorm = trainer_gpu_optimizer_step(tr->gpu, &cfg->optim, *lr, e);
        if (e->msg[0]) return err_prefix(e, "step %d", tr->step + 1);
        if (!isfinite(*gnorm)) return err_set(e, "step %d: the gradient norm is not finite", tr->step + 1);
        tr->step++;
        return 0;
    }
    size_t lo = tr->lo, hi = tr->hi;
    if (sum_fp64) {
        if (tr->dist && reduce_gradients(tr, e)) return err_prefix(e, "step %d", tr->step + 1);
        const double* acc = tr->acc;
        float* g = tr->grads;
#pragma omp parallel for simd if (hi - lo > 65536)
        for (size_t i = lo; i < hi; i++) g[i] = (float)acc[i];
    }
    if (tr->zero1) {
        if (sharded_grad_norm(tr, gnorm, e)) return err_prefix(e, "step %d", tr->step + 1);
    } else {
        *gnorm = grad_norm(tr->grads, n);
    }
    if (!isfinite(*gnorm)) return err_set(e, "step %d: the gradient norm is not finite", tr->step + 1);
    if (cfg->optim.clip > 0 && *gnorm > cfg->optim.clip) {
        float scale = (float)(cfg->optim.clip / (*gnorm + 1e-6));
        for (size_t i = lo; i < hi; i++) tr->grads[i] *= scale;
    }
    *lr = lr_at(&cfg->optim, tr->step);
    adamw_step_range(&cfg->optim, &tr->student->table, tr->student->arena, tr->grads, tr->m, tr->v, tr->step + 1, *lr, lo, hi);
    if (tr->zero1 && dist_all_gather_floats(tr->dist, tr->student->arena, tr->bounds, e)) return err_prefix(e, "step %d", tr->step + 1);
    tr->step++;
    return 0;
}

int trainer_validate(Trainer* tr, const TrainConfig* cfg, const DataLoader* d, LossValues* lv, Err* e) {
    uint64_t n = cfg->val_windows > 0 && (uint64_t)cfg->val_windows < d->n_val ? (uint64_t)cfg->val_windows : d->n_val;
    memset(lv, 0, sizeof *lv);
    if (n == 0) return 0;
    int batches = (int)((n + (uint64_t)tr->B - 1) / (uint64_t)tr->B), rank = tr->dist ? tr->dist->rank : 0, rc = 0;
    // batch b on rank b % world; the others' entries stay zero, so the sum over ranks is exact
    double* per = xcalloc((size_t)batches * 4, sizeof(double));
    int* windows = xmalloc(sizeof(int) * (size_t)tr->B * (tr->T + 1));
    for (int b = rank; b < batches && !rc; b += tr->world) {
        uint64_t k0 = (uint64_t)b * (uint64_t)tr->B;
        for (int i = 0; i < tr->B; i++) data_val_window(d, (k0 + (uint64_t)i) % n, windows + (size_t)i * (tr->T + 1));
        split_windows(tr, windows);
        LossValues mv;
        rc = forward_loss(tr, cfg, 1.0f, 0, &mv, e);
        per[4 * b] = mv.total, per[4 * b + 1] = mv.ce, per[4 * b + 2] = mv.kd, per[4 * b + 3] = mv.hidden;
    }
    free(windows);
    if (!rc && tr->dist) rc = dist_sum_doubles(tr->dist, per, (size_t)batches * 4, e);
    for (int b = 0; b < batches; b++) lv->total += per[4 * b], lv->ce += per[4 * b + 1], lv->kd += per[4 * b + 2], lv->hidden += per[4 * b + 3];
    free(per);
    lv->total /= batches, lv->ce /= batches, lv->kd /= batches, lv->hidden /= batches;
    return rc;
}

// ---------------------------------------------------------------------------------------------
// state file: "ARBORTRN", u32 version (3), u32 0, u64 step, n_floats, epoch, cursor, seed, n_train; at
// byte 64 the XXH3-64 of the whole file with these 8 bytes zeroed; at 72 (version 3) u64 windows per
// step over all ranks; padded to 128 bytes; then parameters, m, v (float32, whole: any world size
// resumes it). Versions 1 (no checksum) and 2 (no global batch) are still read, their fields checked
// the same way.

#define STATE_HEADER 128
#define STATE_SUM_AT 64
#define STATE_GLOBAL_AT 72

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

static int write_state(const Trainer* tr, const DataLoader* d, const float* m, const float* v, AtomicFile* f,
                       const char* path, Err* e) {
    uint8_t h[STATE_HEADER] = "ARBORTRN";
    uint64_t fields[6] = {(uint64_t)tr->step, tr->student->table.n_floats, d ? d->epoch : 0, d ? d->cursor : 0,
                          d ? d->seed : 0, d ? d->n_train : 0};
    uint32_t version = 3;
    memcpy(h + 8, &version, 4);
    memcpy(h + 16, fields, sizeof fields);
    memcpy(h + STATE_GLOBAL_AT, &tr->global_windows, 8);
    size_t n = tr->student->table.n_floats;
    const float* parts[3] = {tr->student->arena, m, v};
    uint64_t sum = state_checksum(h, parts, n);
    memcpy(h + STATE_SUM_AT, &sum, 8);
    return atomic_open(f, path, e) || atomic_write(f, h, sizeof h, e) || atomic_write(f, tr->student->arena, sizeof(float) * n, e) ||
                   atomic_write(f, m, sizeof(float) * n, e) || atomic_write(f, v, sizeof(float) * n, e)
               ? -1
               : 0;
}

int trainer_save(const Trainer* tr, const DataLoader* d, const char* path, Err* e) {
    size_t n = tr->student->table.n_floats;
    int root = !tr->dist || tr->dist->rank == 0, rc = 0;
    float *m = tr->m, *v = tr->v, *whole = NULL;
    if (tr->gpu) {  // the GPU's masters into the student's arena, its moments into host copies
        m = whole = xmalloc(sizeof(float) * n * 2);
        v = m + n;
        rc = trainer_gpu_get_state(tr->gpu, tr->student->arena, m, v, e);
    } else if (tr->zero1) {  // the moments' slices to rank 0
        whole = root ? xmalloc(sizeof(float) * n * 2) : NULL;
        rc = dist_gather_floats_to_root(tr->dist, tr->m, whole, tr->bounds, e) ||
             dist_gather_floats_to_root(tr->dist, tr->v, whole ? whole + n : NULL, tr->bounds, e);
        m = whole, v = whole ? whole + n : NULL;
    }
    AtomicFile f;
    int opened = 0;
    if (!rc && root) {
        rc = write_state(tr, d, m, v, &f, path, e);
        opened = 1;
    }
    // renamed into place only when every rank got here without error
    int all_ok = tr->dist ? dist_all_ok(tr->dist, rc == 0) : rc == 0;
    if (opened && !rc && all_ok) {
        rc = atomic_commit(&f, e);
    } else if (opened) {
        atomic_abort(&f);
        if (!rc) rc = err_set(e, "%s: not saved: another rank failed first", path);
    }
    if (tr->dist && !dist_all_ok(tr->dist, rc == 0) && !rc) rc = err_set(e, "%s: rank 0 could not save the state", path);
    free(whole);
    return rc;
}

int trainer_load(Trainer* tr, DataLoader* d, const char* path, Err* e) {
    size_t len;
    char* buf = file_read_all(path, &len, e);
    if (!buf) return -1;
    size_t n = tr->student->table.n_floats;
    uint64_t fields[6], stored_sum = 0, global = 0;
    uint32_t version = 0;
    if (len >= STATE_HEADER)
        memcpy(&version, buf + 8, 4), memcpy(fields, buf + 16, sizeof fields), memcpy(&stored_sum, buf + STATE_SUM_AT, 8),
            memcpy(&global, buf + STATE_GLOBAL_AT, 8);
    const float* p = (const float*)(buf + STATE_HEADER);
    int rc = 0;
    if (len < STATE_HEADER || memcmp(buf, "ARBORTRN", 8) != 0 || version < 1 || version > 3)
        rc = err_set(e, "%s: not an arbor training state (version 1 to 3)", path);
    else if (fields[1] != n || len != STATE_HEADER + 3 * sizeof(float) * n)
        rc = err_set(e, "%s: holds %llu parameters (in %zu bytes), the student has %zu", path, (unsigned long long)fields[1], len, n);
    else if (version >= 2) {
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
    if (!rc && version >= 3 && tr->global_windows && global != tr->global_windows)
        rc = err_set(e, "%s: was written with %llu windows per step over all ranks, this run takes %llu (micro-batch x "
                        "accumulation x ranks): set --grad-accum so that they match",
                     path, (unsigned long long)global, (unsigned long long)tr->global_windows);
    for (size_t i = 0; i < 3 * n && !rc; i++)  // parameters and moments finite; second moments not negative
        if (!isfinite(p[i]) || (i >= 2 * n && p[i] < 0))
            rc = err_set(e, "%s: value %zu of the %s is %g", path, i % n, i < n ? "parameters" : i < 2 * n ? "first moments" : "second moments",
                         (double)p[i]);
    if (!rc) {
        memcpy(tr->student->arena, p, sizeof(float) * n);
        tr->step = (int)fields[0];
        if (tr->gpu) {
            trainer_gpu_set_state(tr->gpu, tr->student->arena, p + n, p + 2 * n, tr->step);
        } else {  // this rank's slice of the moments
            memcpy(tr->m, p + n + tr->lo, sizeof(float) * (tr->hi - tr->lo));
            memcpy(tr->v, p + 2 * n + tr->lo, sizeof(float) * (tr->hi - tr->lo));
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

// a hash of everything every rank must agree on: the settings, the data and the models' weights
static uint64_t settings_hash(const Model* student, const Model* teacher, const Shard* shard, const TrainConfig* c) {
    XXH3_state_t* st = XXH3_createState();
    XXH3_64bits_reset(st);
    int ints[] = {c->steps, c->batch, c->grad_accum, c->seq_len, c->optim.warmup, c->optim.total_steps, c->optim.cosine,
                  (int)c->loss.kd, c->loss.t2_scaling, c->loss.topk, (int)c->hidden_kind, c->val_every, c->val_windows,
                  c->save_every, c->resume, c->stop_at, c->recompute, c->gpu, c->zero1};
    float floats[] = {c->optim.lr, c->optim.min_lr, c->optim.beta1, c->optim.beta2, c->optim.eps, c->optim.weight_decay,
                      c->optim.clip, c->loss.ce_weight, c->loss.kd_weight, c->loss.temperature, c->hidden_weight,
                      c->loss.kd_auto_scale};
    XXH3_64bits_update(st, ints, sizeof ints);
    XXH3_64bits_update(st, floats, sizeof floats);
    XXH3_64bits_update(st, &c->val_fraction, sizeof c->val_fraction);
    XXH3_64bits_update(st, &c->seed, sizeof c->seed);
    XXH3_64bits_update(st, c->out_dir, strlen(c->out_dir) + 1);
    if (c->layer_map) XXH3_64bits_update(st, c->layer_map, sizeof(int) * (size_t)student->cfg.n_layers);
    uint64_t data[3] = {(uint64_t)shard->n_tokens, (uint64_t)shard->vocab_size, (uint64_t)shard->n_docs};
    XXH3_64bits_update(st, data, sizeof data);
    XXH3_64bits_update(st, student->arena, sizeof(float) * student->table.n_floats);
    if (teacher) XXH3_64bits_update(st, teacher->arena, sizeof(float) * teacher->table.n_floats);
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

// test hooks: ARBOR_TEST_KILL_RANK_AT=R:S kills rank R (SIGKILL) once step S is done;
// ARBOR_TEST_STALL_RANK_AT=R:S stops it (SIGSTOP: alive, never answering)
static void maybe_die(const Dist* dist, int step) {
    const char* names[2] = {"ARBOR_TEST_KILL_RANK_AT", "ARBOR_TEST_STALL_RANK_AT"};
    for (int k = 0; k < 2; k++) {
        const char* v = getenv(names[k]);
        int r, s;
        if (v && sscanf(v, "%d:%d", &r, &s) == 2 && r == (dist ? dist->rank : 0) && s == step) {
            fprintf(stderr, "rank %d: %s at step %d (%s)\n", r, k ? "stalled" : "killed", step, names[k]);
            fflush(stderr);
            raise(k ? SIGSTOP : SIGKILL);
        }
    }
}

// run.json: how the run was spread over its ranks, and what that costs each
static int write_run_json(const Trainer* tr, const TrainConfig* cfg, int K, Err* e) {
    size_t n = tr->student->table.n_floats, slice = tr->gpu ? trainer_gpu_shard_elems(tr->gpu) : tr->hi - tr->lo;
    double mb = 1.0 / (1 << 20);
    char text[2048];
    int len = snprintf(text, sizeof text,
                       "{\n  \"ranks\": %d,\n  \"launcher\": \"%s\",\n  \"micro_batch\": %d,\n  \"grad_accum\": %d,\n"
                       "  \"global_batch_windows\": %llu,\n  \"tokens_per_step\": %llu,\n  \"zero1\": %s,\n"
                       "  \"collectives\": \"%s\",\n  \"gradient_buckets\": %d,\n"
                       "  \"memory_per_rank_mb\": {\"parameters\": %.1f, \"gradients\": %.1f, \"adam_moments\": %.1f, "
                       "\"fp64_gradient_sum\": %.1f}\n}\n",
                       tr->world, cfg->dist ? cfg->dist->launcher : "none", cfg->batch, K, (unsigned long long)tr->global_windows,
                       (unsigned long long)tr->global_windows * (unsigned long long)cfg->seq_len, tr->zero1 ? "true" : "false",
                       tr->coll.ops ? tr->coll.name : tr->gpu && tr->world > 1 ? "nccl" : "none",
                       tr->gpu ? trainer_gpu_buckets(tr->gpu) : tr->plan.n, sizeof(float) * n * mb, sizeof(float) * n * mb, 2 * sizeof(float) * slice * mb,
                       (K * tr->world > 1 && !tr->gpu) ? sizeof(double) * n * mb : 0.0);
    char path[4200];
    snprintf(path, sizeof path, "%s/run.json", cfg->out_dir);
    return file_write_atomic(path, text, (size_t)len, e);
}

static int train_run_locked(Model* student, const Model* teacher, const Shard* shard, const TrainConfig* cfg_in,
                            TrainSummary* summary, Err* e) {
    TrainSummary sum = {{NAN, NAN, NAN, NAN, 0, 0, 0}, NAN, 0, 0};
    TrainConfig cfg = *cfg_in;
    cfg.optim.total_steps = cfg.steps;
    const Dist* dist = cfg.dist && cfg.dist->world > 1 ? cfg.dist : NULL;
    int root = !dist || dist->rank == 0, world = dist ? dist->world : 1;
    if (shard->vocab_size > student->cfg.vocab)
        return err_set(e, "%s: the shard's vocabulary (%d) exceeds the student's (%d)", shard->path, shard->vocab_size,
                       student->cfg.vocab);
    if (dist && dist_check_same(dist, settings_hash(student, teacher, shard, &cfg), "settings, data or weights", e)) return -1;
    if (cfg.gpu && cfg.loss.kd_auto_scale > 0)
        return err_set(e, "--kd-scale auto runs on the CPU trainer only (the GPU trainer's loss takes fixed weights)");
    DataLoader d;
    if (data_open(&d, shard, cfg.seq_len, cfg.val_fraction, cfg.seed, e)) return -1;
    int K = cfg.grad_accum > 0 ? cfg.grad_accum : 1;
    uint64_t global_windows = (uint64_t)K * (uint64_t)cfg.batch * (uint64_t)world;
    Trainer tr;
    if (trainer_init(&tr, student, teacher, cfg.batch, cfg.seq_len, cfg.recompute, cfg.gpu, dist, e) ||
        trainer_set_dist(&tr, dist, cfg.zero1, global_windows, cfg.bucket_bytes, cfg.reduce_bf16, e)) {
        trainer_free(&tr);
        data_close(&d);
        return -1;
    }
    char state[4200], log_path[4200];
    snprintf(state, sizeof state, "%s/train_state.bin", cfg.out_dir);
    snprintf(log_path, sizeof log_path, "%s/log.csv", cfg.out_dir);
    int rc = 0, have_state = cfg.resume && access(state, F_OK) == 0;
    if (dist) {  // the state is read by every rank, so every rank must see the same folder
        int all_have = dist_all_ok(dist, have_state), none_have = dist_all_ok(dist, !have_state);
        if (!all_have && !none_have)
            rc = err_set(e, "%s: some ranks see it and some do not: the run folder must be on a filesystem every rank shares", state);
    }
    if (!rc && have_state) {
        rc = trainer_load(&tr, &d, state, e);
        if (!rc && root) fprintf(stderr, "resumed from %s at step %d\n", state, tr.step);
    }
    if (!rc && root && tr.step > 0) rc = log_keep_until(log_path, tr.step, e);  // steps after the saved state run again
    FILE* log = rc || !root ? NULL : fopen(log_path, tr.step > 0 ? "a" : "w");
    if (!rc && root && !log) rc = err_set(e, "%s: cannot write the log", log_path);
    if (log && tr.step == 0) fprintf(log, "step,loss,ce,kd,lr,grad_norm,tokens_per_s,val_loss,kd_weight\n");
    if (!rc && root) rc = write_run_json(&tr, &cfg, K, e);
    if (!rc && root && dist)
        fprintf(stderr, "data parallel: %d ranks (%s) x %d micro-batch%s x %d windows = %llu windows (%llu tokens) per step%s\n",
                world, dist->launcher, K, K > 1 ? "es" : "", cfg.batch, (unsigned long long)global_windows,
                (unsigned long long)global_windows * (unsigned long long)cfg.seq_len, tr.zero1 ? ", ZeRO-1" : "");
    // every rank walks the whole step's windows (the same loader state everywhere) and reads its share
    int per_rank = K * cfg.batch, rank = dist ? dist->rank : 0;
    int* windows = xmalloc(sizeof(int) * (size_t)per_rank * (size_t)(cfg.seq_len + 1));
    double t_start = now_seconds();
    int first_step = tr.step, last_saved = tr.step;
    while (!rc && tr.step < cfg.steps && !(cfg.stop_at > 0 && tr.step >= cfg.stop_at)) {
        double t0 = now_seconds();
        data_next_train(&d, per_rank * rank, NULL);
        data_next_train(&d, per_rank, windows);
        data_next_train(&d, per_rank * (world - 1 - rank), NULL);
        LossValues lv;
        double gnorm;
        float lr;
        rc = trainer_step(&tr, &cfg, windows, &lv, &gnorm, &lr, e);
        if (rc) break;
        double dt = now_seconds() - t0, tok_s = (double)global_windows * cfg.seq_len / dt;
        LossValues val = {NAN, NAN, NAN, NAN, 0, 0, 0};
        if (cfg.val_every > 0 && (tr.step % cfg.val_every == 0 || tr.step == cfg.steps))
            rc = trainer_validate(&tr, &cfg, &d, &val, e);
        if (log) {
            fprintf(log, "%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.1f,%.9g,%.9g\n", tr.step, lv.total, lv.ce, lv.kd, lr, gnorm, tok_s, val.total,
                    lv.kd_weight);
            fflush(log);
        }
        sum.last = lv, sum.tokens_per_s = tok_s, sum.steps = tr.step;
        if (!isnan(val.total)) sum.val_loss = val.total;
        int log_every = cfg.log_every > 0 ? cfg.log_every : 1;
        if (root && (tr.step % log_every == 0 || tr.step == cfg.steps || !isnan(val.total))) {
            double elapsed = now_seconds() - t_start, eta = elapsed / (tr.step - first_step) * (cfg.steps - tr.step);
            char eta_s[32];
            fmt_duration(eta_s, sizeof eta_s, eta);
            fprintf(stderr, "step %d/%d | loss %.4f (ce %.4f kd %.4f", tr.step, cfg.steps, lv.total, lv.ce, lv.kd);
            if (cfg.hidden_kind != HIDDEN_NONE) fprintf(stderr, " hidden %.4f", lv.hidden);
            if (cfg.loss.kd_auto_scale > 0) fprintf(stderr, " kd weight %.4g", lv.kd_weight);
            fprintf(stderr, ") | lr %.3g | grad norm %.3f | %.0f tokens/s | ETA %s", lr, gnorm, tok_s, eta_s);
            if (!isnan(val.total)) fprintf(stderr, " | val %.4f", val.total);
            fprintf(stderr, "\n");
        }
        if (!rc && cfg.save_every > 0 && tr.step % cfg.save_every == 0 && tr.step < cfg.steps) {
            rc = trainer_save(&tr, &d, state, e);
            last_saved = tr.step;
        }
        maybe_die(dist, tr.step);
    }
    if (rc && last_saved > 0) err_prefix(e, "stopped; the last good state is %s (step %d)", state, last_saved);
    if (!rc) rc = trainer_save(&tr, &d, state, e);
    if (!rc && root) {
        char model_dir[4200];
        snprintf(model_dir, sizeof model_dir, "%s/model", cfg.out_dir);
        rc = model_save(student, model_dir, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, e);
        if (!rc) fprintf(stderr, "saved %s\n", model_dir);
    }
    if (dist && !dist_all_ok(dist, rc == 0) && !rc) rc = err_set(e, "rank 0 could not save the model");
    if (log) fclose(log);
    if (summary) *summary = sum;
    free(windows);
    trainer_free(&tr);
    data_close(&d);
    return rc;
}

// one run per output folder at a time: two runs on one --out would write one state and log between them
// (rank 0 holds the lock; the other ranks of a data-parallel run write nothing there)
int train_run(Model* student, const Model* teacher, const Shard* shard, const TrainConfig* cfg, TrainSummary* summary,
              Err* e) {
    int lock = -1, root = !cfg->dist || cfg->dist->rank == 0, rc = 0;
    if (root) {
        rc = make_dirs(cfg->out_dir, e) || dir_lock(cfg->out_dir, &lock, e) ? -1 : 0;
        if (!rc) remove_stale_tmp(cfg->out_dir);  // a killed run's half-written state (it can be model-sized)
    }
    if (cfg->dist && cfg->dist->world > 1 && !dist_all_ok(cfg->dist, rc == 0) && !rc)
        rc = err_set(e, "%s: rank 0 could not take the run folder", cfg->out_dir);
    if (!rc) rc = train_run_locked(student, teacher, shard, cfg, summary, e);
    if (lock >= 0) dir_unlock(lock);
    return rc;
}

int train_log_read(const char* dir, TrainSummary* sum, double kd_range[2], Err* e) {
    char path[4200];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    char* text = file_read_all(path, NULL, e);
    if (!text) return -1;
    *sum = (TrainSummary){{NAN, NAN, NAN, NAN, 0, 0, 0}, NAN, 0, 0};
    if (kd_range) kd_range[0] = kd_range[1] = NAN;
    int rows = 0;
    for (char* line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        int step;
        double loss, ce, kd, lr, gnorm, tok_s;
        char rest[64];  // val_loss,kd_weight
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf,%lf,%63s", &step, &loss, &ce, &kd, &lr, &gnorm, &tok_s, rest) != 8) continue;
        sum->last.total = loss, sum->last.ce = ce, sum->last.kd = kd, sum->tokens_per_s = tok_s, sum->steps = step;
        char* end;
        double val = strtod(rest, &end);
        if (!isnan(val)) sum->val_loss = val;
        double w = *end == ',' ? strtod(end + 1, NULL) : NAN;
        if (kd_range && !isnan(w)) {
            if (isnan(kd_range[0]) || w < kd_range[0]) kd_range[0] = w;
            if (isnan(kd_range[1]) || w > kd_range[1]) kd_range[1] = w;
        }
        rows++;
    }
    free(text);
    return rows ? 0 : err_set(e, "%s: no steps logged", path);
}
