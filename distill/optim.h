// optim.h: AdamW over a parameter arena (moments mirror it), the learning-rate schedule, and
// gradient clipping by global norm. PyTorch's AdamW semantics: decoupled weight decay
// p *= 1 - lr*wd, then p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). Norm weights and biases
// get no weight decay.
#pragma once
#include <stdint.h>

#include "../models/model.h"

typedef struct {
    float lr, min_lr;
    int warmup;       // steps of linear warmup from lr/warmup to lr
    int total_steps;
    int cosine;       // 1: cosine decay to min_lr after warmup; 0: linear
    float beta1, beta2, eps, weight_decay;
    float clip;       // max global gradient norm (0: no clipping)
} OptimConfig;

// The learning rate of 0-based step s.
float lr_at(const OptimConfig* o, int s);
// Global L2 norm of n gradients, summed in a fixed order (deterministic).
double grad_norm(const float* g, size_t n);
// One AdamW step on every parameter; t is the 1-based step count. decay_mask (n_params) says which
// table entries take weight decay.
void adamw_step(const OptimConfig* o, const ParamTable* table, float* params, const float* grads, float* m, float* v,
                int t, float lr);
int param_takes_decay(const ParamInfo* p);
