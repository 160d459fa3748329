// test_ops_backward.c: every backward op of the CPU backend against central finite differences of
// L = sum(r * op(inputs)) for a random r, over every input and weight element of small cases.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"

static uint64_t rng = 0x1234567ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static float* rnd(size_t n) {
    float* x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = frand();
    return x;
}

typedef double (*LossFn)(void* ctx);

// Compares analytic gradient g (n) of the loss with respect to buffer x (n) against central differences.
static void check_fd(const char* what, LossFn loss, void* ctx, float* x, const float* g, size_t n) {
    double gmax = 1e-12;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
    for (size_t i = 0; i < n; i++) {
        float keep = x[i], h = 1e-2f;
        x[i] = keep + h;
        double up = loss(ctx);
        x[i] = keep - h;
        double down = loss(ctx);
        x[i] = keep;
        double fd = (up - down) / (2.0 * h);
        cr_expect(fabs(fd - g[i]) <= 2e-3 * gmax, "%s[%zu]: analytic %.6f, finite difference %.6f", what, i, g[i], fd);
    }
}

static double dot(const float* a, const float* r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * r[i];
    return s;
}

// ---- matmul
typedef struct { float *x, *w, *b, *out, *r; int N, C, OC; } MatmulCase;
static double matmul_loss(void* p) {
    MatmulCase* c = p;
    kernels_cpu()->matmul_forward(c->out, c->x, c->w, c->b, c->N, c->C, c->OC);
    return dot(c->out, c->r, (size_t)c->N * c->OC);
}
Test(ops_backward, matmul) {
    int Ns[] = {1, 5, 20};  // the sgemv, few-rows and sgemm forward paths
    for (int k = 0; k < 3; k++) {
        MatmulCase c = {.N = Ns[k], .C = 7, .OC = 6};
        c.x = rnd((size_t)c.N * c.C), c.w = rnd((size_t)c.OC * c.C), c.b = rnd(c.OC), c.out = rnd((size_t)c.N * c.OC);
        c.r = rnd((size_t)c.N * c.OC);
        float *dx = calloc((size_t)c.N * c.C, 4), *dw = calloc((size_t)c.OC * c.C, 4), *db = calloc(c.OC, 4);
        kernels_cpu()->matmul_backward(dx, dw, db, c.r, c.x, c.w, c.N, c.C, c.OC);
        check_fd("matmul dx", matmul_loss, &c, c.x, dx, (size_t)c.N * c.C);
        check_fd("matmul dw", matmul_loss, &c, c.w, dw, (size_t)c.OC * c.C);
        check_fd("matmul db", matmul_loss, &c, c.b, db, c.OC);
        free(c.x), free(c.w), free(c.b), free(c.out), free(c.r), free(dx), free(dw), free(db);
    }
}

// ---- rmsnorm
typedef struct { float *x, *w, *out, *r; int N, C; } NormCase;
static double norm_loss(void* p) {
    NormCase* c = p;
    kernels_cpu()->rmsnorm_forward(c->out, c->x, c->w, 1e-6f, c->N, c->C);
    return dot(c->out, c->r, (size_t)c->N * c->C);
}
Test(ops_backward, rmsnorm) {
    NormCase c = {.N = 4, .C = 9};
    c.x = rnd(36), c.w = rnd(9), c.out = rnd(36), c.r = rnd(36);
    float *dx = calloc(36, 4), *dw = calloc(9, 4);
    kernels_cpu()->rmsnorm_backward(dx, dw, c.r, c.x, c.w, 1e-6f, c.N, c.C);
    check_fd("rmsnorm dx", norm_loss, &c, c.x, dx, 36);
    check_fd("rmsnorm dw", norm_loss, &c, c.w, dw, 9);
    free(c.x), free(c.w), free(c.out), free(c.r), free(dx), free(dw);
}

// ---- rope
typedef struct { float *x, *tmp, *r; int N, H, HS; int* pos; float* inv; } RopeCase;
static double rope_loss(void* p) {
    RopeCase* c = p;
    size_t n = (size_t)c->N * c->H * c->HS;
    memcpy(c->tmp, c->x, n * 4);
    kernels_cpu()->rope_forward(c->tmp, c->pos, c->inv, c->N, c->H, c->HS);
    return dot(c->tmp, c->r, n);
}
Test(ops_backward, rope) {
    int pos[3] = {0, 3, 11};
    float inv[4] = {1.0f, 0.3f, 0.1f, 0.01f};
    RopeCase c = {.N = 3, .H = 2, .HS = 8, .pos = pos, .inv = inv};
    c.x = rnd(48), c.tmp = rnd(48), c.r = rnd(48);
    float* g = malloc(48 * 4);
    memcpy(g, c.r, 48 * 4);
    kernels_cpu()->rope_backward(g, pos, inv, c.N, c.H, c.HS);
    check_fd("rope dx", rope_loss, &c, c.x, g, 48);
    free(c.x), free(c.tmp), free(c.r), free(g);
}

