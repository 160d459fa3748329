// optim.c: see optim.h.
#include "optim.h"

#include <math.h>
#include <stdlib.h>

float lr_at(const OptimConfig* o, int s) {
    if (s < o->warmup) return o->lr * (float)(s + 1) / (float)o->warmup;
    int span = o->total_steps - o->warmup;
    double progress = span > 0 ? (double)(s - o->warmup) / span : 1.0;
    if (progress > 1.0) progress = 1.0;
    double lr = o->cosine ? o->min_lr + 0.5 * (o->lr - o->min_lr) * (1.0 + cos(M_PI * progress))
                          : o->lr - (o->lr - o->min_lr) * progress;
    return (float)lr;
}

void grad_norm_blocks(const float* g, size_t n, size_t b0, size_t b1, double* partial) {
#pragma omp parallel for if (b1 - b0 > 1)
    for (size_t b = b0; b < b1; b++) {
        double acc = 0;
        size_t end = (b + 1) * GRAD_NORM_BLOCK < n ? (b + 1) * GRAD_NORM_BLOCK : n;
        for (size_t i = b * GRAD_NORM_BLOCK; i < end; i++) acc += (double)g[i] * g[i];
        partial[b] = acc;
    }
}

double grad_norm(const float* g, size_t n) {
    // fixed blocks, summed in order: the same result for any thread count
    size_t blocks = (n + GRAD_NORM_BLOCK - 1) / GRAD_NORM_BLOCK;
    double total = 0;
    double* partial = xmalloc(sizeof(double) * (blocks ? blocks : 1));
    grad_norm_blocks(g, n, 0, blocks, partial);
    for (size_t b = 0; b < blocks; b++) total += partial[b];
    free(partial);
    return sqrt(total);
}


void adamw_step(const OptimConfig* o, const ParamTable* table, float* params, const float* grads, float* m, float* v,
                int t, float lr) {
    adamw_step_range(o, table, params, grads, m, v, t, lr, 0, table->n_floats);
}

void adamw_step_range(const OptimConfig* o, const ParamTable* table, float* params, const float* grads, float* m, float* v,
                      int t, float lr, size_t lo, size_t hi) {
    float bc1 = (float)(1.0 - pow(o->beta1, t)), bc2_sqrt = (float)sqrt(1.0 - pow(o->beta2, t));
    float step_size = lr / bc1;
    for (int k = 0; k < table->n_params; k++) {
        const ParamInfo* pi = &table->params[k];
        size_t a = pi->offset > lo ? pi->offset : lo, b = pi->offset + pi->numel < hi ? pi->offset + pi->numel : hi;
        if (a >= b) continue;  // not in this slice
        float decay = param_takes_decay(pi) ? 1.0f - lr * o->weight_decay : 1.0f;
        long long n = (long long)(b - a);
        float *p = params + a, *mk = m + (a - lo), *vk = v + (a - lo);
        const float* g = grads + a;
#pragma omp parallel for simd if (n > 65536)
        for (long long i = 0; i < n; i++) {
            mk[i] = o->beta1 * mk[i] + (1.0f - o->beta1) * g[i];
            vk[i] = o->beta2 * vk[i] + (1.0f - o->beta2) * g[i] * g[i];
            p[i] *= decay;
            p[i] -= step_size * mk[i] / (sqrtf(vk[i]) / bc2_sqrt + o->eps);
        }
    }
}
