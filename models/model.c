// model.c: the parameter table (arena layout), binding, allocation and random init.
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/hash.h"

static void add_param(ParamTable* t, int cap, const char* name, ParamField field, int layer, int64_t d0,
                      int64_t d1) {
    if (t->n_params >= cap) FATAL("parameter table overflow");
    ParamInfo* p = &t->params[t->n_params++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->field = field;
    p->layer = layer;
    p->ndim = d1 ? 2 : 1;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    p->offset = t->n_floats;
    t->n_floats += (p->numel + 15) / 16 * 16;  // 64-byte aligned tensors
}

void param_table_build(const ModelConfig* c, ParamTable* t) {
    int cap = 3 + 15 * c->n_layers;
    memset(t, 0, sizeof *t);
    t->params = xcalloc((size_t)cap, sizeof(ParamInfo));
    int64_t C = c->hidden, Q = (int64_t)c->n_heads * c->head_dim, KV = (int64_t)c->n_kv_heads * c->head_dim;
    add_param(t, cap, "model.embed_tokens.weight", P_WTE, -1, c->vocab, C);
    char n[96];
    for (int l = 0; l < c->n_layers; l++) {
#define LAYER(suffix, field, d0, d1)                                  \
    do {                                                              \
        snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix);       \
        add_param(t, cap, n, field, l, d0, d1);                       \
    } while (0)
        if (config_layer_attention(c, l)) {  // a removed attention takes its norm with it
            LAYER("input_layernorm.weight", P_ATTN_NORM, C, 0);
            LAYER("self_attn.q_proj.weight", P_WQ, Q, C);
            if (c->qkv_bias) LAYER("self_attn.q_proj.bias", P_BQ, Q, 0);
            LAYER("self_attn.k_proj.weight", P_WK, KV, C);
            if (c->qkv_bias) LAYER("self_attn.k_proj.bias", P_BK, KV, 0);
            LAYER("self_attn.v_proj.weight", P_WV, KV, C);
            if (c->qkv_bias) LAYER("self_attn.v_proj.bias", P_BV, KV, 0);
            LAYER("self_attn.o_proj.weight", P_WO, C, Q);
            if (c->o_bias) LAYER("self_attn.o_proj.bias", P_BO, C, 0);
            if (c->qk_norm) {
                LAYER("self_attn.q_norm.weight", P_Q_NORM, c->head_dim, 0);
                LAYER("self_attn.k_norm.weight", P_K_NORM, c->head_dim, 0);
            }
        }
        int F = config_layer_ffn(c, l);
        if (F > 0) {  // so does a removed FFN
            LAYER("post_attention_layernorm.weight", P_MLP_NORM, C, 0);
            LAYER("mlp.gate_proj.weight", P_W_GATE, F, C);
            LAYER("mlp.up_proj.weight", P_W_UP, F, C);
            LAYER("mlp.down_proj.weight", P_W_DOWN, C, F);
        }
#undef LAYER
    }
    add_param(t, cap, "model.norm.weight", P_FINAL_NORM, -1, C, 0);
    if (!c->tie_embeddings) add_param(t, cap, "lm_head.weight", P_LM_HEAD, -1, c->vocab, C);
}

void param_table_free(ParamTable* t) {
    free(t->params);
    memset(t, 0, sizeof *t);
}

static float** field_slot(ModelWeights* w, ParamField f, int layer) {
    LayerWeights* L = layer >= 0 ? &w->layers[layer] : NULL;
    switch (f) {
        case P_WTE: return &w->wte;
        case P_FINAL_NORM: return &w->final_norm;
        case P_LM_HEAD: return &w->lm_head;
        case P_ATTN_NORM: return &L->attn_norm;
        case P_WQ: return &L->wq;
        case P_BQ: return &L->bq;
        case P_WK: return &L->wk;
        case P_BK: return &L->bk;
        case P_WV: return &L->wv;
        case P_BV: return &L->bv;
        case P_WO: return &L->wo;
        case P_BO: return &L->bo;
        case P_Q_NORM: return &L->q_norm;
        case P_K_NORM: return &L->k_norm;
        case P_MLP_NORM: return &L->mlp_norm;
        case P_W_GATE: return &L->w_gate;
        case P_W_UP: return &L->w_up;
        case P_W_DOWN: return &L->w_down;
    }
    FATAL("unknown parameter field %d", (int)f);
}

