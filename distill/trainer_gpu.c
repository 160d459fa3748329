// trainer_gpu.c: see trainer_gpu.h.
#include "../models/model.h"
#include "trainer_gpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef ARBOR_HAVE_CUDA
int trainer_gpu_open(TrainerGpu** out, const Model* student, const Model* teacher, int B, int T, int recompute,
                     const Dist* dist, Err* e) {
    (void)dist, (void)student, (void)teacher, (void)B, (void)T, (void)recompute;
    *out = NULL;
    return err_set(e, "--device cuda: this arbor was built without CUDA (configure with -DARBOR_CUDA=ON)");
}
void trainer_gpu_close(TrainerGpu* g) { (void)g; }
int trainer_gpu_forward_loss(TrainerGpu* g, const LossConfig* cfg, HiddenLossKind hidden, float hidden_weight,
                             const int* layer_map, const int* inputs, const int* targets, float grad_scale,
                             LossValues* lv, Err* e) {
    (void)g, (void)cfg, (void)hidden, (void)hidden_weight, (void)layer_map, (void)inputs, (void)targets;
    (void)grad_scale, (void)lv;
    return err_set(e, "no CUDA");
}
int trainer_gpu_set_dist(TrainerGpu* g, const Dist* dist, size_t bucket_bytes, int zero1, int reduce_bf16, Err* e) {
    (void)g, (void)dist, (void)bucket_bytes, (void)zero1, (void)reduce_bf16;
    return err_set(e, "no CUDA");
}
size_t trainer_gpu_shard_elems(const TrainerGpu* g) { return (void)g, 0; }
void trainer_gpu_backward(TrainerGpu* g, const int* inputs, int reduce) { (void)g, (void)inputs, (void)reduce; }
int trainer_gpu_buckets(const TrainerGpu* g) { return (void)g, 0; }
double trainer_gpu_optimizer_step(TrainerGpu* g, const OptimConfig* o, float lr, Err* e) {
    (void)g, (void)o, (void)lr, (void)e;
    return 0;
}
int trainer_gpu_get_state(TrainerGpu* g, float* params, float* m, float* v, Err* e) {
    (void)g, (void)params, (void)m, (void)v;
    return err_set(e, "no CUDA");
}
void trainer_gpu_set_state(TrainerGpu* g, const float* params, const float* m, const float* v, int step) {
    (void)g, (void)params, (void)m, (void)v, (void)step;
}
#else
#include "../models/cuda_train.h"
#include "../models/engine.h"
#include "collectives.h"
#include "grad_buckets.h"

struct TrainerGpu {
    CudaContext* ctx;
    CudaModel student, teacher;
    CudaTrainModel train;
    CudaTrainActs acts;
    CudaTeacher tforward;
    int has_teacher, B, T;
    // hidden-state loss, made on first use
    int* t_slot;          // (teacher layers) host: capture slot of each teacher layer, or -1
    float* t_capture;     // (teacher layers, N, C) device
    float* d_layers;      // (student layers, N, C) device
    float** d_layer_ptrs; // (student layers) host array of device pointers
    double* rows;         // (student layers, N) device: each row's hidden loss, layer by layer
    int hidden_on;        // the last forward_loss made hidden-loss gradients (backward adds them)
    int device;           // the rank's GPU
    // data parallel (world > 1): NCCL, the fp32 gradient buckets of the device layout, the next to queue
    Collectives coll;
    const Dist* dist;
    GradBucketPlan plan;
    int next_bucket, reduce_rc;
    Err reduce_err;
    int zero1;
    bf16* grad16;         // (arena) the gradients as the buckets carry them when reduced in bf16; else NULL
    size_t* bounds;       // (world + 1) each rank's shard of the device arena (ZeRO-1)
    size_t* clipped;      // (world + 1) scratch: the shards inside one bucket
};

int trainer_gpu_open(TrainerGpu** out, const Model* student, const Model* teacher, int B, int T, int recompute,
                     const Dist* dist, Err* e) {
    *out = NULL;
    if (config_require_uniform(&student->cfg, "--device cuda", e) ||
        (teacher && config_require_uniform(&teacher->cfg, "--device cuda", e)))
        return -1;
    if (device_available(DEVICE_CUDA, e)) return -1;
    TrainerGpu* g = xcalloc(1, sizeof(TrainerGpu));
    g->device = dist ? dist_cuda_device(dist, cuda_device_count(NULL, 0)) : 0;
    g->ctx = cuda_context_create(g->device);
    g->B = B, g->T = T;
    cuda_model_create(&g->student, g->ctx, &student->cfg);
    cuda_train_model_create(&g->train, &g->student, student);
    cuda_train_acts_create(&g->acts, g->ctx, &student->cfg, B, T, recompute);
    if (teacher) {
        g->has_teacher = 1;
        cuda_model_create(&g->teacher, g->ctx, &teacher->cfg);
        cuda_model_upload(&g->teacher, teacher);
        cuda_teacher_create(&g->tforward, &g->teacher, B, T);
    }
    *out = g;
    return 0;
}

