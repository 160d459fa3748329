// device_sizes.c: see device_sizes.h.
#include "device_sizes.h"

size_t kvcache_device_bytes(const ModelConfig* c, int n_layers, int max_seqs, int max_len) {
    return 2 * (size_t)n_layers * max_seqs * max_len * c->n_kv_heads * c->head_dim * 2;
}

size_t runstate_device_bytes(const ModelConfig* c, int max_rows, int max_out) {
    size_t C = c->hidden, F = c->ffn, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
    size_t per_row = 4 * C + 2 * (3 * C + (Q + 2 * KV) + Q + 2 * F + F) + 4 * 4 + 4 * 4;
    size_t split_rows = max_rows < SPLIT_MAX_ROWS ? (size_t)max_rows : SPLIT_MAX_ROWS;
    size_t partial = 4 * split_rows * c->n_heads * SPLIT_MAX * (c->head_dim + 2);
    return per_row * max_rows + 4 * (size_t)max_out * c->vocab + partial;
}
