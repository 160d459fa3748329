// trainer_gpu.c: see trainer_gpu.h.
#include "../models/model.h"
#include "trainer_gpu.h"

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
int trainer_gpu_forward_loss(TrainerGpu* g, const LossConfig* cfg, const int* inputs, const int* targets,
                             float grad_scale, LossValues* lv, Err* e) {
    (void)g, (void)cfg, (void)inputs, (void)targets, (void)grad_scale, (void)lv;
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

int trainer_gpu_forward_loss(TrainerGpu* g, const LossConfig* cfg, const int* inputs, const int* targets,
                             float grad_scale, LossValues* lv, Err* e) {
    if (g->has_teacher && cuda_teacher_forward(&g->tforward, inputs, g->B, g->T, e)) return -1;
    if (cuda_train_forward(&g->train, &g->acts, inputs, e)) return -1;
    return cuda_train_loss(&g->train, &g->acts, cfg, targets, g->has_teacher ? g->tforward.rs.xn : NULL,
                           g->has_teacher ? g->teacher.lm_head : NULL, g->has_teacher ? g->teacher.cfg.hidden : 0,
                           grad_scale, lv, e);
}

void trainer_gpu_backward(TrainerGpu* g, const int* inputs) { cuda_train_backward(&g->train, &g->acts, inputs); }

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