void weights_bind(const ParamTable* t, const ModelConfig* cfg, float* arena, ModelWeights* w) {
    memset(w, 0, sizeof *w);
    w->layers = xcalloc((size_t)cfg->n_layers, sizeof(LayerWeights));
    for (int i = 0; i < t->n_params; i++)
        *field_slot(w, t->params[i].field, t->params[i].layer) = arena + t->params[i].offset;
    if (cfg->tie_embeddings) w->lm_head = w->wte;
}

void weights_free(ModelWeights* w) {
    free(w->layers);
    memset(w, 0, sizeof *w);
}

// The 16-bit slot of a matrix field (NULL for the vectors, which stay fp32)
static uint16_t** field_slot16(Weights16* w, ParamField f, int layer) {
    LayerWeights16* L = layer >= 0 ? &w->layers[layer] : NULL;
    switch (f) {
        case P_WTE: return &w->wte;
        case P_LM_HEAD: return &w->lm_head;
        case P_WQ: return &L->wq;
        case P_WK: return &L->wk;
        case P_WV: return &L->wv;
        case P_WO: return &L->wo;
        case P_W_GATE: return &L->w_gate;
        case P_W_UP: return &L->w_up;
        case P_W_DOWN: return &L->w_down;
        default: return NULL;
    }
}

// The model's arenas: fp32 for everything (t == WEIGHT_F32), else the matrices packed 16-bit and the
// vectors packed fp32, each tensor 64-byte aligned; with the arenas NULL only counts their elements.
static void pack_16(Model* m, float* a32, uint16_t* a16, size_t* n32, size_t* n16) {
    *n32 = *n16 = 0;
    for (int i = 0; i < m->table.n_params; i++) {
        const ParamInfo* p = &m->table.params[i];
        if (p->ndim == 2) {
            if (a16) *field_slot16(&m->w16, p->field, p->layer) = a16 + *n16;
            *n16 += (p->numel + 31) / 32 * 32;
        } else {
            if (a32) *field_slot(&m->w, p->field, p->layer) = a32 + *n32;
            *n32 += (p->numel + 15) / 16 * 16;
        }
    }
}

void model_create_as(Model* m, const ModelConfig* cfg, WeightType t) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    param_table_build(cfg, &m->table);
    if (t == WEIGHT_F32) {
        m->arena = xaligned_alloc(m->table.n_floats * sizeof(float));
        weights_bind(&m->table, cfg, m->arena, &m->w);
    } else {
        size_t n32, n16;
        pack_16(m, NULL, NULL, &n32, &n16);
        m->arena = xaligned_alloc(n32 * sizeof(float));
        m->w16 = (Weights16){t, xaligned_alloc(n16 * sizeof(uint16_t)), NULL, NULL,
                             xcalloc((size_t)cfg->n_layers, sizeof(LayerWeights16))};
        m->w.layers = xcalloc((size_t)cfg->n_layers, sizeof(LayerWeights));
        pack_16(m, m->arena, m->w16.arena, &n32, &n16);
        if (cfg->tie_embeddings) m->w16.lm_head = m->w16.wte;
    }
    m->ops = kernels_cpu();
    m->inv_freq = xmalloc(sizeof(float) * (size_t)(cfg->head_dim / 2));
    rope_inv_freq(cfg, m->inv_freq);
}

void model_create(Model* m, const ModelConfig* cfg) { model_create_as(m, cfg, WEIGHT_F32); }

float* model_param_f32(const Model* m, int i) {
    const ParamInfo* p = &m->table.params[i];
    if (m->w16.type == WEIGHT_F32) return m->arena + p->offset;
    return p->ndim == 2 ? NULL : *field_slot((ModelWeights*)&m->w, p->field, p->layer);
}

uint16_t* model_param_16(const Model* m, int i) {
    const ParamInfo* p = &m->table.params[i];
    if (m->w16.type == WEIGHT_F32 || p->ndim != 2) return NULL;
    return *field_slot16((Weights16*)&m->w16, p->field, p->layer);
}

int model_require_f32(const Model* m, const char* what, Err* e) {
    if (m->w16.type == WEIGHT_F32) return 0;
    return err_set(e, "%s needs fp32 weights; this model holds its matrices %s (load it without --weights %s)", what,
                   weight_type_name(m->w16.type), weight_type_name(m->w16.type));
}

