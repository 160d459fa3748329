// hetero_surgery.c: see hetero_surgery.h.
#include "hetero_surgery.h"

#include <stdlib.h>
#include <string.h>

int prune_hetero(const Model* m, const Importance* imp, const int* ffn, const unsigned char* attention, Model* out, Err* e) {
    const ModelConfig* c = &m->cfg;
    int L = c->n_layers, C = c->hidden, F = c->ffn;
    if (config_require_uniform(c, "heterogeneous pruning (of an already heterogeneous model)", e)) return -1;
    if (imp->n_layers != L || imp->ffn != F) return err_set(e, "heterogeneous pruning: the importance scores are of another shape");
    ModelConfig h = *c;
    h.hetero = true;
    int widest = 0;
    for (int l = 0; l < L; l++) {
        if (ffn[l] < 0 || ffn[l] > F) return err_set(e, "heterogeneous pruning: layer %d's FFN width %d is outside [0, %d]", l, ffn[l], F);
        h.layer_ffn[l] = ffn[l], h.layer_attention[l] = attention[l] != 0;
        widest = ffn[l] > widest ? ffn[l] : widest;
    }
    h.ffn = widest ? widest : 1;  // intermediate_size is at least 1 even when no layer keeps an FFN
    if (config_validate(&h, "heterogeneous plan", e)) return -1;
    model_create(out, &h);
    // the global tensors and every kept attention tensor: same shapes, copied by name
    for (int i = 0; i < out->table.n_params; i++) {
        const ParamInfo* p = &out->table.params[i];
        if (p->field == P_W_GATE || p->field == P_W_UP || p->field == P_W_DOWN) continue;
        const ParamInfo* q = NULL;
        for (int k = 0; k < m->table.n_params && !q; k++)
            if (!strcmp(m->table.params[k].name, p->name)) q = &m->table.params[k];
        if (!q || q->numel != p->numel) FATAL("heterogeneous pruning: %s has no twin in the teacher", p->name);
        memcpy(out->arena + p->offset, m->arena + q->offset, sizeof(float) * p->numel);
    }
    // each layer's kept neurons: the highest-scored, in their original order
    int* order = xmalloc(sizeof(int) * (size_t)F);
    char* kept = xmalloc((size_t)F);
    for (int l = 0; l < L; l++) {
        if (!ffn[l]) continue;
        importance_mlp_order(imp, l, order);
        memset(kept, 0, (size_t)F);
        for (int r = 0; r < ffn[l]; r++) kept[order[r]] = 1;
        const LayerWeights* s = &m->w.layers[l];
        LayerWeights* d = &out->w.layers[l];
        for (int i = 0, j = 0; i < F; i++) {
            if (!kept[i]) continue;
            memcpy(d->w_gate + (size_t)j * C, s->w_gate + (size_t)i * C, sizeof(float) * C);
            memcpy(d->w_up + (size_t)j * C, s->w_up + (size_t)i * C, sizeof(float) * C);
            for (int ch = 0; ch < C; ch++) d->w_down[(size_t)ch * ffn[l] + j] = s->w_down[(size_t)ch * F + i];
            j++;
        }
    }
    free(order), free(kept);
    return 0;
}
