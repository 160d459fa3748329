// block_library.c: see block_library.h.
#include "block_library.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../models/progress.h"
#include "../models/train.h"

#define LOGIT_ROWS 32  // logits made LOGIT_ROWS rows at a time

// log-softmax of a row of V logits into out
static void log_softmax_row(const float* z, int V, double* out) {
    double m = -INFINITY, sum = 0;
    for (int v = 0; v < V; v++) m = z[v] > m ? z[v] : m;
    for (int v = 0; v < V; v++) sum += exp(z[v] - m);
    double lse = m + log(sum);
    for (int v = 0; v < V; v++) out[v] = z[v] - lse;
}

// The batch's damage sum over its first `rows` rows (predicting the next token within each window):
// teacher final-norm output y against the variant's x
static double damage_sum(const Model* m, const float* x, const float* y, const int* tokens, int T, int rows, BlockDamage metric,
                         float* lx, float* ly, double* px, double* py) {
    int C = m->cfg.hidden, V = m->cfg.vocab;
    double s = 0;
    for (int r0 = 0; r0 < rows; r0 += LOGIT_ROWS) {
        int nr = rows - r0 < LOGIT_ROWS ? rows - r0 : LOGIT_ROWS;
        m->ops->matmul_forward(lx, x + (size_t)r0 * C, m->w.lm_head, NULL, nr, C, V);
        m->ops->matmul_forward(ly, y + (size_t)r0 * C, m->w.lm_head, NULL, nr, C, V);
        for (int r = 0; r < nr; r++) {
            int row = r0 + r;
            if (row % T == T - 1) continue;  // the window's last position has no next token here
            log_softmax_row(lx + (size_t)r * V, V, px);
            log_softmax_row(ly + (size_t)r * V, V, py);
            if (metric == BLOCK_DAMAGE_KL) {
                for (int v = 0; v < V; v++) s += exp(py[v]) * (py[v] - px[v]);
            } else {
                int next = tokens[row + 1];
                s += -px[next] + py[next];
            }
        }
    }
    return s;
}

