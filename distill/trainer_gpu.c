// trainer_gpu.c: see trainer_gpu.h.
#include "../models/model.h"
#include "trainer_gpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef ARBOR_HAVE_CUDA
int trainer_gpu_open(TrainerGpu** out, const Model* student, const Model* teacher, int B, int T, int recompute,
                     Err* e) {
    (void)student, (void)teacher, (void)B, (void)T, (void)recompute;
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
void trainer_gpu_backward(TrainerGpu* g, const int* inputs) { (void)g, (void)inputs; }
double trainer_gpu_optimizer_step(TrainerGpu* g, const OptimConfig* o, float lr) {
    (void)g, (void)o, (void)lr;
    return 0;
}
void trainer_gpu_get_state(TrainerGpu* g, float* params, float* m, float* v) { (void)g, (void)params, (void)m, (void)v; }
void trainer_gpu_set_state(TrainerGpu* g, const float* params, const float* m, const float* v, int step) {
    (void)g, (void)params, (void)m, (void)v, (void)step;
}
#else
#include "../models/cuda_train.h"
#include "../models/engine.h"

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
};

int trainer_gpu_open(TrainerGpu** out, const Model* student, const Model* teacher, int B, int T, int recompute,
                     Err* e) {
    *out = NULL;
    if (device_available(DEVICE_CUDA, e)) return -1;
    TrainerGpu* g = xcalloc(1, sizeof(TrainerGpu));
    g->ctx = cuda_context_create(0);
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

void trainer_gpu_close(TrainerGpu* g) {
    if (!g) return;
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

void trainer_gpu_backward(TrainerGpu* g, const int* inputs) {
    cuda_train_backward(&g->train, &g->acts, inputs, g->hidden_on ? g->d_layer_ptrs : NULL);
}

double trainer_gpu_optimizer_step(TrainerGpu* g, const OptimConfig* o, float lr) {
    return cuda_train_optimizer_step(&g->train, o, lr);
}

void trainer_gpu_get_state(TrainerGpu* g, float* params, float* m, float* v) {
    cuda_train_model_get_state(&g->train, params, m, v);
}

void trainer_gpu_set_state(TrainerGpu* g, const float* params, const float* m, const float* v, int step) {
    cuda_train_model_set_state(&g->train, params, m, v, step);
}
#endif
