// forward.c: see forward.h. Reads top to bottom like the block's definition:
//   h   = x + o_proj(attn(rope(q_norm(q_proj(rms(x)))), rope(k_norm(k_proj(rms(x)))), v_proj(rms(x))))
//   out = h + down_proj(silu(gate_proj(rms(h))) * up_proj(rms(h)))
#include "forward.h"

#include <stdlib.h>
#include <string.h>
#include "../kernels/clock.h"

void kvcache_create(KVCache* c, const ModelConfig* cfg, int max_seqs, int max_len) {
    c->n_layers = cfg->n_layers;
    c->max_seqs = max_seqs;
    c->max_len = max_len;
    c->kv_dim = cfg->n_kv_heads * cfg->head_dim;
    c->prefix_seq = c->prefix_len = 0;
    size_t n = (size_t)cfg->n_layers * max_seqs * max_len * c->kv_dim;
    c->k = xaligned_alloc_uninit(n * sizeof(float));  // positions are written before they are read
    c->v = xaligned_alloc_uninit(n * sizeof(float));
}

void kvcache_free(KVCache* c) {
    free(c->k);
    free(c->v);
    memset(c, 0, sizeof *c);
}

void runstate_create(RunState* s, const ModelConfig* cfg, int max_rows, int max_len) {
    memset(s, 0, sizeof *s);
    size_t N = (size_t)max_rows, C = (size_t)cfg->hidden, F = (size_t)cfg->ffn;
    size_t Q = (size_t)cfg->n_heads * cfg->head_dim, KV = (size_t)cfg->n_kv_heads * cfg->head_dim;
    s->max_rows = max_rows;
    s->x = xaligned_alloc_uninit(N * C * sizeof(float));
    s->xn = xaligned_alloc_uninit(N * C * sizeof(float));
    s->q = xaligned_alloc_uninit(N * Q * sizeof(float));
    s->k = xaligned_alloc_uninit(N * KV * sizeof(float));
    s->v = xaligned_alloc_uninit(N * KV * sizeof(float));
    s->att = xaligned_alloc_uninit(N * Q * sizeof(float));
    s->proj = xaligned_alloc_uninit(N * C * sizeof(float));
    s->gate = xaligned_alloc_uninit(N * F * sizeof(float));
    s->up = xaligned_alloc_uninit(N * F * sizeof(float));
    s->rows = xaligned_alloc_uninit(N * C * sizeof(float));
    size_t widest = C > F ? C : F;  // the longest weight row: o_proj reads Q, down_proj F
    s->wide = xaligned_alloc_uninit(WIDEN_ROWS * (widest > Q ? widest : Q) * sizeof(float));
    s->scratch = xaligned_alloc_uninit((size_t)kernels_cpu_threads() * ATTENTION_BLOCK_ROWS * (size_t)max_len * sizeof(float));
}

void runstate_free(RunState* s) {
    float* bufs[] = {s->x, s->xn, s->q, s->k, s->v, s->att, s->proj, s->gate, s->up, s->rows, s->scratch, s->wide};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    memset(s, 0, sizeof *s);
}

// out (N,OC) = inp (N,C) @ w (OC,C)^T + b, from w16 instead when the model holds its matrices 16-bit;
// timed for the benchmark's matmul accounting
static void matmul(const Model* m, RunState* s, float* out, const float* inp, const float* w, const uint16_t* w16,
                   const float* b, int N, int C, int OC) {
    double t0 = now_seconds();
    if (w16)
        m->ops->matmul_forward_16(out, inp, w16, m->w16.type, b, N, C, OC, s->wide);
    else
        m->ops->matmul_forward(out, inp, w, b, N, C, OC);
    s->matmul_seconds += now_seconds() - t0;
    s->matmul_flops += 2.0 * N * C * OC;
}

// Writes this call's keys and values into the cache at (seq, pos).
static void cache_store(KVCache* c, int layer, const float* k, const float* v, const int* seq, const int* pos, int N) {
    for (int n = 0; n < N; n++) {
        size_t at = (((size_t)layer * c->max_seqs + seq[n]) * c->max_len + pos[n]) * c->kv_dim;
        memcpy(c->k + at, k + (size_t)n * c->kv_dim, sizeof(float) * c->kv_dim);
        memcpy(c->v + at, v + (size_t)n * c->kv_dim, sizeof(float) * c->kv_dim);
    }
}

int forward_rows_check(const int* tokens, const int* seq, const int* pos, int N, int max_rows, int V, int max_seqs,
                       int max_len, Err* e) {
    if (N > max_rows) return err_set(e, "%d rows exceed the run state's %d", N, max_rows);
    for (int n = 0; n < N; n++) {
        if (tokens[n] < 0 || tokens[n] >= V) return err_set(e, "token id %d is outside the vocabulary [0, %d)", tokens[n], V);
        if (seq[n] < 0 || seq[n] >= max_seqs) return err_set(e, "sequence %d beyond the KV cache's %d", seq[n], max_seqs);
        if (pos[n] < 0 || pos[n] >= max_len) return err_set(e, "position %d beyond the KV cache's %d", pos[n], max_len);
    }
    return 0;
}

