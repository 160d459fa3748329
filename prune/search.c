// search.c: see search.h.
#include "search.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../evals/perplexity.h"
#include "../models/file_io.h"
#include "../models/vec.h"

double prune_val_loss(const Model* m, const int* tokens, int64_t n, int seq_len, Err* e) {
    PplOptions o = {seq_len, seq_len, 0, 256};
    PplResult r;
    if (perplexity_eval(m, tokens, n, &o, &r, e)) return NAN;
    return r.mean_nll;
}

int prune_depth_ppl(const Model* m, const int* tokens, int64_t n, int seq_len, int target, int* keep, int* n_keep,
                    Err* e) {
    int L = m->cfg.n_layers;
    if (target < 1 || target > L) return err_set(e, "--layers %d: the model has %d layers (keep 1..%d)", target, L, L);
    *n_keep = L;
    for (int l = 0; l < L; l++) keep[l] = l;
    int* trial = xmalloc(sizeof(int) * (size_t)L);
    PruneTarget none = {DEPTH_NONE, 0, NULL, 0, 0, 0, 0, 0};
    while (*n_keep > target) {
        int best = -1;
        double best_loss = INFINITY;
        for (int k = 0; k < *n_keep; k++) {  // try removing keep[k]
            int t = 0;
            for (int j = 0; j < *n_keep; j++)
                if (j != k) trial[t++] = keep[j];
            Model cand;
            if (prune_model(m, NULL, &none, trial, t, &cand, e)) {
                free(trial);
                return -1;
            }
            double loss = prune_val_loss(&cand, tokens, n, seq_len, e);
            model_free(&cand);
            if (isnan(loss)) {
                free(trial);
                return -1;
            }
            fprintf(stderr, "ppl: without layer %d: val loss %.4f\n", keep[k], loss);
            if (loss < best_loss) best_loss = loss, best = k;
        }
        fprintf(stderr, "ppl: dropping layer %d (val loss %.4f)\n", keep[best], best_loss);
        for (int j = best; j + 1 < *n_keep; j++) keep[j] = keep[j + 1];
        (*n_keep)--;
    }
    free(trial);
    return 0;
}

static int cmp_candidate(const void* a, const void* b) {
    const SearchCandidate *x = a, *y = b;
    return (x->val_loss > y->val_loss) - (x->val_loss < y->val_loss);
}

