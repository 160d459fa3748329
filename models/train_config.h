// train_config.h: the plain settings and results of a training step that both trainers read: the loss
// (cross-entropy and knowledge distillation: distill/loss.h computes it on the CPU) and AdamW with its
// schedule (distill/optim.h). Kept here, below distill/, so the GPU trainer (models/cuda_train.h) depends
// on no layer above models/.
#pragma once

typedef enum { KD_NONE, KD_KL, KD_RKL, KD_TOPK } KdKind;

typedef struct {
    float ce_weight;
    float kd_weight;
    KdKind kd;
    float temperature;
    int t2_scaling;
    int topk;
    float kd_auto_scale;  // 0: kd_weight as given; S > 0: rescaled each micro-batch (above)
} LossConfig;

typedef struct {
    double total, ce, kd;  // means over rows (ce and kd unweighted); total includes hidden
    double hidden;         // intermediate hidden-state loss (unweighted; the trainer fills it)
    double kd_weight;      // the KD weight used (kd_auto_scale: mean over the step's micro-batches)
    double matmul_seconds, matmul_flops;  // the lm_head matmuls (for benchmarks)
} LossValues;

typedef struct {
    float lr, min_lr;
    int warmup;       // steps of linear warmup from lr/warmup to lr
    int total_steps;
    int cosine;       // 1: cosine decay to min_lr after warmup; 0: linear
    float beta1, beta2, eps, weight_decay;
    float clip;       // max global gradient norm (0: no clipping)
} OptimConfig;
