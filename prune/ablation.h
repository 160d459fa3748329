// ablation.h: the layer-ablation depth metric. Layer l (or a contiguous block of n layers from s)
// is replaced by the identity and the model's outputs are compared with the full model's on the
// same calibration tokens:
//   hidden NMSE = sum (y_ablated - y)^2 / sum y^2   over tokens and channels, y the final norm's
//                 output (transformers' last hidden_states entry, the lm_head's input)
//   logits NMSE = the same over tokens and vocabulary entries of the logits
// Ratios of sums over every calibration token (not means of per-token ratios). Lower: the layer or
// block matters less. Reuses the full forward's residual stream: removing layers s..s+n-1 runs only
// layers s+n..L-1 again (train_forward_from).
#pragma once
#include "../models/train.h"

#define ABLATION_MAX_SIZES 8

typedef struct {
    int n_layers;
    int n_sizes, sizes[ABLATION_MAX_SIZES];  // block sizes; sizes[0] = 1 (single layers)
    double* hidden;   // per size k, (L - sizes[k] + 1) entries by block start, sizes concatenated
    double* logits;   // same layout
    double hidden_ref, logits_ref;  // while accumulating: sums of squares of the full model's outputs
    long long sequences, tokens;    // calibration used
} Ablation;

// sizes (n, each in [1, L - 1]): block sizes besides 1; duplicates are ignored. -1 with the reason.
int ablation_init(Ablation* ab, int n_layers, const int* sizes, int n, Err* e);
// Offset of size index k's first entry in hidden / logits, and the count of its entries.
size_t ablation_offset(const Ablation* ab, int k);
int ablation_count(const Ablation* ab, int k);
// a: just after train_forward of the full model on this batch; its first `rows` rows count. Leaves
// a's activations overwritten.
void ablation_batch(const Model* m, TrainActs* a, int rows, Ablation* ab);
// Divides the sums into NMSEs.
void ablation_finish(Ablation* ab);
void ablation_free(Ablation* ab);
