// trainer_gpu.h: the trainer's GPU side (models/cuda_train.h behind a narrow seam), so that
// distill/trainer.c runs the same loop — data, schedule, validation, logs, state files — on either
// backend. A state file written on one backend resumes on the other (the CPU arena's layout).
#pragma once
#include "dist.h"
#include "hidden_loss.h"
#include "loss.h"
#include "optim.h"

typedef struct TrainerGpu TrainerGpu;

// Uploads the student (masters from its fp32 parameters) and the teacher (may be NULL) to the rank's
// GPU (dist_cuda_device of dist; NULL: GPU 0). Fails with a one-line reason when arbor has no CUDA or
// no device is present.
int trainer_gpu_open(TrainerGpu** out, const Model* student, const Model* teacher, int B, int T, int recompute,
                     const Dist* dist, Err* e);
// Data parallel over dist's ranks (world > 1): NCCL collectives, the gradients reduced in fp32 buckets
// of at most bucket_bytes as the backward of the last micro-batch finishes them: all-reduced, or with
// zero1 reduce-scattered to the ranks that own them (ZeRO-1: each rank keeps the masters and moments of
// its shard of the device arena, updates it, and the bf16 parameters are all-gathered after the step).
// reduce_bf16: the buckets travel and are summed in bf16 (half the bytes; rounded), else fp32.
int trainer_gpu_set_dist(TrainerGpu* g, const Dist* dist, size_t bucket_bytes, int zero1, int reduce_bf16, Err* e);
// Elements of the masters and moments this rank holds (the whole arena without ZeRO-1).
size_t trainer_gpu_shard_elems(const TrainerGpu* g);
void trainer_gpu_close(TrainerGpu* g);
// Teacher forward (when there is one), student forward, the loss; gradients too unless grad_scale
// is 0. inputs, targets (B*T) host. With hidden != HIDDEN_NONE also the intermediate hidden-state
// loss between student layer i and teacher layer layer_map[i] (equal hidden sizes), weighted
// hidden_weight and averaged over the student's layers, as distill/trainer.c does on the CPU.
int trainer_gpu_forward_loss(TrainerGpu* g, const LossConfig* cfg, HiddenLossKind hidden, float hidden_weight,
                             const int* layer_map, const int* inputs, const int* targets, float grad_scale,
                             LossValues* lv, Err* e);
// The data-parallel reduction's buckets (0 without ranks).
int trainer_gpu_buckets(const TrainerGpu* g);
// reduce: the step's last micro-batch (with ranks: its buckets' reductions are queued behind it).
void trainer_gpu_backward(TrainerGpu* g, const int* inputs, int reduce);
// (With ranks: waits, bounded, for the reductions.) Clip, AdamW, zero the gradients; returns the
// gradient norm before clipping; NAN (and e set) when the ranks' reduction failed.
double trainer_gpu_optimizer_step(TrainerGpu* g, const OptimConfig* o, float lr, Err* e);
// params, m, v (n_floats) host, the CPU arena's layout. With ZeRO-1 a collective: every rank calls
// it, the shards are gathered to rank 0, and only rank 0's arrays are written.
int trainer_gpu_get_state(TrainerGpu* g, float* params, float* m, float* v, Err* e);
void trainer_gpu_set_state(TrainerGpu* g, const float* params, const float* m, const float* v, int step);
