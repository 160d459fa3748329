// cuda_model.h: a model on the GPU (bf16 parameters in one device arena) and its forward pass over
// kernels/cuda/cuda_ops.h — the CUDA twin of model.h + forward.h, with the same row-packing
// contract: one call processes N rows from any number of sequences, writes their keys and values to
// the cache and returns logits for the rows asked for. Only built with ARBOR_HAVE_CUDA.
//
// The device layout differs from the CPU arena in two places, so that one GEMM does the work of
// several: q_proj, k_proj and v_proj rows are stacked into wqkv, gate_proj and up_proj into w_gateup.
#pragma once
#include "../kernels/cuda/cuda_ops.h"
#include "device_sizes.h"
#include "forward.h"
#include "model.h"

typedef struct {
    bf16* attn_norm;  // (C)
    bf16* wqkv;       // (NH*HS + 2*NKV*HS, C): q_proj, k_proj, v_proj rows stacked
    bf16* bqkv;       // (NH*HS + 2*NKV*HS) or NULL
    bf16* wo;         // (C, NH*HS)
    bf16* bo;         // (C) or NULL
    bf16* q_norm;     // (HS) or NULL
    bf16* k_norm;     // (HS) or NULL
    bf16* mlp_norm;   // (C)
    bf16* w_gateup;   // (2F, C): gate_proj rows, then up_proj rows
    bf16* w_down;     // (C, F)
} CudaLayerWeights;

typedef struct {
    ModelConfig cfg;
    CudaContext* ctx;
    bf16* arena;
    size_t arena_elems;
    bf16* wte;         // (V, C)
    bf16* final_norm;  // (C)
    bf16* lm_head;     // (V, C); wte when tied
    CudaLayerWeights* layers;
    float* inv_freq;   // (HS/2) device
} CudaModel;

// Allocates the arena for cfg's tensors (each 256-byte aligned) on ctx's device; contents undefined.
void cuda_model_create(CudaModel* g, CudaContext* ctx, const ModelConfig* cfg);
void cuda_model_free(CudaModel* g);
// Copies a CPU model's parameters (fp32, rounded to bf16); m's config must equal g's.
void cuda_model_upload(CudaModel* g, const Model* m);
// The values model_init_random(seed) gives, rounded to bf16, drawn on the device (no host arena:
// an 8B model initialises in a second).
void cuda_model_init_random(CudaModel* g, uint64_t seed);
// Element offset in the device arena of the Hugging Face tensor p (p from param_table_build(cfg))
size_t cuda_model_param_offset(const CudaModel* g, const ParamInfo* p);
// Bytes of the parameters every forward reads (all matrices and norms; the embedding rows aside).
size_t cuda_model_weight_bytes(const CudaModel* g);

typedef struct {
    int n_layers, max_seqs, max_len, kv_dim;
    int prefix_seq, prefix_len;  // as KVCache's
    bf16* k;                     // (n_layers, max_seqs, max_len, NKV*HS)
    bf16* v;                     // (n_layers, max_seqs, max_len, NKV*HS)
} CudaKVCache;

void cuda_kvcache_create(CudaKVCache* c, const ModelConfig* cfg, int max_seqs, int max_len);
// n_layers 1: one slot that every layer reuses, for calls that hold whole sequences (a teacher's
// forward: nothing of a layer is kept once the next one runs)
void cuda_kvcache_create_layers(CudaKVCache* c, const ModelConfig* cfg, int n_layers, int max_seqs, int max_len);
void cuda_kvcache_free(CudaKVCache* c);

typedef struct {
    int max_rows, max_out;
    float* x;        // (N, C) residual stream, fp32
    bf16* xn;        // (N, C) normalised input of a sublayer (after the last layer: the final norm)
    bf16* qkv;       // (N, QKV)
    bf16* att;       // (N, NH*HS)
    bf16* proj;      // (N, C) o_proj / down_proj output
    bf16* gateup;    // (N, 2F)
    bf16* h;         // (N, F)
    bf16* rows;      // (N, C) gathered rows for the lm_head
    float* logits;   // (max_out, V)
    int* ids;        // (4, N) device: tokens, seq, pos, out_rows
    int* host_ids;   // (4, N) host staging
    int* tiles;      // (N, 4) device: the staged rows as prefill tiles (cuda_attention_prefill)
    int* host_tiles; // (N, 4)
    int n_rows, n_out, gather;  // the staged call: rows, logit rows, logits of listed rows (not all)
    int n_tiles;     // 0: the staged rows go through the general attention kernel
    int attn_splits; // > 1: few rows over long contexts, each row's keys split over this many blocks
    float* attn_partial;  // (SPLIT_MAX_ROWS, NH, SPLIT_MAX, HS + 2) their partial results
    // optional (a teacher for the hidden-state loss): the output of layer l (the fp32 residual
    // stream, (N, C)) is copied to capture + capture_slot[l] * N * C for each l with a slot >= 0
    float* capture;
    const int* capture_slot;  // (n_layers) host
} CudaRunState;

// max_rows rows per call, logits for at most max_out of them
void cuda_runstate_create(CudaRunState* s, const ModelConfig* cfg, int max_rows, int max_out);
void cuda_runstate_free(CudaRunState* s);

// Checks the rows (as model_forward does) and queues their ids' upload. Rows that come in runs of
// consecutive positions (prefill: 4 rows per run or more on average) are also cut into tiles for the
// tensor-core attention; others (decode) use the general kernel. Returns -1 with e set on a
// bad token id, sequence or position. out_rows NULL = logits for all N rows (n_out must be N).
int cuda_forward_stage(const CudaModel* g, CudaRunState* s, const CudaKVCache* cache, const int* tokens, const int* seq,
                       const int* pos, int N, const int* out_rows, int n_out, Err* e);
// Queues the forward of the staged rows: logits (n_out, V) fp32 end in s->logits (device); with
// n_out 0 only the final norm's output, in s->xn (N, C) (a teacher's hidden states). Reads the ids
// from device memory only, so a CUDA graph captured once replays it for new ids.
void cuda_forward_launch(const CudaModel* g, CudaRunState* s, const CudaKVCache* cache);
// stage + launch + download: logits (n_out, V) host, as model_forward.
int cuda_model_forward(const CudaModel* g, CudaRunState* s, CudaKVCache* cache, const int* tokens, const int* seq,
                       const int* pos, int N, const int* out_rows, int n_out, float* logits, Err* e);
