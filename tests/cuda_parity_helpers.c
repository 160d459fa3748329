// cuda_parity_helpers.c: see cuda_parity_helpers.h.
#include "cuda_parity_helpers.h"

#ifdef ARBOR_HAVE_CUDA
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dtype.h"
#include "kernels/hash.h"

CudaContext* ctx_or_skip(void) {
    char why[256] = "";
    if (cuda_device_count(why, sizeof why) == 0) cr_skip_test("no CUDA device: %s", why);
    return cuda_context_create(0);
}

double nmse(const float* out, const float* ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(out[i])) return INFINITY;
        double d = (double)out[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

void fill_uniform(float* a, size_t n, uint64_t seed, float lo, float hi) {
    for (size_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(seed * 0x100000001b3ull + i) >> 11) / 9007199254740992.0;
        a[i] = bf16_round(lo + (float)u * (hi - lo));
    }
}

float* host_random(size_t n, uint64_t seed, float lo, float hi) {
    float* a = malloc(sizeof(float) * n);
    fill_uniform(a, n, seed, lo, hi);
    return a;
}

void* guarded_alloc(CudaContext* ctx, Guarded* g, size_t bytes) {
    g->bytes = bytes;
    g->base = cuda_malloc(bytes + 2 * GUARD);
    cuda_memset(ctx, g->base, 0xFF, bytes + 2 * GUARD);
    return g->base + GUARD;
}


int guards_intact(CudaContext* ctx, const Guarded* g) {
    unsigned char head[GUARD], tail[GUARD];
    cuda_download(ctx, head, g->base, GUARD);
    cuda_download(ctx, tail, g->base + GUARD + g->bytes, GUARD);
    for (int i = 0; i < GUARD; i++)
        if (head[i] != 0xFF || tail[i] != 0xFF) return 0;
    return 1;
}

void guarded_free(Guarded* g) { cuda_free(g->base); }

bf16* upload_bf16(CudaContext* ctx, const float* host, size_t n) {
    bf16* d = cuda_malloc(sizeof(bf16) * n);
    cuda_upload_f32_as_bf16(ctx, d, host, n);
    return d;
}

int* upload_ints(CudaContext* ctx, const int* host, int n) {
    int* d = cuda_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (n > 0) cuda_upload(ctx, d, host, sizeof(int) * (size_t)n);
    return d;
}

float* upload_f32(CudaContext* ctx, const float* host, size_t n) {
    float* d = cuda_malloc(sizeof(float) * (n ? n : 1));
    if (n) cuda_upload(ctx, d, host, sizeof(float) * n);
    return d;
}

void round_arena_to_bf16(Model* m) {
    for (size_t i = 0; i < m->table.n_floats; i++) m->arena[i] = bf16_round(m->arena[i]);
}

#endif

#ifdef ARBOR_HAVE_CUDA
#include "helpers.h"

const char* const hf_fixture_names[N_HF_FIXTURES] = {"qwen3_gqa_headdim_tied_bf16", "qwen3_odd_untied_bias_f32_sharded",
                                                     "qwen2_bias_untied_f16", "llama_tied_hubdialect_f32"};

void load_fixture_model(Model* m, const char* name) {
    char dir[1024];
    fixture_dir(dir, sizeof dir, name);
    load_model_at(m, dir, NULL);
}

ModelConfig tiny_config(void) {
    ModelConfig cfg;
    Err e;
    cr_assert_eq(config_preset("tiny", &cfg, &e), 0, "%s", e.msg);
    return cfg;
}

void tiny_random_model(Model* m, uint64_t seed) {
    ModelConfig cfg = tiny_config();
    model_create(m, &cfg);
    model_init_random(m, seed);
}
#endif
