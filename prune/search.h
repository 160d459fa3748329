// search.h: pruning choices that need the model evaluated: the `ppl` depth strategy (drop, one at a
// time, the layer whose removal raises validation LM loss least) and the architecture search under a
// parameter budget (candidate shapes on a grid, each pruned by the scores and ranked by validation
// LM loss). Validation loss = mean NLL over disjoint windows of the given tokens (evals/perplexity.h).
#pragma once
#include "../distill/trainer.h"
#include "../evals/roofline.h"
#include "../models/engine.h"
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
    double max_params;       // budget (parameters; 0: none)
    double max_memory_mb;    // budget: weights + KV cache at kv_batch x kv_context, bytes_per_value each (0: none)
    int kv_batch, kv_context, bytes_per_value;
    int layer_step, hidden_step, ffn_step;
    double max_depth_cut;    // at most this share of layers removed (ModelOpt: 0.2)
    double max_width_cut;    // at most this share of any width removed (ModelOpt: 0.4)
    double min_tps;          // budget: decode tokens/s at kv_batch sequences over kv_context cached tokens, at least (0: none),
    const DeviceSpec* tps_spec;  // predicted by the throughput model's floor for this device (evals/roofline.h), or when
    Device tps_backend;      // NULL measured: a short bench of the shape with random weights on this backend (median of 3),
                             // its matrices bytes_per_value wide (2: bf16) as the memory budget counts them
} SearchOptions;

typedef struct {
    int layers, hidden, ffn, heads;
    long long params;
    double memory_mb;        // weights + KV cache under SearchOptions' memory settings
    double tps, tps_min, tps_max;  // decode tokens/s under min_tps's settings (measured: median and range); NAN without
    double val_loss;         // right after pruning
    int rank_pruned;         // 1-based rank by val_loss
    double final_score;      // finalists: their score after distillation (higher is better); NAN otherwise
} SearchCandidate;

// Finalists: the best k by val_loss are each distilled `steps` steps from the source model (the
// trainer and losses of arbor distill: `train` holds them), then scored by `score` (higher is better;
// NULL: minus the validation loss of the distilled model) and re-ranked among themselves ahead of the
// rest. Each distilled finalist is kept as out_dir/rank-R (R: its final rank; rank-1/model is the
// distilled winner).
typedef struct {
    int k;
    const TrainConfig* train;   // steps, batch, seq_len, optimizer and loss; out_dir is set per finalist
    const Shard* data;          // distillation tokens
    const char* out_dir;
    ModelScoreFn score;
    void* score_ctx;
} FinalistOptions;

// Candidates within every budget, ranked (best first) into *out (malloc'd, *n of them); with
// finalists (may be NULL) they are distilled and re-ranked. The CSV (rank, shape, params,
// memory_mb, tps, tps_min, tps_max, val_loss, rank_pruned, and the finalists' score after distillation
// named for what it is: final_val_loss, or final_mmlu_val with a score function) goes to csv_path.
int prune_search(const Model* m, const Importance* imp, const int* tokens, int64_t n, int seq_len,
                 const SearchOptions* o, const FinalistOptions* fin, const char* csv_path, SearchCandidate** out,
                 int* n_out, Err* e);
// Bytes of a shape's weights plus its KV cache, under o's memory settings, in MB (1e6 bytes).
double search_memory_mb(const ModelConfig* c, const SearchOptions* o);
// Decode tokens/s of a shape under o's min_tps settings (r: median, min, max). -1 when the bench fails.
int search_tps(const ModelConfig* c, const SearchOptions* o, double r[3], Err* e);
