// device_sizes.h: the device bytes of the GPU run state and KV cache (cuda_model.h), in plain C so a
// memory plan (evals/bench_memory_plan.h) can be made and tested on any machine before anything is
// allocated. cuda_runstate_create and cuda_kvcache_create allocate exactly these buffers.
#pragma once
#include <stddef.h>

#include "config.h"

#define SPLIT_MAX_ROWS 256  // rows (decode batch) up to which long contexts split their keys
#define SPLIT_MAX 16        // splits per row at most
#define SPLIT_KEYS 256      // keys per split, roughly

// cuda_kvcache_create_layers(cfg, n_layers, max_seqs, max_len): k and v (n_layers, max_seqs, max_len, NKV*HS) bf16
size_t kvcache_device_bytes(const ModelConfig* c, int n_layers, int max_seqs, int max_len);
// cuda_runstate_create(cfg, max_rows, max_out): per row the fp32 residual, the bf16 activations (xn,
// qkv, att, proj, gateup, h, rows), 4 ids and 4 tile ints; logits (max_out, V) fp32; the split
// attention's partials (min(max_rows, SPLIT_MAX_ROWS), NH, SPLIT_MAX, HS + 2) fp32
size_t runstate_device_bytes(const ModelConfig* c, int max_rows, int max_out);