int trainer_gpu_set_dist(TrainerGpu* g, const Dist* dist, size_t bucket_bytes, int zero1, int reduce_bf16, Err* e) {
    collectives_close(&g->coll);
    grad_bucket_plan_free(&g->plan);
    CudaTrainModel* t = &g->train;
    GradTensor* tensors = xmalloc(sizeof(GradTensor) * (size_t)t->table.n_params);
    GradTensor* by_table = grad_tensors_of_table(&t->table);  // the ready points; offsets of the device layout
    for (int i = 0; i < t->table.n_params; i++)
        tensors[i] = (GradTensor){t->offset[i], t->table.params[i].numel, by_table[i].ready_after};
    free(by_table);
    size_t elems = bucket_bytes / (reduce_bf16 ? sizeof(bf16) : sizeof(float));
    if (elems > ((size_t)1 << 30)) elems = (size_t)1 << 30;  // the pack kernel counts a bucket in int
    // the device layout pads each tensor to 128 elements (256 bytes of bf16): the padding, zero, is bridged
    int rc = grad_bucket_plan(tensors, t->table.n_params, elems ? elems : 1, 128, &g->plan, e);
    free(tensors);
    if (rc) return -1;
    g->dist = dist;
    // the shards: equal runs of 128 elements (the arena's own alignment)
    size_t n = g->student.arena_elems, units = (n + 127) / 128;
    free(g->bounds), free(g->clipped);
    g->bounds = xmalloc(sizeof(size_t) * (size_t)(dist->world + 1));
    g->clipped = xmalloc(sizeof(size_t) * (size_t)(dist->world + 1));
    for (int r = 0; r <= dist->world; r++) {
        size_t b = units * (size_t)r / (size_t)dist->world * 128;
        g->bounds[r] = b < n ? b : n;
    }
    g->zero1 = zero1;
    cuda_free(g->grad16);
    g->grad16 = reduce_bf16 ? cuda_malloc(sizeof(bf16) * n) : NULL;
    if (collectives_open_nccl(&g->coll, dist, g->device, e)) return -1;
    if (zero1) cuda_train_model_shard(t, g->bounds[dist->rank], g->bounds[dist->rank + 1]);
    return 0;
}

size_t trainer_gpu_shard_elems(const TrainerGpu* g) { return g->train.shard_hi - g->train.shard_lo; }

int trainer_gpu_buckets(const TrainerGpu* g) { return g->plan.n; }

// the backward queued the gradients of `point`: queue every bucket they complete behind them
static void queue_ready_buckets(void* arg, int point) {
    TrainerGpu* g = arg;
    if (g->reduce_rc || g->next_bucket >= g->plan.n || g->plan.buckets[g->next_bucket].ready_after < point) return;
    int last = g->next_bucket;
    while (last < g->plan.n && g->plan.buckets[last].ready_after >= point) last++;
    for (int k = g->next_bucket; k < last && g->grad16; k++) {  // bf16 copies, on the compute stream, first
        const GradBucket* b = &g->plan.buckets[k];
        cuda_pack_bf16(g->ctx, g->grad16 + b->lo, 0, g->train.grad + b->lo, 0, 1, (int)(b->hi - b->lo));
    }
    g->coll.ops->after_compute(&g->coll, cuda_context_stream(g->ctx));
    DistType type = g->grad16 ? DIST_BF16 : DIST_F32;
    void* base = g->grad16 ? (void*)g->grad16 : (void*)g->train.grad;
    size_t elem = g->grad16 ? sizeof(bf16) : sizeof(float);
    for (; g->next_bucket < last && !g->reduce_rc; g->next_bucket++) {
        const GradBucket* b = &g->plan.buckets[g->next_bucket];
        if (!g->zero1) {
            g->reduce_rc = g->coll.ops->all_reduce(&g->coll, (char*)base + b->lo * elem, b->hi - b->lo, type, &g->reduce_err);
            continue;
        }
        grad_bucket_owners(b, g->bounds, g->coll.world, g->clipped);
        g->reduce_rc = g->coll.ops->reduce_scatter(&g->coll, base, g->clipped, type, &g->reduce_err);
    }
}

