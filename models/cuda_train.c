// cuda_train.c: see cuda_train.h. The forward and backward walk the block as models/train.c does;
// the differences are the device layout (one GEMM for q,k,v and one for gate,up, forward and
// backward), bf16 activations, and gradients packed to bf16 before each GEMM.
#include "cuda_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


#define LOSS_ROWS 256

// ---------------------------------------------------------------------------------------------
// parameters, masters, moments

// Masters, gradients and moments for g's arena, zeroed (the alignment gaps stay zero), and the
// device offset of every Hugging Face tensor.
static void train_state_alloc(CudaTrainModel* t, CudaModel* g) {
    memset(t, 0, sizeof *t);
    t->g = g;
    size_t n = g->arena_elems;
    t->shard_lo = 0, t->shard_hi = n;
    float** arrays[4] = {&t->master, &t->grad, &t->m, &t->v};
    for (int k = 0; k < 4; k++) {
        *arrays[k] = cuda_malloc(sizeof(float) * n);
        cuda_memset(g->ctx, *arrays[k], 0, sizeof(float) * n);
    }
    param_table_build(&g->cfg, &t->table);
    t->offset = xmalloc(sizeof(size_t) * (size_t)t->table.n_params);
    for (int i = 0; i < t->table.n_params; i++) t->offset[i] = cuda_model_param_offset(g, &t->table.params[i]);
}

void cuda_train_model_create(CudaTrainModel* t, CudaModel* g, const Model* m) {
    train_state_alloc(t, g);
    for (int i = 0; i < t->table.n_params; i++) {  // exact fp32 masters
        const ParamInfo* p = &t->table.params[i];
        cuda_upload(g->ctx, t->master + t->offset[i], m->arena + p->offset, sizeof(float) * p->numel);
    }
    cuda_model_upload(g, m);
}

void cuda_train_model_create_random(CudaTrainModel* t, CudaModel* g, uint64_t seed) {
    train_state_alloc(t, g);
    cuda_memset(g->ctx, g->arena, 0, sizeof(bf16) * g->arena_elems);  // zero gaps, so zero masters there
    cuda_model_init_random(g, seed);
    cuda_bf16_to_f32(g->ctx, t->master, g->arena, g->arena_elems);
}

void cuda_train_model_free(CudaTrainModel* t) {
    cuda_free(t->master), cuda_free(t->grad), cuda_free(t->m), cuda_free(t->v);
    free(t->offset);
    param_table_free(&t->table);
    memset(t, 0, sizeof *t);
}

void cuda_train_zero_grad(CudaTrainModel* t) {
    cuda_memset(t->g->ctx, t->grad, 0, sizeof(float) * t->g->arena_elems);
}

// tensor i's elements inside the shard: [*a, *b) of the arena; 0 when none
static int in_shard(const CudaTrainModel* t, int i, size_t* a, size_t* b) {
    size_t lo = t->offset[i], hi = lo + t->table.params[i].numel;
    *a = lo > t->shard_lo ? lo : t->shard_lo;
    *b = hi < t->shard_hi ? hi : t->shard_hi;
    return *b > *a;
}

double cuda_train_optimizer_step(CudaTrainModel* t, const OptimConfig* o, float lr) {
    return cuda_train_optimizer_step_with_norm(t, o, lr, sqrt(cuda_sum_squares(t->g->ctx, t->grad, t->g->arena_elems)));
}

double cuda_train_optimizer_step_with_norm(CudaTrainModel* t, const OptimConfig* o, float lr, double norm) {
    CudaContext* ctx = t->g->ctx;
    if (!isfinite(norm)) return norm;  // no step: the caller stops with the step number
    float scale = o->clip > 0 && norm > o->clip ? (float)(o->clip / (norm + 1e-6)) : 1.0f;
    int step = t->step + 1;
    float bc1 = (float)(1.0 - pow(o->beta1, step)), bc2_sqrt = (float)sqrt(1.0 - pow(o->beta2, step));
    for (int i = 0; i < t->table.n_params; i++) {
        const ParamInfo* p = &t->table.params[i];
        float decay = param_takes_decay(p) ? 1.0f - lr * o->weight_decay : 1.0f;
        size_t a, b;
        if (!in_shard(t, i, &a, &b)) continue;
        size_t s = a - t->shard_lo;  // the shard's arrays start at shard_lo
        cuda_adamw(ctx, t->master + s, t->g->arena + a, t->grad + a, t->m + s, t->v + s, b - a, o->beta1, o->beta2, o->eps,
                   decay, lr / bc1, bc2_sqrt, scale, t->round_seed ? t->round_seed * 1000003ull + (uint64_t)step : 0);
    }
    cuda_train_zero_grad(t);
    t->step = step;
    return norm;
}

