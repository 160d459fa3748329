// hidden_loss.h: the optional intermediate hidden-state loss of distillation: student layer i's output
// against teacher layer map[i]'s (residual stream after the layer), by cosine (1 - cos, mean over
// tokens) or MSE (mean over tokens and channels), averaged over the mapped layers.
//
// The layer map comes from the student directory's arbor_lineage.json {"teacher_layers": [j0, j1, ...]}
// (student layer i was teacher layer j_i: what depth pruning writes), else it is spread evenly:
// i -> (i + 1) * Lt / Ls - 1, so the last student layer meets the last teacher layer.
#pragma once
#include "../kernels/check.h"

typedef enum { HIDDEN_NONE, HIDDEN_COSINE, HIDDEN_MSE } HiddenLossKind;

void hidden_layer_map_even(int student_layers, int teacher_layers, int* map);
int hidden_layer_map(const char* student_dir, int student_layers, int teacher_layers, int* map, Err* e);
// s, t (N,C); returns the loss; d (N,C) := scale * dloss/ds
double hidden_loss(HiddenLossKind kind, const float* s, const float* t, int N, int C, float scale, float* d);
