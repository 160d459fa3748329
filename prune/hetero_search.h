// hetero_search.h: heterogeneous pruning's architecture search. Each layer of the teacher has a
// library of block variants (its FFN width on a grid, 0 = the FFN removed; its attention kept or
// removed), each scored by the damage of replacing only that block in the teacher (block_library.h).
// The search picks one variant per layer to minimise the summed damage under budgets on parameters,
// memory (bf16 weights + KV cache at a batch x context) and the roofline's decode time on a named GPU:
// a 0-1 integer program (one binary per variant, one equality per layer, one row per budget), solved
// exactly by GLPK's branch and cut. Costs are additive over layers: a layer's decode time is its own
// roofline floor max(bytes / bandwidth, FLOPs / rate) (an upper bound on the whole step's floor, which
// maxes once over the sums).
#pragma once
#include "../evals/roofline.h"
#include "../kernels/check.h"
#include "../models/config.h"

typedef struct {
    int layer;
    int ffn;           // FFN neurons kept (0: the FFN removed)
    int attention;     // 1: kept, 0: removed (the residual branch skipped, no KV cache)
    double damage;     // the block library's score: the teacher with only this block replaced
    double params;     // the layer's parameters in this variant
    double memory;     // bytes the layer holds: bf16 weights + its KV cache at the batch x context
    double seconds;    // the layer's roofline floor of one decode step at the batch x context
} BlockVariant;

typedef struct {
    double params, memory, seconds;  // upper bounds on the whole model (layers + fixed part); 0: none
} HeteroBudget;

// the costs outside the layers: embedding, final norm, lm_head (params, memory, decode seconds)
typedef struct {
    double params, memory, seconds;
} HeteroFixed;

// The regime the memory and time costs are taken at.
typedef struct {
    int batch, context;
    DeviceSpec device;
} HeteroRegime;

// Fills v's params, memory and seconds for a variant (ffn, attention) of any layer of c (layer and
// damage untouched).
void block_variant_costs(const ModelConfig* c, int ffn, int attention, const HeteroRegime* r, BlockVariant* v);
// The same for each of v (n), from their own ffn and attention: a scored library's costs.
void block_library_costs(const ModelConfig* c, const HeteroRegime* r, BlockVariant* v, int n);
void hetero_fixed_costs(const ModelConfig* c, const HeteroRegime* r, HeteroFixed* f);

// The optimum: choice (n_layers) the index into v (n variants, any order; every layer needs one or
// more) of each layer's variant, *damage its summed damage. Returns 0; 1 when no choice meets the
// budget (e says by how much the cheapest misses); -1 on bad input.
int hetero_search(const BlockVariant* v, int n, int n_layers, const HeteroFixed* fixed, const HeteroBudget* b, int* choice,
                  double* damage, Err* e);

// A choice (n_layers indices into v) as the surgery's arrays, ffn (n_layers) and attention (n_layers),
// and as text, "96 96 48 48" and "1 1 1 0" (each at most cap bytes).
void hetero_choice_layers(const BlockVariant* v, const int* choice, int n_layers, int* ffn, unsigned char* attention,
                          char* ffn_text, char* attention_text, size_t cap);

// A comma- (or space-) separated list of shares in [0, 1], at most cap of them, into out; zero_ok and
// one_ok say whether 0 and 1 themselves are allowed. -1 on anything else.
int share_list_parse(const char* text, int zero_ok, int one_ok, double* out, int cap, int* n);
