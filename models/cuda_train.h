// cuda_train.h: training and distillation on the GPU — the twin of models/train.c plus the loss and
// optimizer steps of distill/ — over kernels/cuda/cuda_train_ops.h. Mixed precision: the forward
// and backward read bf16 parameters and keep bf16 activations (fp32 residual stream); gradients,
// master weights and AdamW moments are fp32, all in the device layout of CudaModel (so the stacked
// q,k,v and gate,up weights get their gradients from one GEMM each). Only built with ARBOR_HAVE_CUDA.
#pragma once
#include "train_config.h"
#include "../kernels/cuda/cuda_train_ops.h"
#include "cuda_model.h"

typedef struct {
    CudaModel* g;        // the bf16 parameters the forward reads; rewritten by every optimizer step
    float* master;       // (shard_hi - shard_lo) fp32 master weights, device layout: arena elements from shard_lo
    float* grad;         // (g->arena_elems) fp32 gradients (accumulated over micro-batches)
    float* m;            // (shard_hi - shard_lo) AdamW first moments
    float* v;            // (shard_hi - shard_lo) second moments
    size_t shard_lo, shard_hi;  // the arena elements this rank updates: all of them, or its ZeRO-1 shard
    ParamTable table;    // the Hugging Face tensors: offsets below, weight-decay mask
    size_t* offset;      // (table.n_params) each tensor's element offset in the device arena
    int step;            // optimizer steps taken
    uint64_t round_seed; // 0: bf16 parameters rounded to nearest even; else stochastic rounding
} CudaTrainModel;

// Masters from the CPU model's fp32 parameters (exact), bf16 parameters uploaded into g.
void cuda_train_model_create(CudaTrainModel* t, CudaModel* g, const Model* m);
// Without a CPU model: random init on the device (model_init_random's values, bf16-rounded masters).
void cuda_train_model_create_random(CudaTrainModel* t, CudaModel* g, uint64_t seed);
void cuda_train_model_free(CudaTrainModel* t);

typedef struct {
    int B, T, N;
    int recompute;        // 1: one layer's internals kept, recomputed from res[l] during backward
    int n_tiles;          // attention tiles (every sequence is one run of positions)
    int *tokens, *targets, *seq, *pos, *tiles;  // device: (N), (N), (N), (N), (N, 4)
    // kept by the forward for the backward, per layer l (L = n_layers; one slot when recompute):
    float* res;           // (L+1, N, C) residual stream entering layer l; res[L] enters the final norm
    float* mid;           // (L, N, C) residual after attention
    bf16* xn1;            // (L, N, C) input_layernorm output
    bf16* qkv;            // (L, N, QKV) q, k, v before norm and RoPE
    bf16* q;              // (L, N, NH*HS) after q_norm and RoPE
    bf16* k;              // (L, N, NKV*HS) after k_norm and RoPE, (B, T, NKV, HS)
    bf16* v;              // (L, N, NKV*HS)
    bf16* att;            // (L, N, NH*HS) attention output
    float* lse;           // (L, N, NH) its log-sum-exp (the tensor-core backward's; prefill kernel only)
    bf16* xn2;            // (L, N, C) post_attention_layernorm output
    bf16* gateup;         // (L, N, 2F)
    bf16* h;              // (L, N, F)
    bf16* xnf;            // (N, C) final norm output
    bf16* proj;           // (N, C) o_proj / down_proj output (transient)
    // backward
    float *d_res, *d_x, *d_xnf;        // (N, C)
    float *d_h, *d_gate, *d_up;        // (N, F)
    float *d_att, *d_q;                // (N, NH*HS)
    float *d_k, *d_v;                  // (N, NKV*HS)
    bf16* d_bf;                        // (N, max(C, QKV, 2F)) a gradient packed for a GEMM
    // loss, LOSS_ROWS rows at a time
    int loss_rows;
    float *logits, *t_logits;          // (loss_rows, V)
    bf16* dlogits;                     // (loss_rows, V)
    double* row_loss;                  // (2, N) per-row CE and KD
} CudaTrainActs;

// recompute: keep only the residual stream between layers (about one more forward of compute for a
// fraction of the activation memory); gradients are bit-identical either way.
void cuda_train_acts_create(CudaTrainActs* a, CudaContext* ctx, const ModelConfig* cfg, int B, int T, int recompute);
void cuda_train_acts_free(CudaTrainActs* a);

