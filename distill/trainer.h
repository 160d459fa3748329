// trainer.h: the distillation / training loop. One optimizer step = M micro-batches of B windows,
// K on each of W ranks (M = K x W; dist.h): teacher forward (no activations kept beyond its own pass),
// student forward, fused loss, backward (each micro-batch weighted 1/M), clip by global norm, AdamW
// with the LR schedule. With M > 1 each micro-batch's gradient is made from zero and summed in fp64
// (over ranks too), so the step does not depend on how the M micro-batches are split across ranks:
// np=2 with K=1 gives the bits of np=1 with K=2. ZeRO-1 shards the AdamW moments (and the update)
// across ranks; the parameters are gathered back after each step, the same bits as without it.
// State = parameters, AdamW moments, step, data position and global batch, saved atomically by rank 0
// once every rank has agreed; any world size resumes it. A resumed run continues bit-identically
// for the same thread count.
#pragma once
#include <stdint.h>

#include "../models/forward.h"
#include "../models/train.h"
#include "data.h"
#include "collectives.h"
#include "dist.h"
#include "grad_buckets.h"
#include "hidden_loss.h"
#include "loss.h"
#include "optim.h"
#include "trainer_gpu.h"

typedef struct {
    int steps, batch, grad_accum, seq_len;
    OptimConfig optim;      // total_steps is set from steps
    LossConfig loss;
    HiddenLossKind hidden_kind;  // intermediate hidden-state loss (needs equal hidden sizes)
    float hidden_weight;
    const int* layer_map;   // (student layers) teacher layer per student layer (hidden_loss.h)
    int val_every;          // steps between validation passes (0: never)
    int val_windows;        // windows per validation pass (0: all held-out windows)
    int save_every;         // steps between state saves (0: only at the end)
    int log_every;          // steps between progress lines
    double val_fraction;
    uint64_t seed;
    const char* out_dir;
    int resume;
    int stop_at;            // end the run after this step as if killed, state saved (tests); 0: off
    int recompute;          // recompute activations in backward instead of keeping them
    int gpu;                // 1: the steps run on the GPU (trainer_gpu.h); data, logs and states stay here
    const Dist* dist;       // the run's ranks (NULL: one process)
    int zero1;              // shard the AdamW moments and update across the ranks
    size_t bucket_bytes;    // gradients reduced in buckets of at most this (0: GRAD_BUCKET_DEFAULT_BYTES)
    int reduce_bf16;        // GPU ranks: the buckets summed in bf16 (else fp32; the CPU sums in fp64)
} TrainConfig;

typedef struct {
    Model* student;
    const Model* teacher;   // NULL: plain training (cross-entropy)
    float *grads, *m, *v;   // mirror the student's parameter arena
    ModelWeights g;
    TrainActs sa;           // the student's activations, kept for backward
    RunState trs;           // the teacher's forward: one layer at a time, nothing kept
    KVCache tcache;
    float* t_hidden;        // (B*T, teacher hidden) the teacher's final-norm output
    int* t_slot;            // (teacher layers) capture slot of each teacher layer, or -1
    float* t_capture;       // (student layers, B*T, C) teacher layer outputs for the hidden loss
    float* d_layers;        // (student layers, B*T, C) hidden-loss gradients at student layer outputs
    float** d_layer_ptrs;   // (student layers)
    float* d_xnf;
    int* inputs;            // (B*T)
    int* targets;           // (B*T)
    int B, T;
    int step;               // completed optimizer steps
    TrainerGpu* gpu;        // non-NULL: the GPU runs the steps; the CPU buffers above are not allocated
    const Dist* dist;       // NULL: one process
    int world;              // ranks (1 without dist)
    double* acc;            // (n_floats) fp64 sum of the micro-batch gradients, when a step has several
    size_t* bounds;         // (world + 1) each rank's slice of the arena for ZeRO-1 (whole blocks)
    size_t lo, hi;          // this rank's slice: m and v hold [lo, hi) ([0, n_floats) without ZeRO-1)
    int zero1;
    uint64_t global_windows;  // windows per optimizer step over all ranks (recorded in the state)
    Collectives coll;       // over the ranks (MPI on the CPU, NCCL on the GPU); unset for one process
    GradBucketPlan plan;    // the reduction's buckets, in the order the backward finishes them
} Trainer;

// recompute: keep only the residual stream and recompute each layer in backward (train.h). gpu: run
// the steps on the GPU (fails with the reason when there is none): the rank's own GPU of dist's (NULL:
// one process, GPU 0).
int trainer_init(Trainer* tr, Model* student, const Model* teacher, int B, int T, int recompute, int gpu, const Dist* dist,
                 Err* e);
void trainer_free(Trainer* tr);
// Before the first step or load: the ranks (NULL: one process), ZeRO-1, the windows per step over all
// ranks, the gradient buckets' bound (0: the default) and type (reduce_bf16: GPU only). Opens the collectives (MPI on the CPU, NCCL
// on the GPU) and plans the buckets; on the CPU, reallocates the moments for this rank's slice.
int trainer_set_dist(Trainer* tr, const Dist* dist, int zero1, uint64_t global_windows, size_t bucket_bytes, int reduce_bf16,
                     Err* e);
// One optimizer step; windows (K, B, T+1): this rank's K micro-batches. Reports the mean loss over all
// M micro-batches (every rank the same), the global gradient norm before clipping and the learning
// rate used.
int trainer_step(Trainer* tr, const TrainConfig* cfg, const int* windows, LossValues* lv, double* gnorm, float* lr,
                 Err* e);
// Mean loss over validation windows (forward only; the batches shared round-robin across the ranks).
int trainer_validate(Trainer* tr, const TrainConfig* cfg, const DataLoader* d, LossValues* lv, Err* e);
// Collective: rank 0 writes, renamed into place once every rank has reached it without error.
int trainer_save(const Trainer* tr, const DataLoader* d, const char* path, Err* e);
// Every rank reads the file (a shared filesystem) and keeps its slice of the moments.
int trainer_load(Trainer* tr, DataLoader* d, const char* path, Err* e);

// What a run ended with: the last step's losses and speed, and the last validation loss (NaN if none).
typedef struct {
    LossValues last;
    double val_loss, tokens_per_s;
    int steps;
} TrainSummary;

// The last row of DIR/log.csv (step,loss,ce,kd,lr,grad_norm,tokens_per_s,val_loss,kd_weight) into sum,
// and (kd_range, may be NULL) the least and largest kd_weight over every row: every part of a resumed run
// (NAN when none is logged). -1 with e when the log is missing or has no step.
int train_log_read(const char* dir, TrainSummary* sum, double kd_range[2], Err* e);

// The whole run: data from the shard, progress on stderr, log.csv, state saves, and the final student
// as a Hugging Face checkpoint in out_dir/model. summary (may be NULL) receives how it ended.
int train_run(Model* student, const Model* teacher, const Shard* shard, const TrainConfig* cfg, TrainSummary* summary,
              Err* e);
