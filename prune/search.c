// search.c: see search.h.
#include "search.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../evals/perplexity.h"
#include "../evals/throughput.h"
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

static int cmp_final(const void* a, const void* b) {  // higher final score first; ties keep the pruned rank
    const SearchCandidate *x = a, *y = b;
    if (x->final_score != y->final_score) return x->final_score < y->final_score ? 1 : -1;
    return x->rank_pruned - y->rank_pruned;
}

double search_memory_mb(const ModelConfig* c, const SearchOptions* o) {
    double kv = 2.0 * c->n_layers * c->n_kv_heads * c->head_dim * (double)o->kv_batch * o->kv_context;
    return ((double)config_param_count(c) + kv) * o->bytes_per_value / 1e6;
}

int search_tps(const ModelConfig* c, const SearchOptions* o, double r[3], Err* e) {
    if (o->tps_spec) {  // the floor: bytes per step at the device's bandwidth, or FLOPs at its rate
        RooflineStep st;
        roofline_decode(c, o->kv_batch, o->kv_context, o->bytes_per_value, o->bytes_per_value, o->tps_spec, &st);
        r[0] = r[1] = r[2] = st.tokens_per_s;
        return 0;
    }
    if (c->max_positions > 0 && o->kv_context + 8 > c->max_positions)
        return err_set(e, "--tps: a context of %d tokens and 8 decoded is past the model's %d positions", o->kv_context, c->max_positions);
    // the speed of a shape does not depend on its values: random weights, no pruning needed; held as the
    // budget counts them (--precision bf16: 16-bit matrices on the CPU; the GPU engine runs bf16 anyway)
    Model m;
    model_create_as(&m, c, o->bytes_per_value == 2 && o->tps_backend == DEVICE_CPU ? WEIGHT_BF16 : WEIGHT_F32);
    model_init_random(&m, 1);
    Engine en;
    int rc = engine_open(&en, &m, o->tps_backend, e);
    if (!rc) {
        BenchOptions bo = {o->kv_batch, o->kv_context, 8, 3, 1, 0};
        BenchResult b;
        rc = bench_throughput_on(&en, &bo, &b, e);
        if (!rc) r[0] = b.decode_tokens_per_s, r[1] = b.decode_tps_min, r[2] = b.decode_tps_max;
        engine_close(&en);
    }
    model_free(&m);
    return rc;
}

// The pruned model of candidate x (depth by Block Influence, widths by the scores).
static int candidate_model(const Model* m, const Importance* imp, const SearchCandidate* x, Model* out, Err* e) {
    PruneTarget t = {DEPTH_BI, x->layers, NULL, 0, x->ffn, x->heads, 0, x->hidden};
    int* keep = xmalloc(sizeof(int) * (size_t)m->cfg.n_layers);
    int n_keep, rc = prune_pick_layers(&m->cfg, imp, &t, keep, &n_keep, e) || prune_model(m, imp, &t, keep, n_keep, out, e);
    free(keep);
    return rc ? -1 : 0;
}

// Distils and scores the first fin->k candidates (ranked by val_loss), then orders them by score.
static int run_finalists(const Model* m, const Importance* imp, const int* tokens, int64_t n, int seq_len,
                         const FinalistOptions* fin, SearchCandidate* cand, int count, Err* e) {
    int k = fin->k < count ? fin->k : count;
    for (int i = 0; i < k; i++) {
        Model p;
        if (candidate_model(m, imp, &cand[i], &p, e)) return -1;
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/finalist-%d.tmp", fin->out_dir, i + 1);  // renamed rank-R once ranked
        TrainConfig tc = *fin->train;
        tc.out_dir = dir;
        fprintf(stderr, "search: finalist %d/%d (layers %d hidden %d ffn %d heads %d): distilling %d steps\n", i + 1, k,
                cand[i].layers, cand[i].hidden, cand[i].ffn, cand[i].heads, tc.steps);
        int rc = make_dirs(dir, e) || train_run(&p, m, fin->data, &tc, NULL, e);
        if (!rc) {
            cand[i].final_score = fin->score ? fin->score(&p, fin->score_ctx, e) : -prune_val_loss(&p, tokens, n, seq_len, e);
            if (isnan(cand[i].final_score)) rc = -1;
        }
        model_free(&p);
        if (rc) return err_prefix(e, "search finalist %d", i + 1);
        fprintf(stderr, "search: finalist %d: %s after distillation %.4f (pruned rank %d)\n", i + 1,
                fin->score ? "score" : "validation loss", fin->score ? cand[i].final_score : -cand[i].final_score, cand[i].rank_pruned);
    }
    qsort(cand, (size_t)k, sizeof *cand, cmp_final);
    // each distilled finalist named by its final rank: rank-1 is the distilled winner
    for (int r = 0; r < k; r++) {
        char from[4200], to[4200];
        for (int i = 0; i < k; i++)  // the finalist that was distilled i-th: its rank before distillation
            if (cand[r].rank_pruned == i + 1) snprintf(from, sizeof from, "%s/finalist-%d.tmp", fin->out_dir, i + 1);
        snprintf(to, sizeof to, "%s/rank-%d", fin->out_dir, r + 1);
        if (remove_tree(to, e) || rename(from, to) != 0) return err_set(e, "%s: cannot rename into place", to);
    }
    fprintf(stderr, "search: the distilled winner (final rank 1) is %s/rank-1/model\n", fin->out_dir);
    return 0;
}

