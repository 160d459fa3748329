// train.c: see train.h. Forward keeps what backward needs; backward walks the block in reverse:
//   out = h + down(silu(gate(rms2(h))) * up(rms2(h))),   h = x + o(attn(rope(qn(q(rms1(x)))), ...))
#include "train.h"

#include <stdlib.h>
#include <string.h>

#include "../kernels/clock.h"

// timed matmuls: out (N,OC) = inp (N,C) @ w^T + b, and its backward
static void mm(const Model* m, TrainActs* a, float* out, const float* inp, const float* w, const float* b, int N, int C,
               int OC) {
    double t0 = now_seconds();
    m->ops->matmul_forward(out, inp, w, b, N, C, OC);
    a->matmul_seconds += now_seconds() - t0;
    a->matmul_flops += 2.0 * N * C * OC;
}

static void mm_back(const Model* m, TrainActs* a, float* dinp, float* dw, float* db, const float* dout,
                    const float* inp, const float* w, int N, int C, int OC) {
    double t0 = now_seconds();
    m->ops->matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
    a->matmul_seconds += now_seconds() - t0;
    a->matmul_flops += 4.0 * N * C * OC;
}

#define LAYER(buf, l, width) ((buf) + (size_t)(a->recompute ? 0 : (l)) * (size_t)a->N * (size_t)(width))
#define RES(l) (a->res + (size_t)(l) * (size_t)a->N * (size_t)C)

void train_acts_create(TrainActs* a, const ModelConfig* c, int B, int T, int recompute) {
    memset(a, 0, sizeof *a);
    a->B = B;
    a->T = T;
    a->N = B * T;
    a->recompute = recompute;
    size_t N = (size_t)a->N, L = recompute ? 1 : (size_t)c->n_layers, C = (size_t)c->hidden, F = (size_t)c->ffn;
    size_t Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
    size_t W = C > Q ? C : Q;
    if (F > W) W = F;
    a->pos = xmalloc(sizeof(int) * N * 2);
    a->seq = a->pos + N;
    for (int n = 0; n < a->N; n++) a->pos[n] = n % T, a->seq[n] = n / T;
    a->res = xaligned_alloc_uninit(sizeof(float) * ((size_t)c->n_layers + 1) * N * C);
    a->xn1 = xaligned_alloc_uninit(sizeof(float) * L * N * C);
    a->q_raw = xaligned_alloc_uninit(sizeof(float) * L * N * Q);
    a->k_raw = xaligned_alloc_uninit(sizeof(float) * L * N * KV);
    a->q = xaligned_alloc_uninit(sizeof(float) * L * N * Q);
    a->k = xaligned_alloc_uninit(sizeof(float) * L * N * KV);
    a->v = xaligned_alloc_uninit(sizeof(float) * L * N * KV);
    a->att = xaligned_alloc_uninit(sizeof(float) * L * N * Q);
    a->res_mid = xaligned_alloc_uninit(sizeof(float) * L * N * C);
    a->xn2 = xaligned_alloc_uninit(sizeof(float) * L * N * C);
    a->gate = xaligned_alloc_uninit(sizeof(float) * L * N * F);
    a->up = xaligned_alloc_uninit(sizeof(float) * L * N * F);
    a->h = xaligned_alloc_uninit(sizeof(float) * L * N * F);
    a->xnf = xaligned_alloc_uninit(sizeof(float) * N * C);
    a->d_res = xaligned_alloc_uninit(sizeof(float) * N * C);
    a->d_a = xaligned_alloc_uninit(sizeof(float) * N * W);
    a->d_b = xaligned_alloc_uninit(sizeof(float) * N * W);
    a->d_c = xaligned_alloc_uninit(sizeof(float) * N * W);
    a->d_q = xaligned_alloc_uninit(sizeof(float) * N * Q);
    a->d_k = xaligned_alloc_uninit(sizeof(float) * N * KV);
    a->d_v = xaligned_alloc_uninit(sizeof(float) * N * KV);
    size_t sc = (size_t)ATTENTION_BLOCK_ROWS * (size_t)T;
    if (sc < 2 * (size_t)T) sc = 2 * (size_t)T;
    a->scratch = xaligned_alloc_uninit(sizeof(float) * (size_t)kernels_cpu_threads() * sc);
}

