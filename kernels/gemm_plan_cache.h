// gemm_plan_cache.h: which cuBLASLt plans the CUDA backend keeps, decided in plain C so it can be tested
// without a GPU. A plan is keyed on everything its descriptors and chosen algorithm depend on: the
// transposes, the exact shape and leading dimensions, the output type, accumulate, the bias epilogue
// and the alignment of each pointer (a plan chosen for 256-byte-aligned operands must not be reused
// for a less aligned slice). The cache holds a fixed number of plans and evicts the least recently
// used one when full: MMLU gives every batch another row count, so shapes never stop arriving.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GEMM_PLAN_CACHE_CAP 256

typedef struct {
    int transa, transb, m, n, k, lda, ldb, ldd;
    int d_f32, accumulate, bias_epilogue;
    int align_a, align_b, align_d;  // bytes (gemm_alignment)
} GemmKey;

typedef struct {
    GemmKey keys[GEMM_PLAN_CACHE_CAP];
    uint64_t last_use[GEMM_PLAN_CACHE_CAP];
    unsigned char no_epilogue[GEMM_PLAN_CACHE_CAP];  // the plan was asked for a bias epilogue and runs without it
    int n;                       // slots in use
    uint64_t clock;
    long hits, misses, evictions;
} GemmPlanCache;

void gemm_plan_cache_init(GemmPlanCache* c);
// The slot for key. *build = 1 when the slot's plan must be made for key (a miss); *evict = 1 when the
// slot held another plan, to be destroyed first.
int gemm_plan_cache_slot(GemmPlanCache* c, const GemmKey* key, int* build, int* evict);
// The slot's plan was made without the bias epilogue its key asks for (cuBLASLt offered none): the key is
// kept as callers look it up, and the caller adds the bias itself.
void gemm_plan_cache_mark_no_epilogue(GemmPlanCache* c, int slot);
// 1 when the slot's plan applies the bias itself (its key asks for it and it was made so).
int gemm_plan_cache_epilogue(const GemmPlanCache* c, int slot);
// The largest power of two <= 256 that divides the address (256 for NULL).
int gemm_alignment(const void* p);

#ifdef __cplusplus
}
#endif