double cuda_train_grad_sum_squares(const CudaTrainModel* t, size_t lo, size_t hi) {
    return hi > lo ? cuda_sum_squares(t->g->ctx, t->grad + lo, hi - lo) : 0.0;
}

void cuda_train_model_shard(CudaTrainModel* t, size_t lo, size_t hi) {
    CudaContext* ctx = t->g->ctx;
    size_t n = hi - lo, from = lo - t->shard_lo;
    if (lo < t->shard_lo || hi > t->shard_hi || hi < lo) FATAL("shard [%zu, %zu) outside the state's [%zu, %zu)", lo, hi, t->shard_lo, t->shard_hi);
    float** arrays[3] = {&t->master, &t->m, &t->v};
    for (int k = 0; k < 3; k++) {
        float* kept = cuda_malloc(sizeof(float) * (n ? n : 1));
        if (n) cuda_copy(ctx, kept, *arrays[k] + from, sizeof(float) * n);
        cuda_synchronize(ctx);
        cuda_free(*arrays[k]);
        *arrays[k] = kept;
    }
    t->shard_lo = lo, t->shard_hi = hi;
}

void cuda_train_model_get_shard(const CudaTrainModel* t, float* master, float* m, float* v) {
    size_t bytes = sizeof(float) * (t->shard_hi - t->shard_lo);
    if (!bytes) return;
    cuda_download(t->g->ctx, master, t->master, bytes);
    cuda_download(t->g->ctx, m, t->m, bytes);
    cuda_download(t->g->ctx, v, t->v, bytes);
}

void cuda_train_layout_to_cpu(const CudaTrainModel* t, const float* device, float* cpu) {
    for (int i = 0; i < t->table.n_params; i++) {
        const ParamInfo* p = &t->table.params[i];
        memcpy(cpu + p->offset, device + t->offset[i], sizeof(float) * p->numel);
    }
}

// ---------------------------------------------------------------------------------------------
// activations