// tokens (B*T) host. Fills every activation; a->xnf holds the lm_head's input. Reads only the bf16
// parameters (calibration runs it without any training state).
int cuda_train_forward(const CudaModel* g, CudaTrainActs* a, const int* tokens, Err* e);
// The loss of a->xnf against targets (N, host; NULL without CE) and, for KD, the teacher's final
// hidden states t_xnf (N, Ct) bf16 device with its lm_head (V, Ct): d_xnf overwritten, the lm_head
// gradient accumulated, both times grad_scale (0: the loss only, no gradients: validation). Fails
// on a non-finite loss.
int cuda_train_loss(const CudaTrainModel* t, CudaTrainActs* a, const LossConfig* cfg, const int* targets,
                    const bf16* t_xnf, const bf16* t_lm_head, int Ct, float grad_scale, LossValues* out, Err* e);
// Every other gradient from a->d_xnf, accumulated (+=) into t->grad. tokens (N) host, as forward's.
// d_layer_out (optional, n_layers device pointers, NULL entries allowed): extra gradients (N, C) at
// each layer's output (the hidden-state loss).
void cuda_train_backward(CudaTrainModel* t, CudaTrainActs* a, const int* tokens, float* const* d_layer_out);
// The same, calling ready(arg, point) on the host as soon as the gradients of a point are queued on
// the compute stream: point L (n_layers) after the final norm (the lm_head's came with the loss), l after
// layer l, -1 after the embedding (grad_buckets.h's ready points), so a data-parallel step can queue a
// bucket's reduction behind them while the layers below are still to come.
void cuda_train_backward_hooked(CudaTrainModel* t, CudaTrainActs* a, const int* tokens, float* const* d_layer_out,
                                void (*ready)(void* arg, int point), void* arg);
// Clip by global norm (as the CPU trainer: scale clip / (norm + 1e-6) when norm > clip), AdamW at
// learning rate lr, bf16 parameters refreshed, gradients zeroed, t->step + 1. Returns the norm; a
// non-finite norm takes no step.
double cuda_train_optimizer_step(CudaTrainModel* t, const OptimConfig* o, float lr);
void cuda_train_zero_grad(CudaTrainModel* t);
// ZeRO-1: keep the masters and moments of arena elements [lo, hi) only (the rest freed); the optimizer
// step then updates those elements of the bf16 parameters, and the caller gathers the rest.
void cuda_train_model_shard(CudaTrainModel* t, size_t lo, size_t hi);
// Sum of squares of the gradients of arena elements [lo, hi) (a rank's part of the global norm).
double cuda_train_grad_sum_squares(const CudaTrainModel* t, size_t lo, size_t hi);
// The optimizer step over the shard with the global gradient norm given (the ranks' sum of squares,
// rooted): clip, AdamW, gradients zeroed, step + 1. Returns norm; a non-finite one takes no step.
double cuda_train_optimizer_step_with_norm(CudaTrainModel* t, const OptimConfig* o, float lr, double norm);
// The shard's masters and moments, device layout (shard_hi - shard_lo floats each), host.
void cuda_train_model_get_shard(const CudaTrainModel* t, float* master, float* m, float* v);
// A host array in the device layout (g->arena_elems) into the CPU arena's layout (table.n_floats).
void cuda_train_layout_to_cpu(const CudaTrainModel* t, const float* device, float* cpu);

// The teacher's side of distillation: its forward only, nothing kept but the last hidden states.
typedef struct {
    CudaModel* g;
    CudaKVCache cache;  // (B, T): the batch's sequences
    CudaRunState rs;    // rs.xn (N, Ct) is the output
} CudaTeacher;

void cuda_teacher_create(CudaTeacher* t, CudaModel* g, int B, int T);
void cuda_teacher_free(CudaTeacher* t);
// tokens (B*T) host; the final norm's output ends in t->rs.xn (N, Ct).
int cuda_teacher_forward(CudaTeacher* t, const int* tokens, int B, int T, Err* e);

// Master weights and moments in the CPU arena's layout (ParamTable offsets), for the trainer's
// state file: a state saved on the GPU resumes on the CPU and back. params, m, v (n_floats) host.
// Sharded: only the shard's elements are written (cuda_train_model_get_shard + a gather make the rest).
void cuda_train_model_get_state(const CudaTrainModel* t, float* params, float* m, float* v);
// ... and back (whole arrays on every rank; a shard keeps its part); the bf16 parameters are re-derived
// from the masters (rounded to nearest even), gradients zeroed.
void cuda_train_model_set_state(CudaTrainModel* t, const float* params, const float* m, const float* v, int step);