void trainer_gpu_close(TrainerGpu* g) {
    if (!g) return;
    collectives_close(&g->coll);
    grad_bucket_plan_free(&g->plan);
    free(g->bounds), free(g->clipped);
    cuda_free(g->grad16);
    free(g->t_slot);
    free(g->d_layer_ptrs);
    cuda_free(g->t_capture);
    cuda_free(g->d_layers);
    cuda_free(g->rows);
    if (g->has_teacher) {
        cuda_teacher_free(&g->tforward);
        cuda_model_free(&g->teacher);
    }
    cuda_train_acts_free(&g->acts);
    cuda_train_model_free(&g->train);
    cuda_model_free(&g->student);
    cuda_context_free(g->ctx);
    free(g);
}

// Buffers of the hidden-state loss, made on first use (the CPU trainer's hidden_setup).
static int hidden_setup(TrainerGpu* g, const int* layer_map, Err* e) {
    if (g->t_slot) return 0;
    const ModelConfig *sc = &g->student.cfg, *tc = g->has_teacher ? &g->teacher.cfg : NULL;
    if (!tc) return err_set(e, "the hidden-state loss needs a teacher");
    if (tc->hidden != sc->hidden)
        return err_set(e, "the hidden-state loss needs equal hidden sizes (teacher %d, student %d)", tc->hidden, sc->hidden);
    if (!layer_map) return err_set(e, "the hidden-state loss needs a layer map");
    for (int i = 0; i < sc->n_layers; i++)
        if (layer_map[i] < 0 || layer_map[i] >= tc->n_layers)
            return err_set(e, "layer map: student layer %d -> %d is not a teacher layer", i, layer_map[i]);
    size_t NC = (size_t)g->B * g->T * sc->hidden;
    g->t_slot = xmalloc(sizeof(int) * (size_t)tc->n_layers);
    for (int l = 0; l < tc->n_layers; l++) g->t_slot[l] = -1;
    for (int i = 0; i < sc->n_layers; i++) g->t_slot[layer_map[i]] = layer_map[i];
    g->t_capture = cuda_malloc(sizeof(float) * NC * (size_t)tc->n_layers);
    g->d_layers = cuda_malloc(sizeof(float) * NC * (size_t)sc->n_layers);
    g->d_layer_ptrs = xmalloc(sizeof(float*) * (size_t)sc->n_layers);
    for (int i = 0; i < sc->n_layers; i++) g->d_layer_ptrs[i] = g->d_layers + NC * (size_t)i;
    g->rows = cuda_malloc(sizeof(double) * (size_t)g->B * g->T * sc->n_layers);
    return 0;
}

int trainer_gpu_forward_loss(TrainerGpu* g, const LossConfig* cfg, HiddenLossKind hidden, float hidden_weight,
                             const int* layer_map, const int* inputs, const int* targets, float grad_scale,
                             LossValues* lv, Err* e) {
    g->hidden_on = 0;
    if (hidden != HIDDEN_NONE && hidden_setup(g, layer_map, e)) return -1;
    if (g->has_teacher) {
        g->tforward.rs.capture = hidden != HIDDEN_NONE ? g->t_capture : NULL;
        g->tforward.rs.capture_slot = g->t_slot;
        if (cuda_teacher_forward(&g->tforward, inputs, g->B, g->T, e)) return -1;
    }
    if (cuda_train_forward(&g->student, &g->acts, inputs, e)) return -1;
    if (cuda_train_loss(&g->train, &g->acts, cfg, targets, g->has_teacher ? g->tforward.rs.xn : NULL,
                        g->has_teacher ? g->teacher.lm_head : NULL, g->has_teacher ? g->teacher.cfg.hidden : 0,
                        grad_scale, lv, e))
        return -1;
    lv->hidden = 0;
    if (hidden == HIDDEN_NONE) return 0;
    int Ls = g->student.cfg.n_layers, N = g->B * g->T, C = g->student.cfg.hidden;
    size_t NC = (size_t)N * C;
    float scale = grad_scale * hidden_weight / (float)Ls;
    for (int i = 0; i < Ls; i++)  // student layer i's output is the residual stream entering layer i + 1
        cuda_hidden_loss(g->ctx, hidden == HIDDEN_COSINE ? 1 : 2, g->acts.res + NC * (size_t)(i + 1),
                         g->t_capture + NC * (size_t)layer_map[i], N, C, scale, g->d_layer_ptrs[i],
                         g->rows + (size_t)i * N);
    double* rows = xmalloc(sizeof(double) * (size_t)Ls * N);  // one download for every layer
    cuda_download(g->ctx, rows, g->rows, sizeof(double) * (size_t)Ls * N);
    for (int i = 0; i < Ls; i++) {
        double layer = 0;
        for (int n = 0; n < N; n++) layer += rows[(size_t)i * N + n];  // row order, as the CPU
        lv->hidden += layer / N;
    }
    free(rows);
    lv->hidden /= Ls;
    lv->total += hidden_weight * lv->hidden;
    g->hidden_on = grad_scale != 0.0f;
    if (!isfinite(lv->total)) return err_set(e, "the loss is not finite (%g)", lv->total);
    return 0;
}