// ---- swiglu
typedef struct { float *gate, *up, *tmp, *r; int N, F; } SwigluCase;
static double swiglu_loss(void* p) {
    SwigluCase* c = p;
    size_t n = (size_t)c->N * c->F;
    memcpy(c->tmp, c->gate, n * 4);
    kernels_cpu()->swiglu_forward(c->tmp, c->up, c->N, c->F);
    return dot(c->tmp, c->r, n);
}
Test(ops_backward, swiglu) {
    SwigluCase c = {.N = 3, .F = 7};
    c.gate = rnd(21), c.up = rnd(21), c.tmp = rnd(21), c.r = rnd(21);
    for (int i = 0; i < 21; i++) c.gate[i] *= 3.0f;  // both sides of SiLU's bend
    float *dg = malloc(21 * 4), *du = malloc(21 * 4);
    kernels_cpu()->swiglu_backward(dg, du, c.r, c.gate, c.up, c.N, c.F);
    check_fd("swiglu dgate", swiglu_loss, &c, c.gate, dg, 21);
    check_fd("swiglu dup", swiglu_loss, &c, c.up, du, 21);
    free(c.gate), free(c.up), free(c.tmp), free(c.r), free(dg), free(du);
}

// ---- attention (training layout: B sequences of T rows)
typedef struct { float *q, *k, *v, *out, *r, *scratch; int B, T, NH, NKV, HS; int *seq, *pos; } AttCase;
static double att_loss(void* p) {
    AttCase* c = p;
    int N = c->B * c->T;
    kernels_cpu()->attention_forward(c->out, c->q, c->k, c->v, c->seq, c->pos, N, c->NH, c->NKV, c->HS, c->T, 0, 0,
                                     c->scratch);
    return dot(c->out, c->r, (size_t)N * c->NH * c->HS);
}
Test(ops_backward, attention) {
    int T_values[] = {5, 12, 40};  // the forward's per-row and block paths; 40: two backward query blocks (32 + 8)
    for (int k = 0; k < 3; k++) {
        AttCase c = {.B = 2, .T = T_values[k], .NH = 4, .NKV = 2, .HS = 4};
        int N = c.B * c.T;
        c.seq = malloc(sizeof(int) * N * 2);
        c.pos = c.seq + N;
        for (int n = 0; n < N; n++) c.seq[n] = n / c.T, c.pos[n] = n % c.T;
        size_t nq = (size_t)N * c.NH * c.HS, nk = (size_t)N * c.NKV * c.HS;
        c.q = rnd(nq), c.k = rnd(nk), c.v = rnd(nk), c.out = rnd(nq), c.r = rnd(nq);
        c.scratch = malloc(sizeof(float) * (size_t)kernels_cpu_threads() * ATTENTION_BLOCK_ROWS * c.T * 2);
        float *dq = malloc(nq * 4), *dk = malloc(nk * 4), *dv = malloc(nk * 4);
        kernels_cpu()->attention_backward(dq, dk, dv, c.r, c.q, c.k, c.v, c.B, c.T, c.NH, c.NKV, c.HS, c.scratch);
        check_fd("attention dq", att_loss, &c, c.q, dq, nq);
        check_fd("attention dk", att_loss, &c, c.k, dk, nk);
        check_fd("attention dv", att_loss, &c, c.v, dv, nk);
        free(c.q), free(c.k), free(c.v), free(c.out), free(c.r), free(c.scratch), free(c.seq), free(dq), free(dk), free(dv);
    }
}

Test(ops_backward, embedding_scatter_adds_in_order) {
    int tokens[4] = {2, 0, 2, 1};
    float dout[8] = {1, 2, 3, 4, 5, 6, 7, 8}, dwte[6] = {0.5f, 0, 0, 0, 0, 0};
    kernels_cpu()->embedding_backward(dwte, dout, tokens, 4, 2);
    float want[6] = {0.5f + 3, 4, 7, 8, 1 + 5, 2 + 6};
    for (int i = 0; i < 6; i++) cr_expect_float_eq(dwte[i], want[i], 1e-6f, "dwte[%d]", i);
}
