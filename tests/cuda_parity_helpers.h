// cuda_parity_helpers.h: what the CUDA parity suites share: a context or a skip, normalized MSE,
// random bf16-exact inputs, guarded device buffers (poisoned payload between poisoned guard bands:
// all bytes 0xFF, a NaN in bf16 and fp32, so unwritten outputs and out-of-bounds writes show).
#pragma once
#ifdef ARBOR_HAVE_CUDA
#include <stddef.h>
#include <stdint.h>

#include "kernels/cuda/cuda_ops.h"
#include "models/model.h"

#define GUARD 512

typedef struct {
    unsigned char* base;
    size_t bytes;
} Guarded;

// A context on device 0, or the test is skipped with the runtime's reason.
CudaContext* ctx_or_skip(void);
// sum (out - ref)^2 / sum ref^2; +inf when out holds a NaN or Inf
double nmse(const float* out, const float* ref, size_t n);
// a (n) uniform in [lo, hi), rounded to bf16 (exact in both backends), a fixed function of seed
void fill_uniform(float* a, size_t n, uint64_t seed, float lo, float hi);
float* host_random(size_t n, uint64_t seed, float lo, float hi);  // malloc'd fill_uniform
// A poisoned device buffer of `bytes` between guard bands; returns the payload.
void* guarded_alloc(CudaContext* ctx, Guarded* g, size_t bytes);
int guards_intact(CudaContext* ctx, const Guarded* g);  // 1 when both bands are still poison
void guarded_free(Guarded* g);
bf16* upload_bf16(CudaContext* ctx, const float* host, size_t n);  // bf16 device copy of host (n)
int* upload_ints(CudaContext* ctx, const int* host, int n);
float* upload_f32(CudaContext* ctx, const float* host, size_t n);
void round_arena_to_bf16(Model* m);  // both backends then see the same weights
// The four transformers-made fixture checkpoints (tests/fixtures/hf): GQA + head_dim, odd hidden +
// biases + shards, Qwen2 biases, Llama tied
#define N_HF_FIXTURES 4
extern const char* const hf_fixture_names[N_HF_FIXTURES];
void load_fixture_model(Model* m, const char* name);  // asserts it loads
// The "tiny" preset's config, and a model of it with model_init_random(seed)
ModelConfig tiny_config(void);
void tiny_random_model(Model* m, uint64_t seed);
#endif
