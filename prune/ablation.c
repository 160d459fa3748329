// ablation.c: see ablation.h.
#include "ablation.h"

#include <stdlib.h>
#include <string.h>

#include "../models/vec.h"

int ablation_init(Ablation* ab, int n_layers, const int* sizes, int n, Err* e) {
    memset(ab, 0, sizeof *ab);
    ab->n_layers = n_layers;
    ab->sizes[ab->n_sizes++] = 1;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 1 || sizes[i] >= n_layers)
            return err_set(e, "ablation block size %d must be in [1, %d] (the model has %d layers)", sizes[i], n_layers - 1, n_layers);
        int seen = 0;
        for (int k = 0; k < ab->n_sizes; k++) seen |= ab->sizes[k] == sizes[i];
        if (seen) continue;
        if (ab->n_sizes == ABLATION_MAX_SIZES) return err_set(e, "at most %d ablation block sizes", ABLATION_MAX_SIZES);
        ab->sizes[ab->n_sizes++] = sizes[i];
    }
    size_t total = ablation_offset(ab, ab->n_sizes);
    ab->hidden = xcalloc(total, sizeof(double));
    ab->logits = xcalloc(total, sizeof(double));
    return 0;
}

size_t ablation_offset(const Ablation* ab, int k) {
    size_t off = 0;
    for (int i = 0; i < k; i++) off += (size_t)ablation_count(ab, i);
    return off;
}

int ablation_count(const Ablation* ab, int k) { return ab->n_layers - ab->sizes[k] + 1; }

static double sum_sq_diff(const float* a, const float* b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)(b ? b[i] : 0.0f);
        s += d * d;
    }
    return s;
}

#define LOGIT_ROWS 32  // logits are made LOGIT_ROWS rows at a time: (LOGIT_ROWS, V) twice, never (N, V)

// Sum over rows of |x W^T - y W^T|^2 (W = lm_head (V, C)); with y NULL, of |x W^T|^2.
static double logits_sq_diff(const Model* m, const float* x, const float* y, int rows, float* lx, float* ly) {
    int C = m->cfg.hidden, V = m->cfg.vocab;
    double s = 0;
    for (int r0 = 0; r0 < rows; r0 += LOGIT_ROWS) {
        int nr = rows - r0 < LOGIT_ROWS ? rows - r0 : LOGIT_ROWS;
        m->ops->matmul_forward(lx, x + (size_t)r0 * C, m->w.lm_head, NULL, nr, C, V);
        if (y) m->ops->matmul_forward(ly, y + (size_t)r0 * C, m->w.lm_head, NULL, nr, C, V);
        s += sum_sq_diff(lx, y ? ly : NULL, (size_t)nr * V);
    }
    return s;
}

void ablation_batch(const Model* m, TrainActs* a, int rows, Ablation* ab) {
    int L = m->cfg.n_layers, C = m->cfg.hidden, V = m->cfg.vocab;
    size_t NC = (size_t)a->N * C;
    float* res = xmalloc(sizeof(float) * NC * (size_t)(L + 1));  // the full forward's boundaries
    float* y = xmalloc(sizeof(float) * NC);                        // ... and its final norm output
    float* lx = xmalloc(sizeof(float) * (size_t)LOGIT_ROWS * V * 2);
    memcpy(res, a->res, sizeof(float) * NC * (size_t)(L + 1));
    memcpy(y, a->xnf, sizeof(float) * NC);
    ab->hidden_ref += sum_sq_diff(y, NULL, (size_t)rows * C);
    ab->logits_ref += logits_sq_diff(m, y, NULL, rows, lx, lx + (size_t)LOGIT_ROWS * V);
    for (int k = 0; k < ab->n_sizes; k++) {
        int n = ab->sizes[k];
        size_t off = ablation_offset(ab, k);
        for (int s = 0; s + n <= L; s++) {
            train_forward_from(m, a, s + n, res + (size_t)s * NC);
            ab->hidden[off + s] += sum_sq_diff(a->xnf, y, (size_t)rows * C);
            ab->logits[off + s] += logits_sq_diff(m, a->xnf, y, rows, lx, lx + (size_t)LOGIT_ROWS * V);
        }
    }
    ab->sequences += rows / a->T;
    ab->tokens += rows;
    free(res), free(y), free(lx);
}

void ablation_finish(Ablation* ab) {
    size_t total = ablation_offset(ab, ab->n_sizes);
    for (size_t i = 0; i < total; i++) {
        ab->hidden[i] /= ab->hidden_ref > 0 ? ab->hidden_ref : 1;
        ab->logits[i] /= ab->logits_ref > 0 ? ab->logits_ref : 1;
    }
}

void ablation_free(Ablation* ab) {
    free(ab->hidden);
    free(ab->logits);
    memset(ab, 0, sizeof *ab);
}
