// cuda_model.c: see cuda_model.h. forward reads top to bottom like forward.c's, with the GPU's
// fusions: one GEMM for q,k,v and one for gate,up; norm+RoPE+cache store in one kernel; each
// residual add fused with the RMSNorm that follows it (the last one is the final norm).
#include "cuda_model.h"

#include <stdlib.h>
#include <string.h>

#define DEVICE_ALIGN_ELEMS 128  // 256 bytes: what cuBLASLt's fastest kernels want of a pointer

static size_t aligned_elems(size_t n) { return (n + DEVICE_ALIGN_ELEMS - 1) / DEVICE_ALIGN_ELEMS * DEVICE_ALIGN_ELEMS; }

// Points g's tensors into base (or, with base NULL, only counts); returns the arena's elements.
static size_t layout(CudaModel* g, bf16* base) {
    const ModelConfig* c = &g->cfg;
    size_t C = c->hidden, F = c->ffn, HS = c->head_dim, Q = (size_t)c->n_heads * HS, KV = (size_t)c->n_kv_heads * HS;
    size_t QKV = Q + 2 * KV, V = c->vocab, at = 0;
#define PLACE(ptr, n)                        \
    do {                                     \
        (ptr) = base ? base + at : NULL;     \
        at += aligned_elems(n);              \
    } while (0)
    PLACE(g->wte, V * C);
    PLACE(g->final_norm, C);
    if (c->tie_embeddings)
        g->lm_head = g->wte;
    else
        PLACE(g->lm_head, V * C);
    for (int l = 0; l < c->n_layers; l++) {
        CudaLayerWeights* w = &g->layers[l];
        memset(w, 0, sizeof *w);
        PLACE(w->attn_norm, C);
        PLACE(w->wqkv, QKV * C);
        if (c->qkv_bias) PLACE(w->bqkv, QKV);
        PLACE(w->wo, C * Q);
        if (c->o_bias) PLACE(w->bo, C);
        if (c->qk_norm) {
            PLACE(w->q_norm, HS);
            PLACE(w->k_norm, HS);
        }
        PLACE(w->mlp_norm, C);
        PLACE(w->w_gateup, 2 * F * C);
        PLACE(w->w_down, C * F);
    }
#undef PLACE
    return at;
}

void cuda_model_create(CudaModel* g, CudaContext* ctx, const ModelConfig* cfg) {
    memset(g, 0, sizeof *g);
    g->cfg = *cfg;
    g->ctx = ctx;
    g->layers = xcalloc((size_t)cfg->n_layers, sizeof(CudaLayerWeights));
    g->arena_elems = layout(g, NULL);
    g->arena = cuda_malloc(g->arena_elems * sizeof(bf16));
    layout(g, g->arena);
    int half = cfg->head_dim / 2;
    float* inv_freq = xmalloc(sizeof(float) * (size_t)half);
    rope_inv_freq(cfg, inv_freq);
    g->inv_freq = cuda_malloc(sizeof(float) * (size_t)half);
    cuda_upload(ctx, g->inv_freq, inv_freq, sizeof(float) * (size_t)half);
    free(inv_freq);
}

void cuda_model_free(CudaModel* g) {
    cuda_free(g->arena);
    cuda_free(g->inv_freq);
    free(g->layers);
    memset(g, 0, sizeof *g);
}

size_t cuda_model_weight_bytes(const CudaModel* g) {
    size_t embedding = g->cfg.tie_embeddings ? 0 : aligned_elems((size_t)g->cfg.vocab * g->cfg.hidden);
    return (g->arena_elems - embedding) * sizeof(bf16);
}