void cuda_train_acts_create(CudaTrainActs* a, CudaContext* ctx, const ModelConfig* c, int B, int T, int recompute) {
    memset(a, 0, sizeof *a);
    a->B = B, a->T = T, a->N = B * T;
    a->recompute = recompute;
    size_t N = (size_t)a->N, L = recompute ? 1 : (size_t)c->n_layers, C = c->hidden, F = c->ffn, V = c->vocab;
    size_t Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim, QKV = Q + 2 * KV;
    a->tokens = cuda_malloc(sizeof(int) * N);
    a->targets = cuda_malloc(sizeof(int) * N);
    a->seq = cuda_malloc(sizeof(int) * N);
    a->pos = cuda_malloc(sizeof(int) * N);
    a->tiles = cuda_malloc(sizeof(int) * 4 * N);
    int* host = xmalloc(sizeof(int) * 6 * N);
    int *seq = host, *pos = host + N, *tiles = host + 2 * N;
    for (size_t n = 0; n < N; n++) seq[n] = (int)(n / T), pos[n] = (int)(n % T);
    a->n_tiles = cuda_attention_prefill_supported(c->head_dim) ? cuda_attention_prefill_tiles(seq, pos, (int)N, tiles) : 0;
    cuda_upload(ctx, a->seq, seq, sizeof(int) * N);
    cuda_upload(ctx, a->pos, pos, sizeof(int) * N);
    if (a->n_tiles) cuda_upload(ctx, a->tiles, tiles, sizeof(int) * 4 * (size_t)a->n_tiles);
    a->res = cuda_malloc(sizeof(float) * ((size_t)c->n_layers + 1) * N * C);  // every boundary, always
    a->mid = cuda_malloc(sizeof(float) * L * N * C);
    a->xn1 = cuda_malloc(sizeof(bf16) * L * N * C);
    a->qkv = cuda_malloc(sizeof(bf16) * L * N * QKV);
    a->q = cuda_malloc(sizeof(bf16) * L * N * Q);
    a->k = cuda_malloc(sizeof(bf16) * L * N * KV);
    a->v = cuda_malloc(sizeof(bf16) * L * N * KV);
    a->att = cuda_malloc(sizeof(bf16) * L * N * Q);
    a->lse = cuda_malloc(sizeof(float) * L * N * (size_t)c->n_heads);
    a->xn2 = cuda_malloc(sizeof(bf16) * L * N * C);
    a->gateup = cuda_malloc(sizeof(bf16) * L * N * 2 * F);
    a->h = cuda_malloc(sizeof(bf16) * L * N * F);
    a->xnf = cuda_malloc(sizeof(bf16) * N * C);
    a->proj = cuda_malloc(sizeof(bf16) * N * C);
    a->d_res = cuda_malloc(sizeof(float) * N * C);
    a->d_x = cuda_malloc(sizeof(float) * N * C);
    a->d_xnf = cuda_malloc(sizeof(float) * N * C);
    a->d_h = cuda_malloc(sizeof(float) * N * F);
    a->d_gate = cuda_malloc(sizeof(float) * N * F);
    a->d_up = cuda_malloc(sizeof(float) * N * F);
    a->d_att = cuda_malloc(sizeof(float) * N * Q);
    a->d_q = cuda_malloc(sizeof(float) * N * Q);
    a->d_k = cuda_malloc(sizeof(float) * N * KV);
    a->d_v = cuda_malloc(sizeof(float) * N * KV);
    size_t W = C > QKV ? C : QKV;
    if (2 * F > W) W = 2 * F;
    a->d_bf = cuda_malloc(sizeof(bf16) * N * W);
    a->loss_rows = N < LOSS_ROWS ? (int)N : LOSS_ROWS;
    a->logits = cuda_malloc(sizeof(float) * a->loss_rows * V);
    a->t_logits = cuda_malloc(sizeof(float) * a->loss_rows * V);
    a->dlogits = cuda_malloc(sizeof(bf16) * a->loss_rows * V);
    a->row_loss = cuda_malloc(sizeof(double) * 2 * N);
    free(host);
}

void cuda_train_acts_free(CudaTrainActs* a) {
    void* bufs[] = {a->tokens, a->targets, a->seq,    a->pos,   a->tiles, a->res,    a->mid,    a->xn1,
                    a->qkv,    a->q,       a->k,      a->v,     a->att,   a->lse,    a->xn2,    a->gateup, a->h,
                    a->xnf,    a->proj,    a->d_res,  a->d_x,   a->d_xnf, a->d_h,    a->d_gate, a->d_up,
                    a->d_att,  a->d_q,     a->d_k,    a->d_v,   a->d_bf,  a->logits, a->t_logits, a->dlogits,
                    a->row_loss};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cuda_free(bufs[i]);
    memset(a, 0, sizeof *a);
}

// ---------------------------------------------------------------------------------------------
// forward

// layer l's slice of a (L, N, width) activation (slot 0 for every layer when recomputing);
// the residual stream keeps every boundary
#define AT(buf, l, width) ((buf) + (size_t)(a->recompute ? 0 : (l)) * (size_t)a->N * (size_t)(width))
#define RES(l) (a->res + (size_t)(l) * (size_t)a->N * (size_t)c->hidden)

// the dimension names of the legend, from a config and a row count
#define SHAPES(c, rows)                                                                                   \
    int N = (rows), C = (c)->hidden, F = (c)->ffn, HS = (c)->head_dim, NH = (c)->n_heads, NKV = (c)->n_kv_heads; \
    int Q = NH * HS, KV = NKV * HS, QKV = Q + 2 * KV, L = (c)->n_layers;                                  \
    float eps = (c)->rms_eps;                                                                             \
    (void)F, (void)QKV, (void)L, (void)eps