void trainer_gpu_backward(TrainerGpu* g, const int* inputs, int reduce) {
    float* const* extra = g->hidden_on ? g->d_layer_ptrs : NULL;
    if (!reduce || !g->coll.ops) {
        cuda_train_backward(&g->train, &g->acts, inputs, extra);
        return;
    }
    g->next_bucket = 0, g->reduce_rc = 0;
    cuda_train_backward_hooked(&g->train, &g->acts, inputs, extra, queue_ready_buckets, g);
    queue_ready_buckets(g, -1);  // whatever is left (every bucket is ready once the embedding's is)
}

double trainer_gpu_optimizer_step(TrainerGpu* g, const OptimConfig* o, float lr, Err* e) {
    if (!g->coll.ops) return cuda_train_optimizer_step(&g->train, o, lr);
    // the reductions done (bounded), and the update ordered after them
    if (g->reduce_rc) return *e = g->reduce_err, NAN;
    if (g->coll.ops->wait(&g->coll, e)) return NAN;
    void* stream = cuda_context_stream(g->ctx);
    g->coll.ops->compute_waits(&g->coll, stream);
    CudaTrainModel* t = &g->train;
    if (g->grad16)  // the sums back to fp32 (with ZeRO-1 only the shard's, the rest is not summed)
        cuda_bf16_to_f32(g->ctx, t->grad + t->shard_lo, g->grad16 + t->shard_lo, t->shard_hi - t->shard_lo);
    if (!g->zero1) return cuda_train_optimizer_step(t, o, lr);
    // ZeRO-1: the norm from each rank's shard, summed over the ranks; the shard's update; then every
    // rank's bf16 parameters from their owners (bounded wait: the next forward reads them)
    double squares = cuda_train_grad_sum_squares(t, t->shard_lo, t->shard_hi);
    if (dist_all_reduce(g->dist, &squares, 1, DIST_F64, e)) return NAN;
    double norm = cuda_train_optimizer_step_with_norm(t, o, lr, sqrt(squares));
    if (!isfinite(norm)) return norm;
    g->coll.ops->after_compute(&g->coll, stream);
    if (g->coll.ops->all_gather(&g->coll, g->student.arena, g->bounds, DIST_BF16, e) || g->coll.ops->wait(&g->coll, e)) return NAN;
    g->coll.ops->compute_waits(&g->coll, stream);
    return norm;
}

int trainer_gpu_get_state(TrainerGpu* g, float* params, float* m, float* v, Err* e) {
    if (!g->zero1) {
        cuda_train_model_get_state(&g->train, params, m, v);
        return 0;
    }
    // every rank's shard (device layout) to rank 0, which lays the whole out as the CPU arena
    const CudaTrainModel* t = &g->train;
    size_t own = t->shard_hi - t->shard_lo, n = g->student.arena_elems;
    int root = g->dist->rank == 0, rc = 0;
    float* mine = xmalloc(sizeof(float) * 3 * (own ? own : 1));
    float* whole = root ? xmalloc(sizeof(float) * n) : NULL;
    cuda_train_model_get_shard(t, mine, mine + own, mine + 2 * own);
    float* out[3] = {params, m, v};
    for (int k = 0; k < 3 && !rc; k++) {
        rc = dist_gather_floats_to_root(g->dist, mine + (size_t)k * own, whole, g->bounds, e);
        if (!rc && root) cuda_train_layout_to_cpu(t, whole, out[k]);
    }
    free(mine), free(whole);
    return rc;
}

void trainer_gpu_set_state(TrainerGpu* g, const float* params, const float* m, const float* v, int step) {
    cuda_train_model_set_state(&g->train, params, m, v, step);
}
#endif
