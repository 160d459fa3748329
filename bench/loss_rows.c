// loss_rows.c: the loss's work beyond its matmuls: softmax, cross-entropy and KL over a 151,936-token
// vocabulary (Qwen3's) for 64 rows, with a teacher, as lm_head_loss runs it; a narrow hidden size keeps
// the lm_head matmuls small, and their measured time is subtracted. Median of 7 runs, ms per row.
// Usage: bench_loss_rows [kl|rkl|ce|topk:K]
#include <stdio.h>
#include <stdlib.h>

#include "harness/cpu_policy.h"
#include "distill/loss.h"
#include "kernels/check.h"
#include "kernels/clock.h"

static int cmp(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

int main(int argc, char** argv) {
    cpu_policy_apply(argc, argv);  // OpenBLAS kernels for this CPU (and the wait policy), as arbor runs
    int N = 64, C = 16, V = 151936;
    LossConfig cfg;
    Err e;
    if (loss_parse(argc > 1 ? argv[1] : "mix:1,kl", 1, &cfg, &e)) return fprintf(stderr, "%s\n", e.msg), 2;
    cfg.temperature = 1.0f;
    float *x = xmalloc(sizeof(float) * N * C), *w = xmalloc(sizeof(float) * (size_t)V * C), *tw = xmalloc(sizeof(float) * (size_t)V * C);
    float *dx = xmalloc(sizeof(float) * N * C), *dw = xcalloc((size_t)V * C, sizeof(float));
    int* targets = xmalloc(sizeof(int) * N);
    for (int i = 0; i < N * C; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    for (size_t i = 0; i < (size_t)V * C; i++) w[i] = (float)((i * 2654435761u) % 1000) / 250.0f - 2.0f, tw[i] = w[i] * 0.9f;
    for (int i = 0; i < N; i++) targets[i] = (i * 7919) % V;
    double t[7];
    for (int r = 0; r < 7; r++) {
        LossValues lv;
        double t0 = now_seconds();
        if (lm_head_loss(&cfg, x, w, N, C, V, targets, x, tw, C, 1.0f, dx, dw, &lv, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        t[r] = (now_seconds() - t0 - lv.matmul_seconds) / N * 1e3;
    }
    qsort(t, 7, sizeof(double), cmp);
    printf("loss %s: %.3f ms per row beyond the matmuls (median of 7; range %.3f-%.3f)\n", argc > 1 ? argv[1] : "mix:1,kl", t[3], t[0], t[6]);
    return 0;
}