// Where the Hugging Face tensor p lives in the device layout.
static bf16* param_dst(const CudaModel* g, const ParamInfo* p) {
    const ModelConfig* c = &g->cfg;
    size_t C = c->hidden, F = c->ffn, Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
    const CudaLayerWeights* w = p->layer >= 0 ? &g->layers[p->layer] : NULL;
    switch (p->field) {
        case P_WTE: return g->wte;
        case P_FINAL_NORM: return g->final_norm;
        case P_LM_HEAD: return g->lm_head;
        case P_ATTN_NORM: return w->attn_norm;
        case P_WQ: return w->wqkv;
        case P_WK: return w->wqkv + Q * C;
        case P_WV: return w->wqkv + (Q + KV) * C;
        case P_BQ: return w->bqkv;
        case P_BK: return w->bqkv + Q;
        case P_BV: return w->bqkv + Q + KV;
        case P_WO: return w->wo;
        case P_BO: return w->bo;
        case P_Q_NORM: return w->q_norm;
        case P_K_NORM: return w->k_norm;
        case P_MLP_NORM: return w->mlp_norm;
        case P_W_GATE: return w->w_gateup;
        case P_W_UP: return w->w_gateup + F * C;
        case P_W_DOWN: return w->w_down;
    }
    FATAL("parameter %s has no place in the device layout", p->name);
}

size_t cuda_model_param_offset(const CudaModel* g, const ParamInfo* p) { return (size_t)(param_dst(g, p) - g->arena); }

void cuda_model_upload(CudaModel* g, const Model* m) {
    const ModelConfig *a = &g->cfg, *b = &m->cfg;
    if (a->n_layers != b->n_layers || a->hidden != b->hidden || a->ffn != b->ffn || a->n_heads != b->n_heads ||
        a->n_kv_heads != b->n_kv_heads || a->head_dim != b->head_dim || a->vocab != b->vocab ||
        a->tie_embeddings != b->tie_embeddings || a->qkv_bias != b->qkv_bias || a->o_bias != b->o_bias ||
        a->qk_norm != b->qk_norm)
        FATAL("uploading a model of another shape into the device arena");
    for (int i = 0; i < m->table.n_params; i++) {
        const ParamInfo* p = &m->table.params[i];
        cuda_upload_f32_as_bf16(g->ctx, param_dst(g, p), m->arena + p->offset, p->numel);
    }
}

void cuda_model_init_random(CudaModel* g, uint64_t seed) {
    ParamTable t;
    param_table_build(&g->cfg, &t);
    for (int i = 0; i < t.n_params; i++) {
        const ParamInfo* p = &t.params[i];
        uint64_t key = 0;
        ParamInitKind kind = param_init_kind(p, seed, &key);
        if (kind == INIT_NORMAL)
            cuda_init_normal_bf16(g->ctx, param_dst(g, p), p->numel, key, PARAM_INIT_STD);
        else
            cuda_fill_bf16(g->ctx, param_dst(g, p), p->numel, kind == INIT_ONES ? 1.0f : 0.0f);
    }
    param_table_free(&t);
    cuda_synchronize(g->ctx);
}

// ---------------------------------------------------------------------------------------------
// cache and activations

void cuda_kvcache_create(CudaKVCache* c, const ModelConfig* cfg, int max_seqs, int max_len) {
    cuda_kvcache_create_layers(c, cfg, cfg->n_layers, max_seqs, max_len);
}

void cuda_kvcache_create_layers(CudaKVCache* c, const ModelConfig* cfg, int n_layers, int max_seqs, int max_len) {
    c->n_layers = n_layers;
    c->max_seqs = max_seqs;
    c->max_len = max_len;
    c->kv_dim = cfg->n_kv_heads * cfg->head_dim;
    c->prefix_seq = c->prefix_len = 0;
    size_t n = (size_t)n_layers * max_seqs * max_len * c->kv_dim;
    c->k = cuda_malloc(n * sizeof(bf16));  // positions are written before they are read
    c->v = cuda_malloc(n * sizeof(bf16));
}

void cuda_kvcache_free(CudaKVCache* c) {
    cuda_free(c->k);
    cuda_free(c->v);
    memset(c, 0, sizeof *c);
}