int prune_search(const Model* m, const Importance* imp, const int* tokens, int64_t n, int seq_len,
                 const SearchOptions* o, const FinalistOptions* fin, const char* csv_path, SearchCandidate** out,
                 int* n_out, Err* e) {
    const ModelConfig* c = &m->cfg;
    int L = c->n_layers, C = c->hidden, F = c->ffn, NH = c->n_heads, NKV = c->n_kv_heads;
    int min_l = (int)ceil(L * (1.0 - o->max_depth_cut)), min_c = (int)ceil(C * (1.0 - o->max_width_cut));
    int min_f = (int)ceil(F * (1.0 - o->max_width_cut)), min_h = (int)ceil(NH * (1.0 - o->max_width_cut));
    if (o->layer_step < 1 || o->hidden_step < 1 || o->ffn_step < 1) return err_set(e, "search steps must be positive");
    if (o->max_params <= 0 && o->max_memory_mb <= 0 && o->min_tps <= 0)
        return err_set(e, "search needs a budget (parameters, memory or tokens/s)");
    int cap = 64, count = 0;
    SearchCandidate* cand = xmalloc(sizeof(SearchCandidate) * (size_t)cap);
    for (int layers = L; layers >= min_l; layers -= o->layer_step)
        for (int hidden = C; hidden >= min_c; hidden -= o->hidden_step)
            for (int ffn = F; ffn >= min_f; ffn -= o->ffn_step)
                for (int heads = NH; heads >= min_h; heads -= NKV) {  // whole query heads per KV group
                    ModelConfig s = *c;
                    s.n_layers = layers, s.hidden = hidden, s.ffn = ffn, s.n_heads = heads;
                    long long params = config_param_count(&s);
                    double mb = search_memory_mb(&s, o);
                    if ((o->max_params > 0 && (double)params > o->max_params) || (o->max_memory_mb > 0 && mb > o->max_memory_mb))
                        continue;
                    double tps[3] = {NAN, NAN, NAN};
                    if (o->min_tps > 0) {  // after the cheap budgets: a measurement costs a bench
                        if (search_tps(&s, o, tps, e)) return free(cand), err_prefix(e, "search");
                        fprintf(stderr, "search: layers %d hidden %d ffn %d heads %d: %.1f tokens/s%s\n", layers, hidden, ffn, heads,
                                tps[0], tps[0] < o->min_tps ? " (below the budget)" : "");
                        if (tps[0] < o->min_tps) continue;
                    }
                    if (count == cap) cand = xrealloc(cand, sizeof(SearchCandidate) * (size_t)(cap *= 2));
                    cand[count++] = (SearchCandidate){layers, hidden, ffn, heads, params, mb, tps[0], tps[1], tps[2], NAN, 0, NAN};
                }
    if (count == 0) {
        free(cand);
        char budgets[256] = "";  // the budgets that were set, and only those
        int len = 0;
        if (o->max_params > 0) len += snprintf(budgets + len, sizeof budgets - (size_t)len, "%.4g parameters", o->max_params);
        if (o->max_memory_mb > 0)
            len += snprintf(budgets + len, sizeof budgets - (size_t)len, "%s%.4g MB at %d x %d", len ? ", " : "", o->max_memory_mb,
                            o->kv_batch, o->kv_context);
        if (o->min_tps > 0)
            snprintf(budgets + len, sizeof budgets - (size_t)len, "%sat least %.4g tokens/s at %d x %d", len ? ", " : "", o->min_tps,
                     o->kv_batch, o->kv_context);
        return err_set(e, "search: no shape within the bounds fits the budget (%s; the smallest allowed cut keeps more)", budgets);
    }
    int rc = 0;
    for (int i = 0; i < count && !rc; i++) {
        Model p;
        if ((rc = candidate_model(m, imp, &cand[i], &p, e))) break;
        cand[i].val_loss = prune_val_loss(&p, tokens, n, seq_len, e);
        model_free(&p);
        if (isnan(cand[i].val_loss)) rc = -1;
        else
            fprintf(stderr, "search %d/%d: layers %d hidden %d ffn %d heads %d (%.2f M, %.1f MB): val loss %.4f\n", i + 1, count,
                    cand[i].layers, cand[i].hidden, cand[i].ffn, cand[i].heads, cand[i].params * 1e-6, cand[i].memory_mb,
                    cand[i].val_loss);
    }
    if (!rc) {
        qsort(cand, (size_t)count, sizeof *cand, cmp_candidate);
        for (int i = 0; i < count; i++) cand[i].rank_pruned = i + 1;
    }
    if (!rc && fin && fin->k > 0) rc = run_finalists(m, imp, tokens, n, seq_len, fin, cand, count, e);
    if (rc) {
        free(cand);
        return -1;
    }
    ByteVec csv = {0};
    char line[320];
    int by_score = fin && fin->score;  // the finalists' column says what it holds
    int len = snprintf(line, sizeof line, "rank,layers,hidden,ffn,heads,params,memory_mb,tps,tps_min,tps_max,val_loss,rank_pruned,%s\n",
                       by_score ? "final_mmlu_val" : "final_val_loss");
    bytevec_append(&csv, line, (size_t)len);
    for (int i = 0; i < count; i++) {
        len = snprintf(line, sizeof line, "%d,%d,%d,%d,%d,%lld,%.3f,%.3f,%.3f,%.3f,%.6f,%d,%.6f\n", i + 1, cand[i].layers,
                       cand[i].hidden, cand[i].ffn, cand[i].heads, cand[i].params, cand[i].memory_mb, cand[i].tps, cand[i].tps_min,
                       cand[i].tps_max, cand[i].val_loss, cand[i].rank_pruned,
                       by_score || isnan(cand[i].final_score) ? cand[i].final_score : -cand[i].final_score);
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