int block_library_score(const Model* teacher, const Shard* calib, const Importance* imp, const BlockLibraryOptions* o,
                        BlockVariant** out, int* n_out, Err* e) {
    const ModelConfig* c = &teacher->cfg;
    int L = c->n_layers, C = c->hidden, F = c->ffn, V = c->vocab, T = o->seq_len, B = o->batch;
    if (o->n_widths < 1 || o->n_widths > BLOCK_MAX_WIDTHS) return err_set(e, "block library: 1 to %d FFN widths", BLOCK_MAX_WIDTHS);
    if (T < 2 || B < 1 || o->windows < 1) return err_set(e, "block library: windows, batch and a sequence length of 2 or more");
    if (imp->n_layers != L || imp->ffn != F) return err_set(e, "block library: the importance scores are of another shape");
    uint64_t have = calib->n_tokens / (uint64_t)T;
    int windows = (uint64_t)o->windows < have ? o->windows : (int)have;
    if (windows < 1) return err_set(e, "block library: the calibration shard holds no window of %d tokens", T);
    // the variants: per layer, the teacher's own block, then every (width, attention) of the grid
    int widths[BLOCK_MAX_WIDTHS], n_w = 0;
    for (int k = 0; k < o->n_widths; k++) {
        if (!(o->widths[k] >= 0 && o->widths[k] <= 1)) return err_set(e, "block library: FFN width share %g is outside [0, 1]", o->widths[k]);
        int w = (int)lround(o->widths[k] * F), dup = 0;
        for (int j = 0; j < n_w; j++) dup |= widths[j] == w;
        if (!dup) widths[n_w++] = w;
    }
    int per = 0;
    BlockVariant* proto = xmalloc(sizeof(BlockVariant) * (size_t)(2 * n_w + 1));
    proto[per++] = (BlockVariant){0, F, 1, 0, 0, 0, 0};
    for (int a = 1; a >= (o->attention_variants ? 0 : 1); a--)
        for (int k = 0; k < n_w; k++)
            if (!(a == 1 && widths[k] == F)) proto[per++] = (BlockVariant){0, widths[k], a, 0, 0, 0, 0};
    int n = L * per;
    BlockVariant* v = xmalloc(sizeof(BlockVariant) * (size_t)n);
    for (int l = 0; l < L; l++)
        for (int k = 0; k < per; k++) v[l * per + k] = proto[k], v[l * per + k].layer = l;
    free(proto);
    // a working copy whose blocks are masked one at a time and restored from the teacher
    Model w;
    model_create(&w, c);
    memcpy(w.arena, teacher->arena, sizeof(float) * teacher->table.n_floats);
    TrainActs a;
    train_acts_create(&a, c, B, T, 0);
    size_t N = (size_t)B * T, NC = N * C;
    float* res = xmalloc(sizeof(float) * NC * (size_t)(L + 1));
    float* y = xmalloc(sizeof(float) * NC);
    float* lx = xmalloc(sizeof(float) * (size_t)LOGIT_ROWS * V * 2);
    double* p = xmalloc(sizeof(double) * (size_t)V * 2);
    int* order = xmalloc(sizeof(int) * (size_t)L * F);
    for (int l = 0; l < L; l++) importance_mlp_order(imp, l, order + (size_t)l * F);
    int* tokens = xmalloc(sizeof(int) * N);
    double* sums = xcalloc((size_t)n, sizeof(double));
    long long counted = 0;
    int rc = 0;
    Progress prog;
    progress_begin(&prog, "block library", "windows", 1.0, (double)windows, 1);
    for (int w0 = 0; w0 < windows && !rc; w0 += B) {
        int nb = windows - w0 < B ? windows - w0 : B, rows = nb * T;
        for (int b = 0; b < B; b++)  // a short last batch repeats its first window; only nb count
            for (int t = 0; t < T; t++) tokens[b * T + t] = shard_token(calib, (uint64_t)(w0 + (b < nb ? b : 0)) * T + t);
        if ((rc = train_forward(&w, &a, tokens, e))) break;
        memcpy(res, a.res, sizeof(float) * NC * (size_t)(L + 1));
        memcpy(y, a.xnf, sizeof(float) * NC);
        counted += (long long)nb * (T - 1);
        for (int l = 0; l < L; l++) {
            // the variant masked into the working copy, then restored from the teacher (its unchanged twin)
            LayerWeights* lw = &w.w.layers[l];
            const LayerWeights* tw = &teacher->w.layers[l];
            const int* dropped = order + (size_t)l * F;  // the lowest-ranked first from the end
            size_t Q = (size_t)c->n_heads * c->head_dim, row = sizeof(float) * C;
            for (int k = 1; k < per; k++) {  // k = 0: the teacher's own block, damage 0
                BlockVariant* x = &v[l * per + k];
                int removed = F - x->ffn;
                for (int r = 0; r < removed; r++) {  // the lowest-ranked neurons' gate and up rows to zero
                    int i = dropped[F - 1 - r];
                    memset(lw->w_gate + (size_t)i * C, 0, row);
                    memset(lw->w_up + (size_t)i * C, 0, row);
                }
                if (!x->attention) {
                    memset(lw->wo, 0, sizeof(float) * C * Q);
                    if (lw->bo) memset(lw->bo, 0, sizeof(float) * C);
                }
                train_forward_from(&w, &a, l, res + (size_t)l * NC);
                sums[l * per + k] += damage_sum(&w, a.xnf, y, tokens, T, rows, o->metric, lx, lx + (size_t)LOGIT_ROWS * V, p, p + V);
                for (int r = 0; r < removed; r++) {
                    int i = dropped[F - 1 - r];
                    memcpy(lw->w_gate + (size_t)i * C, tw->w_gate + (size_t)i * C, row);
                    memcpy(lw->w_up + (size_t)i * C, tw->w_up + (size_t)i * C, row);
                }
                if (!x->attention) {
                    memcpy(lw->wo, tw->wo, sizeof(float) * C * Q);
                    if (lw->bo) memcpy(lw->bo, tw->bo, sizeof(float) * C);
                }
            }
        }
        progress_update(&prog, (double)(w0 + nb));
    }
    progress_end(&prog);
    for (int j = 0; j < n; j++) v[j].damage = counted > 0 ? sums[j] / (double)counted : 0;
    free(sums), free(tokens), free(order), free(p), free(lx), free(y), free(res);
    train_acts_free(&a);
    model_free(&w);
    if (rc) {
        free(v);
        return -1;
    }
    *out = v;
    *n_out = n;
    return 0;
}
