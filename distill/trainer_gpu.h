// trainer_gpu.h: the trainer's GPU side (models/cuda_train.h behind a narrow seam), so that
// distill/trainer.c runs the same loop — data, schedule, validation, logs, state files — on either
// backend. A state file written on one backend resumes on the other (the CPU arena's layout).
#pragma once
#include "hidden_loss.h"
#include "loss.h"
#include "optim.h"

typedef struct TrainerGpu TrainerGpu;

// Uploads the student (masters from its fp32 parameters) and the teacher (may be NULL). Fails with
// a one-line reason when arbor has no CUDA or no device is present.
int trainer_gpu_open(TrainerGpu** out, const Model* student, const Model* teacher, int B, int T, int recompute,
                     Err* e);
void trainer_gpu_close(TrainerGpu* g);
// Teacher forward (when there is one), student forward, the loss; gradients too unless grad_scale
// is 0. inputs, targets (B*T) host. With hidden != HIDDEN_NONE also the intermediate hidden-state
// loss between student layer i and teacher layer layer_map[i] (equal hidden sizes), weighted
// hidden_weight and averaged over the student's layers, as distill/trainer.c does on the CPU.
int trainer_gpu_forward_loss(TrainerGpu* g, const LossConfig* cfg, HiddenLossKind hidden, float hidden_weight,
                             const int* layer_map, const int* inputs, const int* targets, float grad_scale,
                             LossValues* lv, Err* e);
void trainer_gpu_backward(TrainerGpu* g, const int* inputs);
// Clip, AdamW, zero the gradients; returns the gradient norm before clipping.
double trainer_gpu_optimizer_step(TrainerGpu* g, const OptimConfig* o, float lr);
// params, m, v (n_floats) host, the CPU arena's layout
void trainer_gpu_get_state(TrainerGpu* g, float* params, float* m, float* v);
void trainer_gpu_set_state(TrainerGpu* g, const float* params, const float* m, const float* v, int step);
