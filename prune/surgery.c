// surgery.c: see surgery.h.
#include "surgery.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/file_io.h"

const char* depth_strategy_name(DepthStrategy d) {
    static const char* const names[] = {"none", "bi", "block", "last", "list", "ppl", "ablation", "ablation-block"};
    return names[d];
}

int depth_strategy_parse(const char* name, DepthStrategy* d) {
    for (int i = DEPTH_BI; i <= DEPTH_ABLATION_BLOCK; i++)  // every strategy but an explicit list
        if (i != DEPTH_LIST && !strcmp(name, depth_strategy_name((DepthStrategy)i))) return *d = (DepthStrategy)i, 0;
    return -1;
}

int prune_write(const Model* pruned, const Importance* imp, const ModelConfig* source_cfg, const char* source,
                const char* strategy, const int* keep, int n_keep, const char* dir, StDtype dtype, Err* e) {
    if (model_save(pruned, dir, dtype, ARBOR_DEFAULT_SHARD_BYTES, e)) return -1;
    cJSON* root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "source", source);
    cJSON_AddStringToObject(root, "strategy", strategy);
    cJSON* layers = cJSON_AddArrayToObject(root, "teacher_layers");
    for (int i = 0; i < n_keep; i++) cJSON_AddItemToArray(layers, cJSON_CreateNumber(keep[i]));
    if (json_write_atomic(dir, "arbor_lineage.json", root, e)) return -1;
    if (!imp) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/scores.json", dir);
    if (importance_save(imp, source_cfg, path, e)) return -1;
    snprintf(path, sizeof path, "%s/scores.txt", dir);
    return importance_write_table(imp, path, e);
}

// idx (k): the indices of the k largest scores among n, returned in ascending index order
static void top_k_sorted(const double* score, int n, int k, int* idx) {
    char* taken = xcalloc((size_t)n, 1);
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!taken[i] && (best < 0 || score[i] > score[best])) best = i;
        taken[best] = 1;
    }
    for (int i = 0, j = 0; i < n; i++)
        if (taken[i]) idx[j++] = i;
    free(taken);
}

static void identity(int* idx, int n) {
    for (int i = 0; i < n; i++) idx[i] = i;
}

void calib_for_target(CalibOptions* o, int n_layers, const PruneTarget* t) {
    int n = n_layers - t->layers;
    if (t->depth != DEPTH_ABLATION_BLOCK || o->ablation_windows < 1 || n < 1 || n >= n_layers) return;
    for (int i = 0; i < o->n_ablation_sizes; i++)
        if (o->ablation_sizes[i] == n) return;
    if (o->n_ablation_sizes < ABLATION_MAX_SIZES - 1) o->ablation_sizes[o->n_ablation_sizes++] = n;
}

// The block start s in [0, count) with the lowest score[s * stride] (the first of equals).
static int lowest_start(const double* score, size_t stride, int count) {
    int best = 0;
    for (int s = 1; s < count; s++)
        if (score[(size_t)s * stride] < score[(size_t)best * stride]) best = s;
    return best;
}

