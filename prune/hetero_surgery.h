// hetero_surgery.h: a heterogeneous plan (hetero_search.h) made a model: layer l keeps its ffn[l]
// highest-scored FFN neurons (importance_mlp_order; in their original order) or none, and its
// attention when attention[l]; every other tensor is copied. The result's config holds the per-layer
// list (config.h, "arbor_layers"); its forward equals the teacher's with the same blocks masked, as the
// block library scored them.
#pragma once
#include "importance.h"

int prune_hetero(const Model* m, const Importance* imp, const int* ffn, const unsigned char* attention, Model* out, Err* e);