static int check_tokens(const ModelConfig* c, const int* tokens, int N, const char* what, Err* e) {
    for (int n = 0; n < N; n++)
        if (tokens[n] < 0 || tokens[n] >= c->vocab)
            return err_set(e, "%s id %d is outside the vocabulary [0, %d)", what, tokens[n], c->vocab);
    return 0;
}

// Layer l from RES(l) to RES(l + 1), its internals into its slots. xn1 of layer l is computed here
// unless the previous layer fused it (fused_in); fuse_out makes this layer's last residual add
// also write the next layer's xn1 (or, after the last layer, xnf).
static void layer_forward(const CudaModel* g, CudaTrainActs* a, int l, int fused_in, int fuse_out) {
    const ModelConfig* c = &g->cfg;
    CudaContext* ctx = g->ctx;
    SHAPES(c, a->N);
    const CudaLayerWeights* w = &g->layers[l];
    bf16 *qkv = AT(a->qkv, l, QKV), *q = AT(a->q, l, Q), *k = AT(a->k, l, KV), *v = AT(a->v, l, KV);
    bf16 *att = AT(a->att, l, Q), *xn1 = AT(a->xn1, l, C);
    float *x = RES(l), *mid = AT(a->mid, l, C), *out = RES(l + 1);
    if (!fused_in) cuda_rmsnorm_forward(ctx, xn1, x, w->attn_norm, eps, N, C);
    cuda_matmul_forward(ctx, qkv, 0, xn1, w->wqkv, w->bqkv, N, C, QKV);
    // k, v of the batch laid out (B, T, NKV, HS): a cache of B sequences of T positions
    cuda_qkv_prepare(ctx, qkv, q, Q, k, v, w->q_norm, w->k_norm, a->seq, a->pos, g->inv_freq, eps, N, NH, NKV, HS, a->T);
    if (a->n_tiles)
        cuda_attention_prefill(ctx, att, q, Q, k, v, a->tiles, a->n_tiles, NH, NKV, HS, a->T, 0, 0, AT(a->lse, l, NH));
    else
        cuda_attention_forward(ctx, att, q, Q, k, v, a->seq, a->pos, N, NH, NKV, HS, a->T, 0, 0);
    cuda_matmul_forward(ctx, a->proj, 0, att, w->wo, w->bo, N, Q, C);
    cuda_copy(ctx, mid, x, sizeof(float) * (size_t)N * C);
    cuda_residual_rmsnorm_forward(ctx, mid, a->proj, AT(a->xn2, l, C), w->mlp_norm, eps, N, C);
    cuda_matmul_forward(ctx, AT(a->gateup, l, 2 * F), 0, AT(a->xn2, l, C), w->w_gateup, NULL, N, C, 2 * F);
    cuda_swiglu_forward(ctx, AT(a->h, l, F), AT(a->gateup, l, 2 * F), N, F);
    cuda_matmul_forward(ctx, a->proj, 0, AT(a->h, l, F), w->w_down, NULL, N, F, C);
    cuda_copy(ctx, out, mid, sizeof(float) * (size_t)N * C);
    if (fuse_out) {
        bf16* next = l + 1 < L ? AT(a->xn1, l + 1, C) : a->xnf;
        const bf16* norm = l + 1 < L ? g->layers[l + 1].attn_norm : g->final_norm;
        cuda_residual_rmsnorm_forward(ctx, out, a->proj, next, norm, eps, N, C);
    } else {
        cuda_residual_forward(ctx, out, a->proj, N, C);
    }
}

