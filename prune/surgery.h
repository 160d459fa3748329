// surgery.h: depth and width pruning of a model into a smaller, valid model: layers dropped, and
// MLP neurons, query heads (kept with their own KV group), KV groups and hidden channels sliced out
// of every tensor they touch, keeping the highest-scored units in their original order.
#pragma once
#include "importance.h"

// DEPTH_PPL needs the model evaluated: prune_depth_ppl (search.h) picks its layers.
// DEPTH_ABLATION drops the layers whose single ablation changes the logits least (importance.h);
// DEPTH_ABLATION_BLOCK the contiguous block of L - layers whose ablation does (that block size must
// have been ablated).
typedef enum { DEPTH_NONE, DEPTH_BI, DEPTH_BLOCK, DEPTH_LAST, DEPTH_LIST, DEPTH_PPL, DEPTH_ABLATION, DEPTH_ABLATION_BLOCK } DepthStrategy;

// "bi", "block", "last", "ppl", "ablation", "ablation-block" -> strategy; -1 for another name
int depth_strategy_parse(const char* name, DepthStrategy* d);
const char* depth_strategy_name(DepthStrategy d);

typedef struct {
    DepthStrategy depth;
    int layers;              // target layer count (bi, block, last)
    const int* drop;         // explicit layers to drop (list), n_drop of them
    int n_drop;
    int ffn, heads, kv_heads, hidden;  // width targets, 0 = unchanged
} PruneTarget;

// The width targets against the model's shape (sizes, head/KV-group arithmetic): 0 or -1 with the reason.
int prune_width_check(const ModelConfig* c, const PruneTarget* t, Err* e);
// Adds to o the ablation block size t's strategy will read (ablation-block to t->layers of n_layers),
// when it calibrates ablation at all and the size is not there yet.
void calib_for_target(CalibOptions* o, int n_layers, const PruneTarget* t);
// The layers to keep (ascending) under the depth strategy; imp is needed by bi and block.
int prune_pick_layers(const ModelConfig* c, const Importance* imp, const PruneTarget* t, int* keep, int* n_keep, Err* e);
// out: a new model with the kept layers and the width targets applied. imp may be NULL when no
// width target is set. keep (n_keep) from prune_pick_layers.
int prune_model(const Model* m, const Importance* imp, const PruneTarget* t, const int* keep, int n_keep, Model* out,
                Err* e);
// Writes the pruned model to dir as a HF checkpoint, with arbor_lineage.json (source, strategy and the
// source layer of each kept layer: distillation's hidden-state loss reads it) and, when imp is given,
// the source's scores.json and scores.txt beside it.
int prune_write(const Model* pruned, const Importance* imp, const ModelConfig* source_cfg, const char* source,
                const char* strategy, const int* keep, int n_keep, const char* dir, StDtype dtype, Err* e);
