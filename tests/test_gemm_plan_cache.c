// test_gemm_plan_cache.c: the CUDA backend's GEMM plan policy, on the CPU: bounded, least recently used
// out first, every key field (alignment included) tells plans apart, and MMLU's stream of row counts
// (a different count every batch) never exhausts it.
#include <criterion/criterion.h>
#include <string.h>

#include "kernels/gemm_plan_cache.h"

static GemmKey key_rows(int n) {
    GemmKey k;
    memset(&k, 0, sizeof k);
    k.transa = 1, k.m = 4096, k.n = n, k.k = 4096, k.lda = 4096, k.ldb = 4096, k.ldd = 4096;
    k.align_a = k.align_b = k.align_d = 256;
    return k;
}

Test(gemm_plan_cache, ten_thousand_row_counts_stay_bounded_and_keep_the_hot_plans) {
    static GemmPlanCache c;
    gemm_plan_cache_init(&c);
    GemmKey hot = key_rows(1);  // decode's shape, used between every batch
    int build, evict, hot_builds = 0;
    for (int i = 0; i < 10000; i++) {
        GemmKey k = key_rows(2 + i);
        int slot = gemm_plan_cache_slot(&c, &k, &build, &evict);
        cr_assert(slot >= 0 && slot < GEMM_PLAN_CACHE_CAP);
        cr_assert(build, "row count %d is new", 2 + i);
        cr_assert_eq(evict, i >= GEMM_PLAN_CACHE_CAP - 1, "evicts only once full (i = %d)", i);
        gemm_plan_cache_slot(&c, &hot, &build, &evict);
        hot_builds += build;
    }
    cr_expect_eq(hot_builds, 1, "the plan used all along is never evicted");
    cr_expect_eq(c.n, GEMM_PLAN_CACHE_CAP);
    cr_expect_eq(c.misses, 10001);
    cr_expect_eq(c.evictions, 10001 - GEMM_PLAN_CACHE_CAP);
    // the most recent keys are still there; the oldest are gone
    GemmKey recent = key_rows(2 + 9999), old = key_rows(2);
    gemm_plan_cache_slot(&c, &recent, &build, &evict);
    cr_expect_eq(build, 0, "the last row count hits");
    gemm_plan_cache_slot(&c, &old, &build, &evict);
    cr_expect_eq(build, 1, "the first was evicted long ago");
}

Test(gemm_plan_cache, every_field_tells_plans_apart) {
    static GemmPlanCache c;
    gemm_plan_cache_init(&c);
    GemmKey base = key_rows(64);
    int build, evict;
    int s0 = gemm_plan_cache_slot(&c, &base, &build, &evict);
    cr_assert(build);
    GemmKey v[8];
    for (int i = 0; i < 8; i++) v[i] = base;
    v[0].align_a = 16, v[1].align_d = 4, v[2].d_f32 = 1, v[3].accumulate = 1, v[4].bias_epilogue = 1, v[5].transb = 1;
    v[6].ldd = 8192, v[7].k = 1024;
    for (int i = 0; i < 8; i++) {
        int s = gemm_plan_cache_slot(&c, &v[i], &build, &evict);
        cr_expect(build && s != s0, "variant %d gets its own plan", i);
    }
    int again = gemm_plan_cache_slot(&c, &base, &build, &evict);
    cr_expect(!build && again == s0);
}

Test(gemm_plan_cache, alignment_of_pointers) {
    cr_expect_eq(gemm_alignment((void*)0x1000), 256);
    cr_expect_eq(gemm_alignment((void*)0x1080), 128);
    cr_expect_eq(gemm_alignment((void*)0x1002), 2);
    cr_expect_eq(gemm_alignment((void*)0x1001), 1);
    cr_expect_eq(gemm_alignment(NULL), 256);
}

// A plan cuBLASLt could not make with the bias epilogue runs without it: the key stays as callers look it
// up, so the same GEMM hits its plan again (storing another key made every call a miss and a rebuild,
// fatal inside graph capture)
Test(gemm_plan_cache, a_plan_without_its_epilogue_is_found_again) {
    GemmPlanCache c;
    gemm_plan_cache_init(&c);
    GemmKey k = {0, 0, 64, 32, 16, 64, 16, 64, 0, 0, 1, 256, 256, 256};
    int build, evict;
    int slot = gemm_plan_cache_slot(&c, &k, &build, &evict);
    cr_assert(build);
    cr_expect(gemm_plan_cache_epilogue(&c, slot), "asked for, and made with, the epilogue");
    gemm_plan_cache_mark_no_epilogue(&c, slot);
    cr_expect(!gemm_plan_cache_epilogue(&c, slot), "the caller adds the bias");
    for (int call = 0; call < 300; call++) {
        int again = gemm_plan_cache_slot(&c, &k, &build, &evict);
        cr_assert_eq(again, slot);
        cr_assert(!build, "call %d rebuilt the plan", call);
    }
    cr_expect_eq(c.misses, 1);
    cr_expect_eq(c.hits, 300);
    // a slot rebuilt for another key starts with its epilogue again
    GemmKey other = k;
    other.m = 65;
    for (int i = 0; i < GEMM_PLAN_CACHE_CAP; i++) {
        GemmKey fill = other;
        fill.n = 1000 + i;
        gemm_plan_cache_slot(&c, &fill, &build, &evict);
    }
    int hit = 0;
    for (int i = 0; i < c.n; i++) hit |= c.keys[i].m == 64;
    cr_expect(!hit, "the old plan was evicted");
    for (int i = 0; i < c.n; i++) cr_expect(!c.no_epilogue[i], "slot %d: a rebuilt slot forgets the fallback", i);
}
