// calib_gpu.c: see calib_gpu.h.
#include "calib_gpu.h"

#include <stdlib.h>

#ifndef ARBOR_HAVE_CUDA
int calib_gpu_open(CalibGpu** out, const Model* m, int B, int T, Err* e) {
    (void)m, (void)B, (void)T;
    *out = NULL;
    return err_set(e, "--device cuda: this arbor was built without CUDA (configure with -DARBOR_CUDA=ON)");
}
void calib_gpu_close(CalibGpu* g) { (void)g; }
int calib_gpu_batch(CalibGpu* g, const int* tokens, int nb, double* cos, double* mlp, double* heads, double* channels,
                    Err* e) {
    (void)g, (void)tokens, (void)nb, (void)cos, (void)mlp, (void)heads, (void)channels;
    return err_set(e, "no CUDA");
}
#else
#include "../kernels/cuda/cuda_stats.h"
#include "../models/cuda_train.h"
#include "../models/engine.h"

struct CalibGpu {
    CudaContext* ctx;
    CudaModel model;
    CudaTrainActs acts;
    double *cos, *mlp, *heads, *channels;  // device, sized for B sequences
    int B, T;
};

int calib_gpu_open(CalibGpu** out, const Model* m, int B, int T, Err* e) {
    *out = NULL;
    if (device_available(DEVICE_CUDA, e)) return -1;
    const ModelConfig* c = &m->cfg;
    CalibGpu* g = xcalloc(1, sizeof(CalibGpu));
    g->ctx = cuda_context_create(0);
    g->B = B, g->T = T;
    cuda_model_create(&g->model, g->ctx, c);
    cuda_model_upload(&g->model, m);
    cuda_train_acts_create(&g->acts, g->ctx, c, B, T, 0);
    size_t P = (size_t)c->n_layers + 1, N = (size_t)B * T;
    g->cos = cuda_malloc(sizeof(double) * N * P * P);
    g->mlp = cuda_malloc(sizeof(double) * (size_t)B * c->n_layers * c->ffn);
    g->heads = cuda_malloc(sizeof(double) * (size_t)B * c->n_layers * c->n_heads);
    g->channels = cuda_malloc(sizeof(double) * (size_t)B * c->hidden);
    *out = g;
    return 0;
}

void calib_gpu_close(CalibGpu* g) {
    if (!g) return;
    cuda_free(g->cos), cuda_free(g->mlp), cuda_free(g->heads), cuda_free(g->channels);
    cuda_train_acts_free(&g->acts);
    cuda_model_free(&g->model);
    cuda_context_free(g->ctx);
    free(g);
}

int calib_gpu_batch(CalibGpu* g, const int* tokens, int nb, double* cos, double* mlp, double* heads, double* channels,
                    Err* e) {
    const ModelConfig* c = &g->model.cfg;
    int L = c->n_layers, C = c->hidden, F = c->ffn, NH = c->n_heads, HS = c->head_dim, T = g->T, N = g->B * T;
    size_t P = (size_t)L + 1, rows = (size_t)nb * T;
    if (cuda_train_forward(&g->model, &g->acts, tokens, e)) return -1;
    CudaTrainActs* a = &g->acts;
    cuda_boundary_cosines(g->ctx, g->cos, a->res, (int)P, N, (int)rows, C);
    cuda_mean_abs(g->ctx, g->mlp, a->h, L, N, T, nb, F);
    cuda_mean_head_norms(g->ctx, g->heads, a->att, L, N, T, nb, NH, HS);
    cuda_channel_site_means(g->ctx, g->channels, a->xn1, a->xn2, a->xnf, L, N, T, nb, C);
    cuda_download(g->ctx, cos, g->cos, sizeof(double) * rows * P * P);
    cuda_download(g->ctx, mlp, g->mlp, sizeof(double) * (size_t)nb * L * F);
    cuda_download(g->ctx, heads, g->heads, sizeof(double) * (size_t)nb * L * NH);
    cuda_download(g->ctx, channels, g->channels, sizeof(double) * (size_t)nb * C);
    return 0;
}
#endif
