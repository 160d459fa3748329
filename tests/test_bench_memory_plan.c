// test_bench_memory_plan.c: the GPU bench's memory plan (evals/bench_memory_plan.h) against bytes worked
// out by hand: the run state's buffers one by one, the KV cache, a chunk bounded by the memory left
// (rounded to whole prompts), a cell whose KV cache does not fit (skipped, with the reason), and the
// published shapes the device check's grid turns on (Qwen3-4B at batch 256 x 2,048 does not fit 80 GB).
#include <criterion/criterion.h>
#include <string.h>

#include "evals/bench_memory_plan.h"
#include "helpers.h"

// 2 layers, hidden 64, 4 heads of 16 and 2 KV heads, ffn 128, vocab 100
static ModelConfig toy(void) {
    ModelConfig c;
    Err e;
    config_preset("tiny", &c, &e);
    c.n_layers = 2, c.hidden = 64, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16, c.ffn = 128, c.vocab = 100;
    return c;
}

#define GIB ((size_t)1 << 30)

Test(bench_memory_plan, run_state_and_cache_by_hand) {
    ModelConfig c = toy();
    // per row: x 4x64 = 256, xn 2x64 = 128, qkv 2x(64+32+32) = 256, att 2x64 = 128, proj 128, gateup
    // 2x256 = 512, h 2x128 = 256, rows 128, ids 16, tiles 16: 1824. Logits of 2 rows: 2 x 100 x 4 = 800.
    // Split partials: rows x 4 heads x 16 splits x 18 x 4 bytes = 4608 per row (up to 256 rows).
    cr_expect_eq(runstate_device_bytes(&c, 16, 2), 1824 * 16 + 800 + 4608 * 16);
    cr_expect_eq(runstate_device_bytes(&c, 1000, 4), 1824 * 1000 + 1600 + 4608 * 256, "partials stop at 256 rows");
    // KV: k and v x 2 layers x 3 sequences x 10 positions x 2 heads x 16 x 2 bytes = 7680
    cr_expect_eq(kvcache_device_bytes(&c, 2, 3, 10), 7680);
}

Test(bench_memory_plan, small_cell_in_one_call) {
    ModelConfig c = toy();
    BenchMemoryPlan p;
    // B 2, P 8, G 4: 16 rows in one call; KV 2 x 2 x 2 x 14 x 32 x 2 = 7168
    cr_assert(bench_memory_plan(&c, 2, 8, 4, 2 * GIB, 0, &p));
    cr_expect_eq(p.chunk_rows, 16);
    cr_expect_eq(p.kv_cache, 7168);
    cr_expect_eq(p.run_state, 1824 * 16 + 800 + 4608 * 16);
    cr_expect_eq(p.need, 7168 + p.run_state + GIB);
    cr_expect_eq(p.why[0], 0);
}

Test(bench_memory_plan, chunk_bounded_by_memory_in_whole_prompts) {
    ModelConfig c = toy();
    BenchMemoryPlan p;
    // B 4, P 1000, G 8: KV 2 x 2 x 4 x 1010 x 32 x 2 = 1,034,240; logits 1,600. Room for 2,500 rows at
    // 1824 + 4608 bytes each; 2,500 is cut to 2 whole prompts (2,000 rows)
    size_t free_bytes = GIB + 1034240 + 1600 + (size_t)6432 * 2500;
    cr_assert(bench_memory_plan(&c, 4, 1000, 8, free_bytes, 0, &p), "%s", p.why);
    cr_expect_eq(p.kv_cache, 1034240);
    cr_expect_eq(p.chunk_rows, 2000);
    cr_expect_eq(p.run_state, 1824 * 2000 + 1600 + 4608 * 256);
    cr_expect_leq(p.need, free_bytes);
    // the cap: at most max_chunk_rows (never below the batch: a decode step holds B rows)
    cr_assert(bench_memory_plan(&c, 4, 1000, 8, 4 * GIB, 300, &p));
    cr_expect_eq(p.chunk_rows, 300);
    cr_assert(bench_memory_plan(&c, 4, 1000, 8, 4 * GIB, 2, &p));
    cr_expect_eq(p.chunk_rows, 4);
}

Test(bench_memory_plan, cache_that_does_not_fit_is_skipped_with_the_reason) {
    ModelConfig c = toy();
    BenchMemoryPlan p;
    cr_expect_not(bench_memory_plan(&c, 2, 8, 4, GIB + 1000, 0, &p));
    cr_expect_eq(p.fits, 0);
    cr_expect_eq(p.chunk_rows, 2, "the smallest chunk, a decode step's rows");
    cr_expect(strstr(p.why, "skipped: needs") && strstr(p.why, "KV cache"), "%s", p.why);
}

Test(bench_memory_plan, published_shapes_on_an_80_gb_gpu) {
    ModelConfig four, eight;
    Err e;
    cr_assert_eq(config_preset("qwen3-4b", &four, &e), 0, "%s", e.msg);
    cr_assert_eq(config_preset("qwen3-8b", &eight, &e), 0, "%s", e.msg);
    eight.n_layers = 24;
    BenchMemoryPlan p;
    // Qwen3-4B, batch 256 x (2048 + 32 + 2) positions: 2 x 36 x 256 x 2082 x 8 x 128 x 2 = 78,592,868,352
    // bytes of KV cache alone: more than an H100 has free beside 8 GB of weights
    cr_expect_not(bench_memory_plan(&four, 256, 2048, 32, (size_t)72e9, 0, &p));
    cr_expect_eq(p.kv_cache, 78592868352ull);
    // at batch 128 it fits, prefilled in calls of 16,384 rows (8 whole prompts)
    cr_expect(bench_memory_plan(&four, 128, 2048, 32, (size_t)72e9, 0, &p), "%s", p.why);
    cr_expect_eq(p.chunk_rows, 16384);
    // the 24-layer 8B at batch 256 x 2048: 24 layers, the same KV width: 52,395,245,568 bytes; fits 72 GB
    cr_expect(bench_memory_plan(&eight, 256, 2048, 32, (size_t)72e9, 0, &p), "%s", p.why);
    cr_expect_eq(p.kv_cache, 52395245568ull);
}
