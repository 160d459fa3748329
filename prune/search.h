// search.h: pruning choices that need the model evaluated: the `ppl` depth strategy (drop, one at a
// time, the layer whose removal raises validation LM loss least) and the architecture search under a
// parameter budget (candidate shapes on a grid, each pruned by the scores and ranked by validation
// LM loss). Validation loss = mean NLL over disjoint windows of the given tokens (evals/perplexity.h).
#pragma once
#include "surgery.h"

double prune_val_loss(const Model* m, const int* tokens, int64_t n, int seq_len, Err* e);

// keep (L): the layers kept after greedy removal down to target layers.
int prune_depth_ppl(const Model* m, const int* tokens, int64_t n, int seq_len, int target, int* keep, int* n_keep,
                    Err* e);

// The block strategy ranked by a downstream score instead of angular distance (Minitron chose its
// depth block by a task): every contiguous block of L - target layers is dropped in turn, the pruned
// model scored by `score` (higher is better; ties go to the smaller angular distance), the best kept.
// A CSV of the candidates (start, end, angular distance, score) goes to csv_path.
typedef double (*ModelScoreFn)(const Model* pruned, void* ctx, Err* e);  // NAN on failure
int prune_block_by_score(const Model* m, const Importance* imp, int target, ModelScoreFn score, void* ctx,
                         const char* csv_path, int* keep, int* n_keep, Err* e);

typedef struct {
    double max_params;       // budget (parameters)
    int layer_step, hidden_step, ffn_step;
    double max_depth_cut;    // at most this share of layers removed (ModelOpt: 0.2)
    double max_width_cut;    // at most this share of any width removed (ModelOpt: 0.4)
} SearchOptions;

typedef struct {
    int layers, hidden, ffn, heads;
    long long params;
    double val_loss;
} SearchCandidate;

// Ranked candidates (best first) into *out (malloc'd, *n of them); the CSV goes to csv_path.
int prune_search(const Model* m, const Importance* imp, const int* tokens, int64_t n, int seq_len,
                 const SearchOptions* o, const char* csv_path, SearchCandidate** out, int* n_out, Err* e);