int prune_search(const Model* m, const Importance* imp, const int* tokens, int64_t n, int seq_len,
                 const SearchOptions* o, const char* csv_path, SearchCandidate** out, int* n_out, Err* e) {
    const ModelConfig* c = &m->cfg;
    int L = c->n_layers, C = c->hidden, F = c->ffn, NH = c->n_heads, NKV = c->n_kv_heads;
    int min_l = (int)ceil(L * (1.0 - o->max_depth_cut)), min_c = (int)ceil(C * (1.0 - o->max_width_cut));
    int min_f = (int)ceil(F * (1.0 - o->max_width_cut)), min_h = (int)ceil(NH * (1.0 - o->max_width_cut));
    if (o->layer_step < 1 || o->hidden_step < 1 || o->ffn_step < 1) return err_set(e, "search steps must be positive");
    int cap = 64, count = 0;
    SearchCandidate* cand = xmalloc(sizeof(SearchCandidate) * (size_t)cap);
    int* keep = xmalloc(sizeof(int) * (size_t)L);
    for (int layers = L; layers >= min_l; layers -= o->layer_step)
        for (int hidden = C; hidden >= min_c; hidden -= o->hidden_step)
            for (int ffn = F; ffn >= min_f; ffn -= o->ffn_step)
                for (int heads = NH; heads >= min_h; heads -= NKV) {  // whole query heads per KV group
                    ModelConfig s = *c;
                    s.n_layers = layers, s.hidden = hidden, s.ffn = ffn, s.n_heads = heads;
                    long long params = config_param_count(&s);
                    if ((double)params > o->max_params) continue;
                    if (count == cap) cand = realloc(cand, sizeof(SearchCandidate) * (size_t)(cap *= 2));
                    cand[count++] = (SearchCandidate){layers, hidden, ffn, heads, params, NAN};
                }
    if (count == 0) {
        free(cand);
        free(keep);
        return err_set(e, "search: no shape within the bounds fits %.4g parameters (the smallest allowed cut keeps more)",
                       o->max_params);
    }
    int rc = 0;
    for (int i = 0; i < count && !rc; i++) {
        PruneTarget t = {DEPTH_BI, cand[i].layers, NULL, 0, cand[i].ffn, cand[i].heads, 0, cand[i].hidden};
        int n_keep;
        Model p;
        rc = prune_pick_layers(c, imp, &t, keep, &n_keep, e) || prune_model(m, imp, &t, keep, n_keep, &p, e);
        if (rc) break;
        cand[i].val_loss = prune_val_loss(&p, tokens, n, seq_len, e);
        model_free(&p);
        if (isnan(cand[i].val_loss)) rc = -1;
        else
            fprintf(stderr, "search %d/%d: layers %d hidden %d ffn %d heads %d (%.2f M): val loss %.4f\n", i + 1, count,
                    cand[i].layers, cand[i].hidden, cand[i].ffn, cand[i].heads, cand[i].params * 1e-6, cand[i].val_loss);
    }
    free(keep);
    if (rc) {
        free(cand);
        return -1;
    }
    qsort(cand, (size_t)count, sizeof *cand, cmp_candidate);
    ByteVec csv = {0};
    char line[256];
    int len = snprintf(line, sizeof line, "rank,layers,hidden,ffn,heads,params,val_loss\n");
    bytevec_append(&csv, line, (size_t)len);
    for (int i = 0; i < count; i++) {
        len = snprintf(line, sizeof line, "%d,%d,%d,%d,%d,%lld,%.6f\n", i + 1, cand[i].layers, cand[i].hidden, cand[i].ffn,
                       cand[i].heads, cand[i].params, cand[i].val_loss);
        bytevec_append(&csv, line, (size_t)len);
    }
    rc = file_write_atomic(csv_path, csv.data, csv.len, e);
    free(csv.data);
    *out = cand;
    *n_out = count;
    return rc;
}

int prune_block_by_score(const Model* m, const Importance* imp, int target, ModelScoreFn score, void* ctx,
                         const char* csv_path, int* keep, int* n_keep, Err* e) {
    int L = m->cfg.n_layers, n = L - target;
    if (target < 1 || target > L) return err_set(e, "--layers %d: the model has %d layers (keep 1..%d)", target, L, L);
    if (!imp) return err_set(e, "block scoring needs importance scores (--calib or --scores)");
    ByteVec csv = {0};
    char line[256];
    int len = snprintf(line, sizeof line, "start,end,angular_distance,score\n");
    bytevec_append(&csv, line, (size_t)len);
    int best = -1, rc = 0;
    double best_score = -INFINITY;
    int* trial = xmalloc(sizeof(int) * (size_t)L);
    PruneTarget none = {DEPTH_NONE, 0, NULL, 0, 0, 0, 0, 0};
    for (int s = 0; s + n <= L && !rc; s++) {
        int t = 0;
        for (int l = 0; l < L; l++)
            if (l < s || l >= s + n) trial[t++] = l;
        Model p;
        if ((rc = prune_model(m, NULL, &none, trial, t, &p, e))) break;
        double sc = score(&p, ctx, e);
        model_free(&p);
        if (isnan(sc)) {
            rc = -1;
            break;
        }
        double ang = imp->angular[(size_t)s * (L + 1) + s + n];
        len = snprintf(line, sizeof line, "%d,%d,%.6f,%.6f\n", s, s + n, ang, sc);
        bytevec_append(&csv, line, (size_t)len);
        fprintf(stderr, "block %d..%d: angular %.4f, score %.4f\n", s, s + n - 1, ang, sc);
        if (sc > best_score || (sc == best_score && ang < imp->angular[(size_t)best * (L + 1) + best + n])) best = s, best_score = sc;
    }
    free(trial);
    if (!rc) rc = file_write_atomic(csv_path, csv.data, csv.len, e);
    free(csv.data);
    if (rc) return -1;
    *n_keep = 0;
    for (int l = 0; l < L; l++)
        if (l < best || l >= best + n) keep[(*n_keep)++] = l;
    return 0;
}