void cuda_runstate_create(CudaRunState* s, const ModelConfig* cfg, int max_rows, int max_out) {
    memset(s, 0, sizeof *s);
    size_t N = (size_t)max_rows, C = cfg->hidden, F = cfg->ffn, V = cfg->vocab;
    size_t Q = (size_t)cfg->n_heads * cfg->head_dim, KV = (size_t)cfg->n_kv_heads * cfg->head_dim;
    s->max_rows = max_rows;
    s->max_out = max_out;
    s->x = cuda_malloc(N * C * sizeof(float));
    s->xn = cuda_malloc(N * C * sizeof(bf16));
    s->qkv = cuda_malloc(N * (Q + 2 * KV) * sizeof(bf16));
    s->att = cuda_malloc(N * Q * sizeof(bf16));
    s->proj = cuda_malloc(N * C * sizeof(bf16));
    s->gateup = cuda_malloc(N * 2 * F * sizeof(bf16));
    s->h = cuda_malloc(N * F * sizeof(bf16));
    s->rows = cuda_malloc(N * C * sizeof(bf16));
    s->logits = cuda_malloc((size_t)max_out * V * sizeof(float));
    s->ids = cuda_malloc(4 * N * sizeof(int));
    s->host_ids = xmalloc(4 * N * sizeof(int));
    s->tiles = cuda_malloc(4 * N * sizeof(int));
    size_t split_rows = N < SPLIT_MAX_ROWS ? N : SPLIT_MAX_ROWS;
    s->attn_partial = cuda_malloc(sizeof(float) * split_rows * cfg->n_heads * SPLIT_MAX * (cfg->head_dim + 2));
    s->host_tiles = xmalloc(4 * N * sizeof(int));
}

void cuda_runstate_free(CudaRunState* s) {
    void* bufs[] = {s->x, s->xn, s->qkv, s->att, s->proj, s->gateup, s->h, s->rows, s->logits, s->ids, s->tiles,
                    s->attn_partial};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cuda_free(bufs[i]);
    free(s->host_ids);
    free(s->host_tiles);
    memset(s, 0, sizeof *s);
}

// ---------------------------------------------------------------------------------------------
// forward

int cuda_forward_stage(const CudaModel* g, CudaRunState* s, const CudaKVCache* cache, const int* tokens, const int* seq,
                       const int* pos, int N, const int* out_rows, int n_out, Err* e) {
    int R = s->max_rows;
    if (forward_rows_check(tokens, seq, pos, N, R, g->cfg.vocab, cache->max_seqs, cache->max_len, e)) return -1;
    if (!out_rows && n_out != N && n_out != 0) return err_set(e, "logits for all %d rows asked into %d", N, n_out);
    if (n_out > s->max_out) return err_set(e, "%d logit rows exceed the run state's %d", n_out, s->max_out);
    for (int i = 0; out_rows && i < n_out; i++)
        if (out_rows[i] < 0 || out_rows[i] >= N) return err_set(e, "output row %d outside the %d rows", out_rows[i], N);
    s->n_rows = N, s->n_out = n_out, s->gather = out_rows != NULL;
    int* h = s->host_ids;
    memcpy(h, tokens, sizeof(int) * N);
    memcpy(h + R, seq, sizeof(int) * N);
    memcpy(h + 2 * R, pos, sizeof(int) * N);
    if (out_rows) memcpy(h + 3 * R, out_rows, sizeof(int) * n_out);
    for (int k = 0; k < 4; k++) {
        int count = k < 3 ? N : out_rows ? n_out : 0;
        if (count) cuda_upload_async(g->ctx, s->ids + (size_t)k * R, h + (size_t)k * R, sizeof(int) * count);
    }
    s->n_tiles = 0;
    int longest = 0;
    for (int n = 0; n < N; n++) longest = pos[n] + 1 > longest ? pos[n] + 1 : longest;
    s->attn_splits = 1;
    if (N <= SPLIT_MAX_ROWS && longest >= 2 * SPLIT_KEYS) {
        s->attn_splits = (longest + SPLIT_KEYS - 1) / SPLIT_KEYS;
        if (s->attn_splits > SPLIT_MAX) s->attn_splits = SPLIT_MAX;
    }
    if (cuda_attention_prefill_supported(g->cfg.head_dim)) {
        int n_tiles = cuda_attention_prefill_tiles(seq, pos, N, s->host_tiles);
        if (4 * n_tiles <= N) {
            s->n_tiles = n_tiles;
            cuda_upload_async(g->ctx, s->tiles, s->host_tiles, sizeof(int) * 4 * (size_t)n_tiles);
        }
    }
    return 0;
}

