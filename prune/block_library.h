// block_library.h: heterogeneous pruning's block library. For every layer of the teacher, variants of
// its block: the FFN kept to a width on a grid (0: removed; the neurons kept by the calibration's
// activation ranking, importance.h's mlp scores) and, optionally, each width with the attention removed.
// Each variant is scored by the damage of replacing only that block in the teacher, on calibration
// windows: the mean KL(teacher || variant) of the next-token distributions, or the increase of the mean
// next-token loss. The replacement is exact without building a new model: a neuron whose gate and up
// rows are zero contributes silu(0) x 0 = 0 to down_proj, so zeroing the removed neurons' rows is the
// narrower FFN; zero o_proj (and its bias) makes the attention branch add nothing, which is the branch
// removed. The forward reruns only from the replaced layer on (train_forward_from on the full model's
// residual stream).
#pragma once
#include "../models/model.h"
#include "../models/token_shard.h"
#include "hetero_search.h"
#include "importance.h"

#define BLOCK_MAX_WIDTHS 16
#define BLOCK_DEFAULT_WIDTHS "1,0.75,0.5,0.25,0"  // the grid arbor hetero and [hetero] widths default to

typedef enum { BLOCK_DAMAGE_KL, BLOCK_DAMAGE_LOSS } BlockDamage;

typedef struct {
    int n_widths;
    double widths[BLOCK_MAX_WIDTHS];  // FFN widths as shares of the teacher's, in [0, 1]
    int attention_variants;           // 1: each width also with the attention removed
    BlockDamage metric;
    int windows, seq_len, batch;      // calibration sequences, their length, per forward
} BlockLibraryOptions;

// The variants of every layer (layer-major; the teacher's own block first in each layer, damage 0),
// scored; costs left 0 (block_variant_costs fills them for a regime). *out malloc'd.
int block_library_score(const Model* teacher, const Shard* calib, const Importance* imp, const BlockLibraryOptions* o,
                        BlockVariant** out, int* n_out, Err* e);
