// forward.h: the Qwen3-family forward pass, written once over kernels/ops.h.
//
// One call processes N rows packed from any number of sequences: row n is token tokens[n] of
// sequence seq[n] at position pos[n]. Its key and value are written to the KV cache at (seq, pos)
// and it attends to that sequence's cached positions 0..pos[n]. Batched prefill of unequal prompts
// and token-by-token decode of a batch are the same call with different rows.
#pragma once
#include "model.h"

typedef struct {
    int n_layers, max_seqs, max_len, kv_dim;
    // Positions below prefix_len are read from sequence prefix_seq by every row (a shared prompt
    // prefix, prefilled once); 0 = off. Rows must not write positions below prefix_len of other
    // sequences than prefix_seq.
    int prefix_seq, prefix_len;
    float* k;  // (n_layers, max_seqs, max_len, NKV*HS)
    float* v;  // (n_layers, max_seqs, max_len, NKV*HS)
} KVCache;

void kvcache_create(KVCache* c, const ModelConfig* cfg, int max_seqs, int max_len);
void kvcache_free(KVCache* c);

typedef struct {
    int max_rows;
    float* x;        // (N, C) residual stream
    float* xn;       // (N, C) normalised input of a sublayer
    float* q;        // (N, NH*HS)
    float* k;        // (N, NKV*HS)
    float* v;        // (N, NKV*HS)
    float* att;      // (N, NH*HS) attention output
    float* proj;     // (N, C) o_proj / down_proj output
    float* gate;     // (N, F)
    float* up;       // (N, F)
    float* scratch;  // (threads, ATTENTION_BLOCK_ROWS, max_len) attention scores
    float* rows;     // (N, C) gathered rows for the lm_head
    float* wide;     // (WIDEN_ROWS, max(C, F, NH*HS)) 16-bit weight rows widened for prefill
    // matmul accounting for benchmarks
    double matmul_seconds;
    double matmul_flops;
} RunState;

void runstate_create(RunState* s, const ModelConfig* cfg, int max_rows, int max_len);
void runstate_free(RunState* s);

// The rows' own checks, shared by the backends: N within max_rows, token ids below V, sequences and
// positions inside the cache. Returns -1 with e set on the first bad row.
int forward_rows_check(const int* tokens, const int* seq, const int* pos, int N, int max_rows, int V, int max_seqs,
                       int max_len, Err* e);

// tokens, seq, pos (N). logits (n_out, V) for the rows listed in out_rows (n_out of them), or for all
// N rows when out_rows is NULL (then n_out must be N). Returns -1 with e set on a bad token id or a
// position beyond the cache.
int model_forward(const Model* m, RunState* s, KVCache* cache, const int* tokens, const int* seq, const int* pos,
                  int N, const int* out_rows, int n_out, float* logits, Err* e);
// The same rows up to the final norm: hidden (N,C) is what the lm_head would see. A teacher's forward
// for distillation: activations live one layer at a time, nothing is kept for a backward pass.
// capture (optional, (slots, N, C)): the output of each layer l with slot[l] >= 0 is copied to slot[l].
int model_forward_hidden(const Model* m, RunState* s, KVCache* cache, const int* tokens, const int* seq,
                         const int* pos, int N, float* hidden, float* capture, const int* slot, Err* e);
