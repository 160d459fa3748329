// importance.h: the calibration pass of pruning. The model runs over calibration windows (the
// training forward, whose kept activations are exactly the statistics' inputs) and, in one pass,
// every score below is accumulated; the scores go to a JSON file so pruning to other targets needs
// no second pass.
//
// Depth:  bi[l]        Block Influence, mean over tokens of 1 - cos(h_l, h_{l+1}) (ShortGPT)
//         angular[l][l+n]  mean over tokens of arccos(cos(h_l, h_{l+n})) / pi (Gromov et al.)
//         where h_l is the residual stream entering layer l (h_L: after the last layer, before the
//         final norm; with bi_after_norm, h_L is the final norm's output, as in implementations
//         built on transformers' `hidden_states`, whose last entry is normed)
//         ablation     layer (and block) ablation NMSE of the final hidden state and the logits
//         (prune/ablation.h), on the first ablation_windows calibration sequences
// Width (Minitron, activation-based), each per sequence first a mean over tokens, then aggregated
// over sequences (L2 by default, or mean, or variance):
//         mlp[l][i]    |input of down_proj| of neuron i
//         heads[l][h]  L2 norm of head h's slice of the input of o_proj
//         kv[l][g]     sum of its query heads' scores
//         hidden[c]    |post-RMSNorm activation| of channel c, summed over every norm site
#pragma once
#include "../models/model.h"
#include "../models/token_shard.h"
#include "ablation.h"

typedef enum { AGG_L2, AGG_MEAN, AGG_VARIANCE } Aggregation;

// "l2", "mean", "variance" <-> aggregation; parse gives -1 for another name
int aggregation_parse(const char* name, Aggregation* a);
const char* aggregation_name(Aggregation a);

typedef struct {
    int n_layers, ffn, n_heads, n_kv_heads, hidden;
    double* bi;        // (L)
    double* angular;   // (L+1, L+1): [a][b] for a < b
    double* mlp;       // (L, F)
    double* heads;     // (L, NH)
    double* kv;        // (L, NKV)
    double* channels;  // (C)
    long long tokens, sequences;
    Aggregation agg;
    int bi_after_norm;     // boundary L of bi and angular is the final norm's output
    Ablation ablation;     // n_sizes 0 when not computed
} Importance;

typedef struct {
    int windows;       // calibration sequences
    int seq_len;
    int batch;         // sequences per forward
    Aggregation agg;
    int gpu;           // 1: the forward and the reductions on the GPU (bf16 activations), prune/calib_gpu.h
    int bi_after_norm; // Block Influence of the last layer against the final norm's output
    int ablation_windows;  // layer ablation on the first this many sequences (0: none)
    int ablation_sizes[ABLATION_MAX_SIZES], n_ablation_sizes;  // block sizes ablated besides single layers
} CalibOptions;

int importance_compute(const Model* m, const Shard* calib, const CalibOptions* o, Importance* imp, Err* e);
// order (F): layer l's FFN neurons by their mlp score, highest first (ties: the lower index first), the
// order width pruning keeps them in.
void importance_mlp_order(const Importance* imp, int l, int* order);
void importance_free(Importance* imp);
// JSON scores file with the model's shape (checked when read back) and a readable per-layer table.
int importance_save(const Importance* imp, const ModelConfig* cfg, const char* path, Err* e);
int importance_load(Importance* imp, const ModelConfig* cfg, const char* path, Err* e);
int importance_write_table(const Importance* imp, const char* path, Err* e);