int cuda_train_forward(const CudaModel* g, CudaTrainActs* a, const int* tokens, Err* e) {
    const ModelConfig* c = &g->cfg;
    CudaContext* ctx = g->ctx;
    int N = a->N, C = c->hidden, L = c->n_layers;
    if (check_tokens(c, tokens, N, "token", e)) return -1;
    cuda_upload(ctx, a->tokens, tokens, sizeof(int) * N);
    cuda_embedding_forward(ctx, RES(0), a->tokens, g->wte, N, C);
    cuda_rmsnorm_forward(ctx, AT(a->xn1, 0, C), RES(0), g->layers[0].attn_norm, c->rms_eps, N, C);
    // with recompute every layer computes its own xn1 (the slot is shared); the last one always
    // fuses the final norm into xnf
    for (int l = 0; l < L; l++) layer_forward(g, a, l, l == 0 || !a->recompute, !a->recompute || l == L - 1);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// loss

int cuda_train_loss(const CudaTrainModel* t, CudaTrainActs* a, const LossConfig* cfg, const int* targets,
                    const bf16* t_xnf, const bf16* t_lm_head, int Ct, float grad_scale, LossValues* out, Err* e) {
    const CudaModel* g = t->g;
    CudaContext* ctx = g->ctx;
    int N = a->N, C = g->cfg.hidden, V = g->cfg.vocab;
    int kd = cfg->kd != KD_NONE;
    if (cfg->kd == KD_TOPK && (cfg->topk < 1 || cfg->topk > 4096)) return err_set(e, "top-k KD needs k in [1, 4096]");
    if (kd && (!t_xnf || !t_lm_head)) return err_set(e, "a KD loss needs the teacher's outputs");
    if (cfg->ce_weight != 0.0f) {
        if (!targets) return err_set(e, "cross-entropy needs targets");
        if (check_tokens(&g->cfg, targets, N, "target", e)) return -1;
        cuda_upload(ctx, a->targets, targets, sizeof(int) * N);
    }
    CudaLossConfig lc = {cfg->ce_weight,       cfg->kd_weight,
                         cfg->kd == KD_KL ? 1 : cfg->kd == KD_RKL ? 2 : cfg->kd == KD_TOPK ? 3 : 0,
                         cfg->temperature,     cfg->t2_scaling,
                         cfg->topk};
    float* d_head = t->grad + (g->lm_head - g->arena);  // a tied head's gradient lands on the embedding's
    for (int r0 = 0; r0 < N; r0 += a->loss_rows) {
        int R = N - r0 < a->loss_rows ? N - r0 : a->loss_rows;
        const bf16* xnf = a->xnf + (size_t)r0 * C;
        cuda_matmul_forward(ctx, a->logits, 1, xnf, g->lm_head, NULL, R, C, V);
        if (kd) cuda_matmul_forward(ctx, a->t_logits, 1, t_xnf + (size_t)r0 * Ct, t_lm_head, NULL, R, Ct, V);
        cuda_loss_rows(ctx, a->logits, kd ? a->t_logits : NULL, cfg->ce_weight != 0.0f ? a->targets + r0 : NULL, R, V,
                       &lc, grad_scale / (float)N, a->row_loss + r0, a->row_loss + N + r0);
        if (grad_scale == 0.0f) continue;  // validation: the loss only
        cuda_pack_bf16(ctx, a->dlogits, V, a->logits, V, R, V);
        cuda_matmul_backward(ctx, a->d_xnf + (size_t)r0 * C, d_head, NULL, a->dlogits, xnf, g->lm_head, R, C, V);
    }
    double* rows = xmalloc(sizeof(double) * 2 * (size_t)N);
    cuda_download(ctx, rows, a->row_loss, sizeof(double) * 2 * (size_t)N);
    double ce = 0, kdv = 0;
    for (int n = 0; n < N; n++) ce += rows[n], kdv += rows[N + n];  // row order: deterministic
    free(rows);
    memset(out, 0, sizeof *out);
    out->ce = ce / N;
    out->kd = kdv / N;
    out->total = cfg->ce_weight * out->ce + cfg->kd_weight * out->kd;
    if (!isfinite(out->total)) return err_set(e, "the loss is not finite (%g)", out->total);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// backward

void cuda_train_backward(CudaTrainModel* t, CudaTrainActs* a, const int* tokens, float* const* d_layer_out) {
    cuda_train_backward_hooked(t, a, tokens, d_layer_out, NULL, NULL);
}

void cuda_train_backward_hooked(CudaTrainModel* t, CudaTrainActs* a, const int* tokens, float* const* d_layer_out,
                                void (*ready)(void* arg, int point), void* arg) {
    const CudaModel* g = t->g;
    const ModelConfig* c = &g->cfg;
    CudaContext* ctx = g->ctx;
    SHAPES(c, a->N);
    size_t NC = (size_t)N * C;
#define GRAD(ptr) (t->grad + ((ptr) - g->arena))
    cuda_rmsnorm_backward(ctx, a->d_res, GRAD(g->final_norm), a->d_xnf, RES(L), 0, 1, (size_t)C, g->final_norm, eps,
                          N, C);
    if (ready) ready(arg, L);  // the final norm's and (from the loss) the lm_head's gradients are queued
    for (int l = L - 1; l >= 0; l--) {
        const CudaLayerWeights* w = &g->layers[l];
        if (a->recompute) layer_forward(g, a, l, 0, 0);  // the layer's internals again, from RES(l)
        if (d_layer_out && d_layer_out[l]) cuda_add_f32(ctx, a->d_res, d_layer_out[l], NC);
        // MLP: d_res is the gradient at the layer output = at down_proj's output and at mid
        cuda_pack_bf16(ctx, a->d_bf, C, a->d_res, C, N, C);
        cuda_matmul_backward(ctx, a->d_h, GRAD(w->w_down), NULL, a->d_bf, AT(a->h, l, F), w->w_down, N, F, C);
        cuda_swiglu_backward(ctx, a->d_gate, a->d_up, a->d_h, AT(a->gateup, l, 2 * F), N, F);
        cuda_pack_bf16(ctx, a->d_bf, 2 * F, a->d_gate, F, N, F);
        cuda_pack_bf16(ctx, a->d_bf + F, 2 * F, a->d_up, F, N, F);
        cuda_matmul_backward(ctx, a->d_x, GRAD(w->w_gateup), NULL, a->d_bf, AT(a->xn2, l, C), w->w_gateup, N, C, 2 * F);
        cuda_rmsnorm_backward(ctx, a->d_x, GRAD(w->mlp_norm), a->d_x, AT(a->mid, l, C), 0, 1, (size_t)C, w->mlp_norm,
                              eps, N, C);
        cuda_add_f32(ctx, a->d_res, a->d_x, NC);  // d mid
        // attention
        cuda_pack_bf16(ctx, a->d_bf, C, a->d_res, C, N, C);
        cuda_matmul_backward(ctx, a->d_att, GRAD(w->wo), w->bo ? GRAD(w->bo) : NULL, a->d_bf, AT(a->att, l, Q), w->wo,
                             N, Q, C);
        if (a->n_tiles && cuda_attention_backward_tc_supported(HS))  // from the forward's output and lse
            cuda_attention_backward_flash(ctx, a->d_q, a->d_k, a->d_v, a->d_att, AT(a->att, l, Q), AT(a->lse, l, NH),
                                          AT(a->q, l, Q), AT(a->k, l, KV), AT(a->v, l, KV), a->B, a->T, NH, NKV, HS);
        else
            cuda_attention_backward(ctx, a->d_q, a->d_k, a->d_v, a->d_att, AT(a->q, l, Q), AT(a->k, l, KV),
                                    AT(a->v, l, KV), a->B, a->T, NH, NKV, HS);
        cuda_rope_backward(ctx, a->d_q, a->pos, g->inv_freq, N, NH, HS);
        cuda_rope_backward(ctx, a->d_k, a->pos, g->inv_freq, N, NKV, HS);
        const bf16* qkv = AT(a->qkv, l, QKV);
        if (w->q_norm) {  // the raw q and k heads, read in place inside the (N, QKV) rows
            cuda_rmsnorm_backward(ctx, a->d_q, GRAD(w->q_norm), a->d_q, qkv, 1, NH, (size_t)QKV, w->q_norm, eps, N * NH,
                                  HS);
            cuda_rmsnorm_backward(ctx, a->d_k, GRAD(w->k_norm), a->d_k, qkv + Q, 1, NKV, (size_t)QKV, w->k_norm, eps,
                                  N * NKV, HS);
        }
        cuda_pack_bf16(ctx, a->d_bf, QKV, a->d_q, Q, N, Q);
        cuda_pack_bf16(ctx, a->d_bf + Q, QKV, a->d_k, KV, N, KV);
        cuda_pack_bf16(ctx, a->d_bf + Q + KV, QKV, a->d_v, KV, N, KV);
        cuda_matmul_backward(ctx, a->d_x, GRAD(w->wqkv), w->bqkv ? GRAD(w->bqkv) : NULL, a->d_bf, AT(a->xn1, l, C),
                             w->wqkv, N, C, QKV);
        cuda_rmsnorm_backward(ctx, a->d_x, GRAD(w->attn_norm), a->d_x, RES(l), 0, 1, (size_t)C, w->attn_norm, eps, N, C);
        cuda_add_f32(ctx, a->d_res, a->d_x, NC);  // d x
        if (ready) ready(arg, l);
    }
    cuda_embedding_backward(ctx, GRAD(g->wte), a->d_res, tokens, N, C);
    if (ready) ready(arg, -1);
#undef GRAD
}

// ---------------------------------------------------------------------------------------------
// teacher

void cuda_teacher_create(CudaTeacher* t, CudaModel* g, int B, int T) {
    memset(t, 0, sizeof *t);
    t->g = g;
    cuda_kvcache_create_layers(&t->cache, &g->cfg, 1, B, T);  // one layer's keys and values at a time
    cuda_runstate_create(&t->rs, &g->cfg, B * T, 1);
}

void cuda_teacher_free(CudaTeacher* t) {
    cuda_kvcache_free(&t->cache);
    cuda_runstate_free(&t->rs);
    memset(t, 0, sizeof *t);
}

int cuda_teacher_forward(CudaTeacher* t, const int* tokens, int B, int T, Err* e) {
    int N = B * T;
    int* rows = xmalloc(sizeof(int) * 2 * (size_t)N);
    int *seq = rows, *pos = rows + N;
    for (int n = 0; n < N; n++) seq[n] = n / T, pos[n] = n % T;
    int rc = cuda_forward_stage(t->g, &t->rs, &t->cache, tokens, seq, pos, N, NULL, 0, e);
    if (!rc) cuda_forward_launch(t->g, &t->rs, &t->cache);
    free(rows);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// state in the CPU arena's layout (distill/trainer.c writes it to its state file)

void cuda_train_model_get_state(const CudaTrainModel* t, float* params, float* m, float* v) {
    CudaContext* ctx = t->g->ctx;
    for (int i = 0; i < t->table.n_params; i++) {
        const ParamInfo* p = &t->table.params[i];
        size_t a, b;
        if (!in_shard(t, i, &a, &b)) continue;
        size_t bytes = sizeof(float) * (b - a), cpu = p->offset + (a - t->offset[i]), s = a - t->shard_lo;
        cuda_download(ctx, params + cpu, t->master + s, bytes);
        cuda_download(ctx, m + cpu, t->m + s, bytes);
        cuda_download(ctx, v + cpu, t->v + s, bytes);
    }
}

void cuda_train_model_set_state(CudaTrainModel* t, const float* params, const float* m, const float* v, int step) {
    CudaContext* ctx = t->g->ctx;
    for (int i = 0; i < t->table.n_params; i++) {
        const ParamInfo* p = &t->table.params[i];
        // the bf16 parameters as the last step left them, whole on every rank (rounded to nearest: with
        // stochastic rounding a resume re-rounds, so it is not bit-identical)
        cuda_upload_f32_as_bf16(ctx, t->g->arena + t->offset[i], params + p->offset, p->numel);
        size_t a, b;
        if (!in_shard(t, i, &a, &b)) continue;
        size_t bytes = sizeof(float) * (b - a), cpu = p->offset + (a - t->offset[i]), s = a - t->shard_lo;
        cuda_upload(ctx, t->master + s, params + cpu, bytes);
        cuda_upload(ctx, t->m + s, m + cpu, bytes);
        cuda_upload(ctx, t->v + s, v + cpu, bytes);
    }
    t->step = step;
    cuda_train_zero_grad(t);
}