void cuda_forward_launch(const CudaModel* g, CudaRunState* s, const CudaKVCache* cache) {
    CudaContext* ctx = g->ctx;
    int N = s->n_rows, n_out = s->n_out;
    const ModelConfig* c = &g->cfg;
    int C = c->hidden, F = c->ffn, HS = c->head_dim, NH = c->n_heads, NKV = c->n_kv_heads, V = c->vocab;
    int Q = NH * HS, KV = NKV * HS, QKV = Q + 2 * KV, R = s->max_rows, L = cache->max_len;
    float eps = c->rms_eps;
    const int *tokens = s->ids, *seq = s->ids + R, *pos = s->ids + 2 * R, *out_rows = s->ids + 3 * R;

    cuda_embedding_forward(ctx, s->x, tokens, g->wte, N, C);
    cuda_rmsnorm_forward(ctx, s->xn, s->x, g->layers[0].attn_norm, eps, N, C);
    for (int l = 0; l < c->n_layers; l++) {
        const CudaLayerWeights* w = &g->layers[l];
        // a one-layer cache is shared by all layers: valid when every call holds whole sequences (a teacher)
        size_t layer_off = (size_t)(cache->n_layers == 1 ? 0 : l) * cache->max_seqs * L * KV;
        bf16 *kc = cache->k + layer_off, *vc = cache->v + layer_off;
        // attention sublayer: q, k, v in one GEMM; q/k norm + RoPE + cache store in one kernel
        cuda_matmul_forward(ctx, s->qkv, 0, s->xn, w->wqkv, w->bqkv, N, C, QKV);
        cuda_qkv_prepare(ctx, s->qkv, s->qkv, QKV, kc, vc, w->q_norm, w->k_norm, seq, pos, g->inv_freq, eps, N, NH, NKV,
                         HS, L);
        if (s->n_tiles)
            cuda_attention_prefill(ctx, s->att, s->qkv, QKV, kc, vc, s->tiles, s->n_tiles, NH, NKV, HS, L,
                                   cache->prefix_seq, cache->prefix_len, NULL);
        else
            cuda_attention_forward_split(ctx, s->att, s->qkv, QKV, kc, vc, seq, pos, N, NH, NKV, HS, L, cache->prefix_seq,
                                         cache->prefix_len, s->attn_splits, s->attn_partial);
        cuda_matmul_forward(ctx, s->proj, 0, s->att, w->wo, w->bo, N, Q, C);
        cuda_residual_rmsnorm_forward(ctx, s->x, s->proj, s->xn, w->mlp_norm, eps, N, C);
        // MLP sublayer: gate and up in one GEMM
        cuda_matmul_forward(ctx, s->gateup, 0, s->xn, w->w_gateup, NULL, N, C, 2 * F);
        cuda_swiglu_forward(ctx, s->h, s->gateup, N, F);
        cuda_matmul_forward(ctx, s->proj, 0, s->h, w->w_down, NULL, N, F, C);
        // the residual add, then the next layer's input norm (after the last layer: the final norm)
        const bf16* next_norm = l + 1 < c->n_layers ? g->layers[l + 1].attn_norm : g->final_norm;
        cuda_residual_rmsnorm_forward(ctx, s->x, s->proj, s->xn, next_norm, eps, N, C);
        if (s->capture && s->capture_slot[l] >= 0)
            cuda_copy(ctx, s->capture + (size_t)s->capture_slot[l] * N * C, s->x, sizeof(float) * (size_t)N * C);
    }
    if (n_out == 0) return;  // hidden states only: s->xn holds the final norm's output (a teacher's)
    const bf16* rows = s->xn;
    if (s->gather) {
        cuda_gather_rows(ctx, s->rows, s->xn, out_rows, n_out, C);
        rows = s->rows;
    }
    cuda_matmul_forward(ctx, s->logits, 1, rows, g->lm_head, NULL, n_out, C, V);
}

int cuda_model_forward(const CudaModel* g, CudaRunState* s, CudaKVCache* cache, const int* tokens, const int* seq,
                       const int* pos, int N, const int* out_rows, int n_out, float* logits, Err* e) {
    if (cuda_forward_stage(g, s, cache, tokens, seq, pos, N, out_rows, n_out, e)) return -1;
    cuda_forward_launch(g, s, cache);
    cuda_download(g->ctx, logits, s->logits, sizeof(float) * (size_t)n_out * g->cfg.vocab);
    return 0;
}
