// train.h: the training forward (activations kept for backward) and the backward pass of the
// Qwen3-family model over kernels/ops.h. A batch is B sequences of T tokens, rows ordered (b, t).
// Gradients go into a ModelWeights bound to an arena that mirrors the parameters (weights_bind), and
// accumulate (+=): zero them between optimizer steps, not between micro-batches.
#pragma once
#include "model.h"

typedef struct {
    int B, T, N;          // N = B * T rows
    int recompute;        // 1: per-layer activations for one layer only, recomputed during backward
    int* pos;             // (N) t of each row
    int* seq;             // (N) b of each row
    // per layer l (one block when recompute), res for every layer boundary:
    float* res;           // (L+1, N, C) residual stream entering layer l; res[L] enters the final norm
    float* xn1;           // (L, N, C) input_layernorm output
    float* q_raw;         // (L, N, NH*HS) q before q_norm (Qwen3) and RoPE
    float* k_raw;         // (L, N, NKV*HS)
    float* q;             // (L, N, NH*HS) after q_norm and RoPE
    float* k;             // (L, N, NKV*HS) after k_norm and RoPE: laid out (B, T, NKV, HS)
    float* v;             // (L, N, NKV*HS)
    float* att;           // (L, N, NH*HS) attention output, the input of o_proj
    float* res_mid;       // (L, N, C) residual after attention
    float* xn2;           // (L, N, C) post_attention_layernorm output
    float* gate;          // (L, N, F) gate_proj output (before SiLU)
    float* up;            // (L, N, F)
    float* h;             // (L, N, F) silu(gate) * up, the input of down_proj
    float* xnf;           // (N, C) final norm output
    // scratch for backward
    float* d_res;         // (N, C)
    float* d_a;           // (N, max(C, NH*HS, F))
    float* d_b;           // (N, max(C, NH*HS, F))
    float* d_c;           // (N, max(C, NH*HS, F))
    float* d_q;           // (N, NH*HS)
    float* d_k;           // (N, NKV*HS)
    float* d_v;           // (N, NKV*HS)
    float* scratch;       // attention scratch
    // matmul accounting (forward and backward of this model's matmuls) for benchmarks
    double matmul_seconds, matmul_flops;
} TrainActs;

// recompute: keep only the residual stream between layers and recompute each layer's internals in
// backward (about one extra forward of compute for ~1/10 of the activation memory).
void train_acts_create(TrainActs* a, const ModelConfig* cfg, int B, int T, int recompute);
void train_acts_free(TrainActs* a);

// tokens (B*T). Fills every activation; returns xnf (N,C) (a->xnf), the input of the lm_head.
// Also usable for a teacher (the activations are simply not used afterwards).
int train_forward(const Model* m, TrainActs* a, const int* tokens, Err* e);
// The forward from layer `first` on: res_in (N,C) is the stream entering it (copied to res[first]);
// layers first..L-1 and the final norm run, overwriting their activations and a->xnf. With res_in =
// res[s] of a full forward and first = s + n, it is the model with layers s..s+n-1 made the identity.
void train_forward_from(const Model* m, TrainActs* a, int first, const float* res_in);
// d_xnf (N,C): the loss gradient at the final norm's output. grads: bound to a gradient arena;
// every parameter gradient except the lm_head's (the loss adds that one) accumulates here.
// d_layer_out (optional, n_layers pointers, NULL entries allowed): extra gradients at each layer's
// output (intermediate hidden-state losses).
void train_backward(const Model* m, TrainActs* a, const int* tokens, const float* d_xnf, float* const* d_layer_out,
                    ModelWeights* grads);