int weight_type_parse(const char* name, WeightType* t, Err* e) {
    if (!strcmp(name, "fp32")) return *t = WEIGHT_F32, 0;
    if (!strcmp(name, "bf16")) return *t = WEIGHT_BF16, 0;
    if (!strcmp(name, "f16")) return *t = WEIGHT_F16, 0;
    return err_set(e, "--weights must be fp32, bf16 or f16, not '%s'", name);
}

const char* weight_type_name(WeightType t) { return t == WEIGHT_BF16 ? "bf16" : t == WEIGHT_F16 ? "f16" : "fp32"; }

void rope_inv_freq(const ModelConfig* cfg, float* inv_freq) {
    // inv_freq_j = 1 / theta^(2j/HS), in fp32 as transformers computes it
    for (int j = 0; j < cfg->head_dim / 2; j++) {
        float expo = (float)(2 * j) / (float)cfg->head_dim;
        inv_freq[j] = 1.0f / (float)pow((float)cfg->rope_theta, expo);
    }
}

void model_free(Model* m) {
    weights_free(&m->w);
    free(m->w16.layers);
    free(m->w16.arena);
    param_table_free(&m->table);
    free(m->arena);
    free(m->inv_freq);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------------------------------------
// random init: value i of tensor k is a pure function of (seed, k's name, i)

ParamInitKind param_init_kind(const ParamInfo* p, uint64_t seed, uint64_t* key) {
    if (p->field == P_ATTN_NORM || p->field == P_MLP_NORM || p->field == P_FINAL_NORM || p->field == P_Q_NORM ||
        p->field == P_K_NORM)
        return INIT_ONES;
    if (p->field == P_BQ || p->field == P_BK || p->field == P_BV || p->field == P_BO) return INIT_ZEROS;
    *key = splitmix64(seed ^ fnv1a64(p->name, strlen(p->name)));
    return INIT_NORMAL;
}

void param_init_values(const ParamInfo* p, uint64_t seed, float* dst) {
    uint64_t key = 0;
    ParamInitKind kind = param_init_kind(p, seed, &key);
    if (kind != INIT_NORMAL) {
        for (size_t i = 0; i < p->numel; i++) dst[i] = kind == INIT_ONES ? 1.0f : 0.0f;
        return;
    }
    long long pairs = (long long)(p->numel + 1) / 2;
    // Box-Muller: pair k gives elements 2k (cosine) and 2k+1 (sine)
#pragma omp parallel for if (pairs > 32768)
    for (long long k = 0; k < pairs; k++) {
        uint64_t r = splitmix64(key + (uint64_t)k);
        double u1 = ((r >> 11) + 1.0) * (1.0 / 9007199254740993.0);  // (0, 1]
        double u2 = (double)(splitmix64(r) >> 11) * (1.0 / 9007199254740992.0);
        double radius = PARAM_INIT_STD * sqrt(-2.0 * log(u1)), angle = 6.283185307179586 * u2;
        dst[2 * k] = (float)(radius * cos(angle));
        if ((size_t)(2 * k + 1) < p->numel) dst[2 * k + 1] = (float)(radius * sin(angle));
    }
}

void model_init_random(Model* m, uint64_t seed) {
    for (int i = 0; i < m->table.n_params; i++) {
        const ParamInfo* p = &m->table.params[i];
        float* dst = model_param_f32(m, i);
        if (dst) {
            param_init_values(p, seed, dst);
            continue;
        }
        float* wide = xmalloc(p->numel * sizeof(float));  // a 16-bit matrix: the fp32 values, then rounded
        param_init_values(p, seed, wide);
        uint16_t* h = model_param_16(m, i);
#pragma omp parallel for if (p->numel > 65536)
        for (size_t k = 0; k < p->numel; k++) h[k] = f32_to_16(wide[k], m->w16.type);
        free(wide);
    }
}

int param_takes_decay(const ParamInfo* p) {
    switch (p->field) {
        case P_ATTN_NORM: case P_MLP_NORM: case P_FINAL_NORM: case P_Q_NORM: case P_K_NORM:
        case P_BQ: case P_BK: case P_BV: case P_BO:
            return 0;
        default:
            return 1;
    }
}