int prune_pick_layers(const ModelConfig* c, const Importance* imp, const PruneTarget* t, int* keep, int* n_keep, Err* e) {
    int L = c->n_layers;
    char* drop = xcalloc((size_t)L, 1);
    int rc = 0;
    if (t->depth == DEPTH_LIST) {
        for (int i = 0; i < t->n_drop && !rc; i++) {
            if (t->drop[i] < 0 || t->drop[i] >= L) rc = err_set(e, "--drop-layers: layer %d does not exist (0..%d)", t->drop[i], L - 1);
            else if (drop[t->drop[i]]) rc = err_set(e, "--drop-layers: layer %d is listed twice", t->drop[i]);
            else drop[t->drop[i]] = 1;
        }
        if (!rc && t->n_drop >= L) rc = err_set(e, "--drop-layers would drop every layer");
    } else if (t->depth == DEPTH_PPL) {
        rc = err_set(e, "the ppl strategy picks layers by evaluating the model (prune_depth_ppl)");
    } else if (t->depth != DEPTH_NONE) {
        int n = L - t->layers;
        if (t->layers < 1 || t->layers > L) rc = err_set(e, "--layers %d: the model has %d layers (keep 1..%d)", t->layers, L, L);
        else if (t->depth != DEPTH_LAST && !imp)
            rc = err_set(e, "the %s strategy needs importance scores (--calib or --scores)", depth_strategy_name(t->depth));
        else if ((t->depth == DEPTH_ABLATION || t->depth == DEPTH_ABLATION_BLOCK) && !imp->ablation.n_sizes)
            rc = err_set(e, "the %s strategy needs layer-ablation scores (calibrate with --ablation-windows)",
                         depth_strategy_name(t->depth));
        else if (t->depth == DEPTH_BI || t->depth == DEPTH_ABLATION) {  // drop the n lowest-scored layers
            const double* score = t->depth == DEPTH_BI ? imp->bi : imp->ablation.logits;  // size 1 comes first
            for (int k = 0; k < n; k++) {
                int worst = -1;
                for (int l = 0; l < L; l++)
                    if (!drop[l] && (worst < 0 || score[l] < score[worst])) worst = l;
                drop[worst] = 1;
            }
        } else if (t->depth == DEPTH_BLOCK && n > 0) {  // the contiguous block whose ends are most alike
            int best = lowest_start(imp->angular + n, (size_t)L + 2, L - n + 1);  // angular[s][s + n]
            for (int l = best; l < best + n; l++) drop[l] = 1;
        } else if (t->depth == DEPTH_ABLATION_BLOCK && n > 0) {  // the block whose ablation moves the logits least
            const Ablation* ab = &imp->ablation;
            int k = 0;
            while (k < ab->n_sizes && ab->sizes[k] != n) k++;
            if (k == ab->n_sizes) {
                rc = err_set(e, "the ablation-block strategy to %d layers needs blocks of %d ablated (--ablation-blocks %d)",
                             t->layers, n, n);
            } else {
                int best = lowest_start(ab->logits + ablation_offset(ab, k), 1, L - n + 1);
                for (int l = best; l < best + n; l++) drop[l] = 1;
            }
        } else if (t->depth == DEPTH_LAST && n > 0) {  // the deepest layers, but never the final one
            if (n > L - 1) rc = err_set(e, "--strategy last keeps the final layer: at least 2 layers must remain");
            for (int l = L - 1 - n; l < L - 1 && !rc; l++) drop[l] = 1;
        }
    }
    *n_keep = 0;
    for (int l = 0; l < L && !rc; l++)
        if (!drop[l]) keep[(*n_keep)++] = l;
    free(drop);
    return rc;
}

// dst (nr, nc) = src (.., src_cols)[rows[i]][cols[j]]
static void gather(float* dst, const float* src, int src_cols, const int* rows, int nr, const int* cols, int nc) {
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nc; j++) dst[(size_t)i * nc + j] = src[(size_t)rows[i] * src_cols + cols[j]];
}

// head rows: for kept heads hd, the HS rows hd*HS .. hd*HS+HS-1
static int* head_rows(const int* heads, int n, int HS) {
    int* rows = xmalloc(sizeof(int) * (size_t)n * HS);
    for (int i = 0; i < n; i++)
        for (int d = 0; d < HS; d++) rows[i * HS + d] = heads[i] * HS + d;
    return rows;
}

int prune_width_check(const ModelConfig* c, const PruneTarget* t, Err* e) {
    int C = c->hidden, F = c->ffn, NH = c->n_heads, NKV = c->n_kv_heads;
    int C2 = t->hidden ? t->hidden : C, F2 = t->ffn ? t->ffn : F;
    int NKV2 = t->kv_heads ? t->kv_heads : NKV, NH2 = t->heads ? t->heads : NH * NKV2 / NKV;
    if (C2 > C) return err_set(e, "--hidden %d is larger than the model's %d", C2, C);
    if (F2 > F) return err_set(e, "--ffn %d is larger than the model's %d", F2, F);
    if (NKV2 > NKV) return err_set(e, "--kv-heads %d is more than the model's %d", NKV2, NKV);
    if (NH2 > NH) return err_set(e, "--heads %d is more than the model's %d", NH2, NH);
    if (C2 < 1 || F2 < 1 || NKV2 < 1 || NH2 < 1) return err_set(e, "width targets must be positive");
    if (NH2 % NKV2) return err_set(e, "--heads %d is not a multiple of the %d KV groups kept", NH2, NKV2);
    if (NH2 / NKV2 > NH / NKV)
        return err_set(e, "--heads %d with %d KV groups needs %d query heads per group; the model has %d", NH2, NKV2,
                       NH2 / NKV2, NH / NKV);
    return 0;
}