// Embedding and every layer: leaves the residual stream of the N rows in s->x. When capture is given,
// the output of layer l goes to capture + slot[l] * N * C for every l with slot[l] >= 0.
static int forward_trunk(const Model* m, RunState* s, KVCache* cache, const int* tokens, const int* seq, const int* pos,
                         int N, float* capture, const int* slot, Err* e) {
    const ModelConfig* c = &m->cfg;
    const KernelOps* op = m->ops;
    int C = c->hidden, HS = c->head_dim, NH = c->n_heads, NKV = c->n_kv_heads;
    int Q = NH * HS, KV = NKV * HS, V = c->vocab;
    if (forward_rows_check(tokens, seq, pos, N, s->max_rows, V, cache->max_seqs, cache->max_len, e)) return -1;

    if (m->w16.wte)
        op->embedding_forward_16(s->x, tokens, m->w16.wte, m->w16.type, N, C);
    else
        op->embedding_forward(s->x, tokens, m->w.wte, N, C);
    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights* w = &m->w.layers[l];
        LayerWeights16 h = m->w16.layers ? m->w16.layers[l] : (LayerWeights16){0};
        // attention sublayer (a heterogeneous layer may have none: the residual stream passes)
        if (config_layer_attention(c, l)) {
            op->rmsnorm_forward(s->xn, s->x, w->attn_norm, c->rms_eps, N, C);
            matmul(m, s, s->q, s->xn, w->wq, h.wq, w->bq, N, C, Q);
            matmul(m, s, s->k, s->xn, w->wk, h.wk, w->bk, N, C, KV);
            matmul(m, s, s->v, s->xn, w->wv, h.wv, w->bv, N, C, KV);
            if (w->q_norm) {  // per-head RMSNorm over HS, before RoPE (Qwen3)
                op->rmsnorm_forward(s->q, s->q, w->q_norm, c->rms_eps, N * NH, HS);
                op->rmsnorm_forward(s->k, s->k, w->k_norm, c->rms_eps, N * NKV, HS);
            }
            op->rope_forward(s->q, pos, m->inv_freq, N, NH, HS);
            op->rope_forward(s->k, pos, m->inv_freq, N, NKV, HS);
            cache_store(cache, l, s->k, s->v, seq, pos, N);
            size_t layer_off = (size_t)l * cache->max_seqs * cache->max_len * KV;
            op->attention_forward(s->att, s->q, cache->k + layer_off, cache->v + layer_off, seq, pos, N, NH, NKV, HS,
                                  cache->max_len, cache->prefix_seq, cache->prefix_len, s->scratch);
            matmul(m, s, s->proj, s->att, w->wo, h.wo, w->bo, N, Q, C);
            op->residual_forward(s->x, s->proj, N, C);
        }
        // MLP sublayer, F_l neurons (none: the stream passes)
        int Fl = config_layer_ffn(c, l);
        if (Fl > 0) {
            op->rmsnorm_forward(s->xn, s->x, w->mlp_norm, c->rms_eps, N, C);
            matmul(m, s, s->gate, s->xn, w->w_gate, h.w_gate, NULL, N, C, Fl);
            matmul(m, s, s->up, s->xn, w->w_up, h.w_up, NULL, N, C, Fl);
            op->swiglu_forward(s->gate, s->up, N, Fl);
            matmul(m, s, s->proj, s->gate, w->w_down, h.w_down, NULL, N, Fl, C);
            op->residual_forward(s->x, s->proj, N, C);
        }
        if (capture && slot[l] >= 0) memcpy(capture + (size_t)slot[l] * N * C, s->x, sizeof(float) * (size_t)N * C);
    }
    return 0;
}

int model_forward_hidden(const Model* m, RunState* s, KVCache* cache, const int* tokens, const int* seq,
                         const int* pos, int N, float* hidden, float* capture, const int* slot, Err* e) {
    if (forward_trunk(m, s, cache, tokens, seq, pos, N, capture, slot, e)) return -1;
    m->ops->rmsnorm_forward(hidden, s->x, m->w.final_norm, m->cfg.rms_eps, N, m->cfg.hidden);
    return 0;
}

int model_forward(const Model* m, RunState* s, KVCache* cache, const int* tokens, const int* seq, const int* pos,
                  int N, const int* out_rows, int n_out, float* logits, Err* e) {
    const ModelConfig* c = &m->cfg;
    const KernelOps* op = m->ops;
    int C = c->hidden, V = c->vocab;
    if (forward_trunk(m, s, cache, tokens, seq, pos, N, NULL, NULL, e)) return -1;
    // final norm and lm_head, only for the rows whose logits are wanted
    const float* rows = s->x;
    if (out_rows) {
        for (int i = 0; i < n_out; i++) memcpy(s->rows + (size_t)i * C, s->x + (size_t)out_rows[i] * C, sizeof(float) * C);
        rows = s->rows;
    } else {
        n_out = N;
    }
    op->rmsnorm_forward(s->rows, rows, m->w.final_norm, c->rms_eps, n_out, C);
    matmul(m, s, logits, s->rows, m->w.lm_head, m->w16.lm_head, NULL, n_out, C, V);
    return 0;
}
