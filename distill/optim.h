// optim.h: AdamW over a parameter arena (moments mirror it), the learning-rate schedule, and
// gradient clipping by global norm. PyTorch's AdamW semantics: decoupled weight decay
// p *= 1 - lr*wd, then p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). Norm weights and biases
// get no weight decay.
#pragma once
#include <stdint.h>

#include "../models/model.h"
#include "../models/train_config.h"

// OptimConfig: models/train_config.h

// The learning rate of 0-based step s.
float lr_at(const OptimConfig* o, int s);
// Global L2 norm of n gradients, summed in a fixed order (deterministic).
double grad_norm(const float* g, size_t n);
// The blocks grad_norm sums: the sum of squares of g over block b = [b * GRAD_NORM_BLOCK, ...) for b in
// [b0, b1), into partial[b]. grad_norm is sqrt of partial[0] + partial[1] + ... in that order.
enum { GRAD_NORM_BLOCK = 1 << 16 };
void grad_norm_blocks(const float* g, size_t n, size_t b0, size_t b1, double* partial);
// One AdamW step on every parameter; t is the 1-based step count. decay_mask (n_params) says which
// table entries take weight decay.
void adamw_step(const OptimConfig* o, const ParamTable* table, float* params, const float* grads, float* m, float* v,
                int t, float lr);
// The same step on the arena's values [lo, hi) only, with m and v holding just those (m[0] is value lo):
// each value gets exactly what adamw_step gives it (ZeRO-1: each rank updates its own slice).
void adamw_step_range(const OptimConfig* o, const ParamTable* table, float* params, const float* grads, float* m, float* v,
                      int t, float lr, size_t lo, size_t hi);