void train_acts_free(TrainActs* a) {
    float* bufs[] = {a->res, a->xn1, a->q_raw, a->k_raw, a->q, a->k, a->v, a->att, a->res_mid, a->xn2, a->gate,
                     a->up, a->h, a->xnf, a->d_res, a->d_a, a->d_b, a->d_c, a->d_q, a->d_k, a->d_v, a->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(a->pos);
    memset(a, 0, sizeof *a);
}

// Layer l from res[l] to res[l + 1], keeping its internals in its activation slot.
static void layer_forward(const Model* m, TrainActs* a, int l) {
    const ModelConfig* c = &m->cfg;
    const KernelOps* op = m->ops;
    int N = a->N, C = c->hidden, F = c->ffn, HS = c->head_dim, NH = c->n_heads, NKV = c->n_kv_heads;
    int Q = NH * HS, KV = NKV * HS;
    const LayerWeights* w = &m->w.layers[l];
    float *x = RES(l), *xn1 = LAYER(a->xn1, l, C), *qr = LAYER(a->q_raw, l, Q), *kr = LAYER(a->k_raw, l, KV);
    float *q = LAYER(a->q, l, Q), *k = LAYER(a->k, l, KV), *v = LAYER(a->v, l, KV), *att = LAYER(a->att, l, Q);
    float *mid = LAYER(a->res_mid, l, C), *xn2 = LAYER(a->xn2, l, C), *g = LAYER(a->gate, l, F), *u = LAYER(a->up, l, F);
    float *h = LAYER(a->h, l, F), *out = RES(l + 1);
    int Fl = config_layer_ffn(c, l);  // activation slots are F wide; a heterogeneous layer uses Fl of them
    if (config_layer_attention(c, l)) {
        op->rmsnorm_forward(xn1, x, w->attn_norm, c->rms_eps, N, C);
        mm(m, a, qr, xn1, w->wq, w->bq, N, C, Q);
        mm(m, a, kr, xn1, w->wk, w->bk, N, C, KV);
        mm(m, a, v, xn1, w->wv, w->bv, N, C, KV);
        if (w->q_norm) {
            op->rmsnorm_forward(q, qr, w->q_norm, c->rms_eps, N * NH, HS);
            op->rmsnorm_forward(k, kr, w->k_norm, c->rms_eps, N * NKV, HS);
        } else {
            memcpy(q, qr, sizeof(float) * (size_t)N * Q);
            memcpy(k, kr, sizeof(float) * (size_t)N * KV);
        }
        op->rope_forward(q, a->pos, m->inv_freq, N, NH, HS);
        op->rope_forward(k, a->pos, m->inv_freq, N, NKV, HS);
        // k and v of the batch are laid out (B, T, NKV, HS): a KV cache of B sequences of T positions
        op->attention_forward(att, q, k, v, a->seq, a->pos, N, NH, NKV, HS, a->T, 0, 0, a->scratch);
        mm(m, a, mid, att, w->wo, w->bo, N, Q, C);
        op->residual_forward(mid, x, N, C);
    } else {  // no attention sublayer: the stream passes
        memcpy(mid, x, sizeof(float) * (size_t)N * C);
    }
    if (Fl > 0) {
        op->rmsnorm_forward(xn2, mid, w->mlp_norm, c->rms_eps, N, C);
        mm(m, a, g, xn2, w->w_gate, NULL, N, C, Fl);
        mm(m, a, u, xn2, w->w_up, NULL, N, C, Fl);
        memcpy(h, g, sizeof(float) * (size_t)N * Fl);
        op->swiglu_forward(h, u, N, Fl);
        mm(m, a, out, h, w->w_down, NULL, N, Fl, C);
        op->residual_forward(out, mid, N, C);
    } else {
        memcpy(out, mid, sizeof(float) * (size_t)N * C);
    }
}

int train_forward(const Model* m, TrainActs* a, const int* tokens, Err* e) {
    const ModelConfig* c = &m->cfg;
    int N = a->N, C = c->hidden;
    for (int n = 0; n < N; n++)
        if (tokens[n] < 0 || tokens[n] >= c->vocab) return err_set(e, "token id %d is outside the vocabulary [0, %d)", tokens[n], c->vocab);
    m->ops->embedding_forward(a->res, tokens, m->w.wte, N, C);
    for (int l = 0; l < c->n_layers; l++) layer_forward(m, a, l);
    m->ops->rmsnorm_forward(a->xnf, RES(c->n_layers), m->w.final_norm, c->rms_eps, N, C);
    return 0;
}

void train_forward_from(const Model* m, TrainActs* a, int first, const float* res_in) {
    const ModelConfig* c = &m->cfg;
    int N = a->N, C = c->hidden;
    memmove(RES(first), res_in, sizeof(float) * (size_t)N * C);
    for (int l = first; l < c->n_layers; l++) layer_forward(m, a, l);
    m->ops->rmsnorm_forward(a->xnf, RES(c->n_layers), m->w.final_norm, c->rms_eps, N, C);
}

void train_backward(const Model* m, TrainActs* a, const int* tokens, const float* d_xnf, float* const* d_layer_out,
                    ModelWeights* g) {
    const ModelConfig* c = &m->cfg;
    const KernelOps* op = m->ops;
    int N = a->N, C = c->hidden, F = c->ffn, HS = c->head_dim, NH = c->n_heads, NKV = c->n_kv_heads;
    int Q = NH * HS, KV = NKV * HS;
    size_t NC = (size_t)N * C;
    float* dres = a->d_res;
    op->rmsnorm_backward(dres, g->final_norm, d_xnf, RES(c->n_layers), m->w.final_norm, c->rms_eps, N, C);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        const LayerWeights* w = &m->w.layers[l];
        LayerWeights* gw = &g->layers[l];
        float *x = RES(l), *xn1 = LAYER(a->xn1, l, C), *qr = LAYER(a->q_raw, l, Q), *kr = LAYER(a->k_raw, l, KV);
        float *q = LAYER(a->q, l, Q), *k = LAYER(a->k, l, KV), *v = LAYER(a->v, l, KV), *att = LAYER(a->att, l, Q);
        float *mid = LAYER(a->res_mid, l, C), *xn2 = LAYER(a->xn2, l, C), *gt = LAYER(a->gate, l, F), *u = LAYER(a->up, l, F);
        float* h = LAYER(a->h, l, F);
        if (a->recompute) layer_forward(m, a, l);  // the layer's internals again, from res[l]
        if (d_layer_out && d_layer_out[l]) op->residual_forward(dres, d_layer_out[l], N, C);
        int Fl = config_layer_ffn(c, l);
        if (Fl > 0) {  // MLP: dres is the gradient at the layer output = at the down_proj output and at mid
            mm_back(m, a, a->d_a, gw->w_down, NULL, dres, h, w->w_down, N, Fl, C);      // d_a = dh
            op->swiglu_backward(a->d_b, a->d_c, a->d_a, gt, u, N, Fl);                         // d_b = dgate, d_c = dup
            mm_back(m, a, a->d_a, gw->w_gate, NULL, a->d_b, xn2, w->w_gate, N, C, Fl);   // d_a = dxn2 (gate part)
            mm_back(m, a, a->d_b, gw->w_up, NULL, a->d_c, xn2, w->w_up, N, C, Fl);       // d_b = dxn2 (up part)
            op->residual_forward(a->d_a, a->d_b, N, C);
            op->rmsnorm_backward(a->d_a, gw->mlp_norm, a->d_a, mid, w->mlp_norm, c->rms_eps, N, C);
            op->residual_forward(dres, a->d_a, N, C);                                          // dres = d mid
        }
        if (!config_layer_attention(c, l)) continue;  // no attention: d x = d mid
        mm_back(m, a, a->d_a, gw->wo, gw->bo, dres, att, w->wo, N, Q, C);                // d_a = datt
        op->attention_backward(a->d_q, a->d_k, a->d_v, a->d_a, q, k, v, a->B, a->T, NH, NKV, HS, a->scratch);
        op->rope_backward(a->d_q, a->pos, m->inv_freq, N, NH, HS);
        op->rope_backward(a->d_k, a->pos, m->inv_freq, N, NKV, HS);
        if (w->q_norm) {
            op->rmsnorm_backward(a->d_q, gw->q_norm, a->d_q, qr, w->q_norm, c->rms_eps, N * NH, HS);
            op->rmsnorm_backward(a->d_k, gw->k_norm, a->d_k, kr, w->k_norm, c->rms_eps, N * NKV, HS);
        }
        mm_back(m, a, a->d_a, gw->wq, gw->bq, a->d_q, xn1, w->wq, N, C, Q);              // d_a = dxn1 (q)
        mm_back(m, a, a->d_b, gw->wk, gw->bk, a->d_k, xn1, w->wk, N, C, KV);
        op->residual_forward(a->d_a, a->d_b, N, C);
        mm_back(m, a, a->d_b, gw->wv, gw->bv, a->d_v, xn1, w->wv, N, C, KV);
        op->residual_forward(a->d_a, a->d_b, N, C);
        op->rmsnorm_backward(a->d_a, gw->attn_norm, a->d_a, x, w->attn_norm, c->rms_eps, N, C);
        op->residual_forward(dres, a->d_a, N, C);                                              // dres = d x
    }
    op->embedding_backward(g->wte, dres, tokens, N, C);
    (void)NC;
}