int prune_model(const Model* m, const Importance* imp, const PruneTarget* t, const int* keep, int n_keep, Model* out,
                Err* e) {
    const ModelConfig* c = &m->cfg;
    if (config_require_uniform(c, "homogeneous pruning", e)) return -1;
    int C = c->hidden, F = c->ffn, NH = c->n_heads, NKV = c->n_kv_heads, HS = c->head_dim;
    int C2 = t->hidden ? t->hidden : C, F2 = t->ffn ? t->ffn : F;
    int NKV2 = t->kv_heads ? t->kv_heads : NKV, NH2 = t->heads ? t->heads : NH * NKV2 / NKV;
    if (prune_width_check(c, t, e)) return -1;
    if ((C2 < C || F2 < F || NH2 < NH || NKV2 < NKV) && !imp)
        return err_set(e, "width pruning needs importance scores (--calib or --scores)");
    ModelConfig c2 = *c;
    c2.n_layers = n_keep, c2.hidden = C2, c2.ffn = F2, c2.n_heads = NH2, c2.n_kv_heads = NKV2;
    if (config_validate(&c2, "pruned model", e)) return -1;
    model_create(out, &c2);
    int *ch = xmalloc(sizeof(int) * (size_t)C2), *all_v = xmalloc(sizeof(int) * (size_t)c->vocab);
    if (C2 < C) top_k_sorted(imp->channels, C, C2, ch);
    else identity(ch, C);
    identity(all_v, c->vocab);
    const ModelWeights *w = &m->w, *w2 = &out->w;
    gather(w2->wte, w->wte, C, all_v, c->vocab, ch, C2);
    gather(w2->final_norm, w->final_norm, C, (int[]){0}, 1, ch, C2);
    if (!c->tie_embeddings) gather(w2->lm_head, w->lm_head, C, all_v, c->vocab, ch, C2);
    int *neurons = xmalloc(sizeof(int) * (size_t)F2), *groups = xmalloc(sizeof(int) * (size_t)NKV2);
    int* heads = xmalloc(sizeof(int) * (size_t)NH2);
    int* head_score_idx = xmalloc(sizeof(int) * (size_t)NH);
    int zero[1] = {0}, all_hs[4096];
    identity(all_hs, HS);
    for (int i = 0; i < n_keep; i++) {
        int l = keep[i];
        const LayerWeights* a = &w->layers[l];
        LayerWeights* b = &out->w.layers[i];
        if (F2 < F) top_k_sorted(imp->mlp + (size_t)l * F, F, F2, neurons);
        else identity(neurons, F);
        if (NKV2 < NKV) top_k_sorted(imp->kv + (size_t)l * NKV, NKV, NKV2, groups);
        else identity(groups, NKV);
        // query heads: the same number from each kept group, its best-scored ones, group by group
        int per = NH2 / NKV2, group = NH / NKV;
        for (int g = 0; g < NKV2; g++) {
            if (per < group && imp) {
                top_k_sorted(imp->heads + (size_t)l * NH + (size_t)groups[g] * group, group, per, head_score_idx);
            } else {
                identity(head_score_idx, per);
            }
            for (int k = 0; k < per; k++) heads[g * per + k] = groups[g] * group + head_score_idx[k];
        }
        int *qrows = head_rows(heads, NH2, HS), *kvrows = head_rows(groups, NKV2, HS);
        gather(b->attn_norm, a->attn_norm, C, zero, 1, ch, C2);
        gather(b->mlp_norm, a->mlp_norm, C, zero, 1, ch, C2);
        gather(b->wq, a->wq, C, qrows, NH2 * HS, ch, C2);
        gather(b->wk, a->wk, C, kvrows, NKV2 * HS, ch, C2);
        gather(b->wv, a->wv, C, kvrows, NKV2 * HS, ch, C2);
        gather(b->wo, a->wo, NH * HS, ch, C2, qrows, NH2 * HS);
        if (a->bq) {
            gather(b->bq, a->bq, NH * HS, zero, 1, qrows, NH2 * HS);
            gather(b->bk, a->bk, NKV * HS, zero, 1, kvrows, NKV2 * HS);
            gather(b->bv, a->bv, NKV * HS, zero, 1, kvrows, NKV2 * HS);
        }
        if (a->bo) gather(b->bo, a->bo, C, zero, 1, ch, C2);
        if (a->q_norm) {
            gather(b->q_norm, a->q_norm, HS, zero, 1, all_hs, HS);
            gather(b->k_norm, a->k_norm, HS, zero, 1, all_hs, HS);
        }
        gather(b->w_gate, a->w_gate, C, neurons, F2, ch, C2);
        gather(b->w_up, a->w_up, C, neurons, F2, ch, C2);
        gather(b->w_down, a->w_down, F, ch, C2, neurons, F2);
        free(qrows);
        free(kvrows);
    }
    free(ch), free(all_v), free(neurons), free(groups), free(heads), free(head_score_idx);
    return 0;
}
