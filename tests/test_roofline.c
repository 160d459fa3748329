// test_roofline.c: the throughput model against hand computations: a toy shape worked out on paper,
// the regime switch between memory and compute, and the published shapes' facts the reference claim
// turns on (bf16 weights 10.5 GB for the 24-layer 8B vs 8.0 GB for Qwen3-4B; KV-cache bytes 24 vs 36
// layers, so at batch 256 and 2,048 positions the 6B reads about 1.37x fewer bytes per step).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "evals/roofline.h"
#include "helpers.h"

// 2 layers, hidden 4, 2 heads and 1 KV head of size 2, ffn 8, vocab 10, tied embeddings
static ModelConfig toy(void) {
    ModelConfig c;
    Err e;
    config_preset("tiny", &c, &e);
    c.n_layers = 2, c.hidden = 4, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 2, c.ffn = 8, c.vocab = 10;
    c.tie_embeddings = true;
    return c;
}

Test(roofline, toy_decode_by_hand) {
    ModelConfig c = toy();
    // per layer: q 4x4 = 16, k and v 2 x 4x2 = 16, o 16, gate/up/down 3 x 4x8 = 96: 144; 2 layers 288;
    // lm_head (tied) 10x4 = 40; norms (2 x 2 + 1) x 4 = 20. bf16: 2 x 348 = 696 bytes.
    // K and V per position: 2 layers x 2 x 1 head x 2 = 8 values. Batch 3 over 5 cached positions:
    // read 3 x 5 x 8 x 2 = 240 bytes, write 3 x 8 x 2 = 48. FLOPs: 2 x 3 x (288 + 40) = 1968 in the
    // matmuls, 4 x 3 x 6 positions x 2 layers x 2 heads x 2 = 576 in attention.
    DeviceSpec slow_math = {"t", 1, 1e-9};  // 1 GB/s, 1,000 FLOP/s
    RooflineStep s;
    roofline_decode(&c, 3, 5, 2, 2, &slow_math, &s);
    cr_expect_float_eq(s.weight_bytes, 696, 1e-9);
    cr_expect_float_eq(s.kv_read_bytes, 240, 1e-9);
    cr_expect_float_eq(s.kv_write_bytes, 48, 1e-9);
    cr_expect_float_eq(s.bytes, 984, 1e-9);
    cr_expect_float_eq(s.matmul_flops, 1968, 1e-9);
    cr_expect_float_eq(s.attention_flops, 576, 1e-9);
    cr_expect_eq(s.memory_bound, 0);
    cr_expect_float_eq(s.seconds, 2544.0 / 1000, 1e-12);
    cr_expect_float_eq(s.tokens_per_s, 3 / 2.544, 1e-9);
    DeviceSpec fast_math = {"t", 1, 1e6};
    roofline_decode(&c, 3, 5, 2, 2, &fast_math, &s);
    cr_expect_eq(s.memory_bound, 1);
    cr_expect_float_eq(s.tokens_per_s, 3 / 984e-9, 1e-3);
    // fp8 KV cache halves the cache bytes, not the weights
    roofline_decode(&c, 3, 5, 2, 1, &fast_math, &s);
    cr_expect_float_eq(s.kv_read_bytes, 120, 1e-9);
    cr_expect_float_eq(s.weight_bytes, 696, 1e-9);
}

Test(roofline, toy_prefill_by_hand) {
    ModelConfig c = toy();
    // batch 2 prompts of 4 tokens: weights once (696), KV written 2 x 4 x 8 x 2 = 128 bytes; matmuls
    // 2 x 8 tokens x 288 + 2 x 2 x 40 (last-token logits) = 4768; causal attention 4 x 2 x (4 x 5 / 2)
    // x 2 layers x 2 heads x 2 = 640
    DeviceSpec d = {"t", 1, 1e-9};
    RooflineStep s;
    roofline_prefill(&c, 2, 4, 2, 2, &d, &s);
    cr_expect_float_eq(s.bytes, 696 + 128, 1e-9);
    cr_expect_float_eq(s.matmul_flops, 4768, 1e-9);
    cr_expect_float_eq(s.attention_flops, 640, 1e-9);
    cr_expect_float_eq(s.tokens_per_s, 8 / (5408.0 / 1000), 1e-9);
}

Test(roofline, the_reference_claim_lives_at_large_batch_and_long_context) {
    ModelConfig big, small;
    Err e;
    cr_assert_eq(config_preset("qwen3-8b", &big, &e), 0);
    big.n_layers = 24;
    cr_assert_eq(config_preset("qwen3-4b", &small, &e), 0);
    DeviceSpec h200;
    cr_assert_eq(device_spec("h200", &h200), 0);
    RooflineStep a, b;
    roofline_decode(&big, 1, 128, 2, 2, &h200, &a);
    roofline_decode(&small, 1, 128, 2, 2, &h200, &b);
    cr_expect(fabs(a.weight_bytes / 1e9 - 10.5) < 0.05 && fabs(b.weight_bytes / 1e9 - 8.0) < 0.1, "weights %.2f vs %.2f GB",
              a.weight_bytes / 1e9, b.weight_bytes / 1e9);
    cr_expect_lt(a.tokens_per_s / b.tokens_per_s, 0.8, "batch 1: the 6B is slower (%.2fx)", a.tokens_per_s / b.tokens_per_s);
    roofline_decode(&big, 256, 2048, 2, 2, &h200, &a);
    roofline_decode(&small, 256, 2048, 2, 2, &h200, &b);
    double ratio = a.tokens_per_s / b.tokens_per_s;
    cr_expect(ratio > 1.33 && ratio < 1.42, "batch 256, 2048 positions: %.3fx (bytes %.1f vs %.1f GB)", ratio, a.bytes / 1e9,
              b.bytes / 1e9);
    // KV cache per position: 24 x 2 x 8 x 128 x 2 bytes against 36 x ...: exactly 2/3
    cr_expect_float_eq(a.kv_read_bytes / b.kv_read_bytes, 24.0 / 36.0, 1e-12);
    cr_expect_eq(device_spec("tpu", &h200), -1);
}

Test(roofline, cli_writes_the_grid) {
    char dir[256], csv[512], args[1024];
    make_temp_dir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/r.csv", dir);
    snprintf(args, sizeof args, "bench --roofline --gpu h100 --arch qwen3-4b --batch 1,64 --context 128,2048 --kv-dtype fp8 --csv %s", csv);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    char* text = slurp(csv);
    const char* head = "model,device,batch,context,decode_tokens_per_s_floor,prefill_tokens_per_s_floor,bytes_per_step,flops_per_step";
    cr_expect(!strncmp(text, head, strlen(head)), "%s", text);
    int lines = 0;
    for (char* p = text; *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, 5, "header + 2 x 2 points: %s", text);
    cr_expect(contains(text, "qwen3-4b,h100,64,2048,"), "%s", text);
    free(text);
    cr_expect_eq(run_arbor("bench --roofline --arch qwen3-4b 2>/dev/null", "/dev/null"), 2, "no device: refused");
    cr_expect_eq(run_arbor("bench --roofline --gpu v100 --arch qwen3-4b 2>/dev/null", "/dev/null"), 2);
    cr_expect_eq(run_arbor("bench --roofline --gpu h200 --kv-dtype fp4 --arch qwen3-4b 2>/dev/null", "/dev/null"), 2);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    cr_expect_eq(system(args), 0);
}

// the memory a cell holds, by hand: every parameter of the toy, the 348 of toy_decode_by_hand and its q/k
// norms (2 layers x 2 norms x 2 dims: 356), at 2 bytes; and K and V of 2 layers x 1 KV head x 2 dims per
// position at 2 bytes, for batch 3 x 5 positions
Test(roofline, memory_of_a_cell_by_hand) {
    ModelConfig c = toy();
    cr_expect_float_eq(roofline_memory_bytes(&c, 3, 5, 2, 2), 356 * 2 + 3 * 5 * (2 * 2 * 1 * 2) * 2, 1e-9);
    cr_expect_float_eq(roofline_memory_bytes(&c, 0, 5, 4, 1), 356 * 4, 1e-9, "no sequence: the weights alone");
    cr_expect_float_eq(device_memory_gb("h100"), 80, 0);
    cr_expect_float_eq(device_memory_gb("h200"), 141, 0);
    cr_expect_float_eq(device_memory_gb("v100"), 0, 0);
}

// --versus: each cell's ratio equals the ratio of the two models' floors computed alone; cells past the
// device's memory are marked, and the largest batch that fits per context is printed
Test(roofline, versus_answers_the_ratio_question_with_memory) {
    char dir[256], a[512], b[512], both[512], out[512], args[2048];
    make_temp_dir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    snprintf(both, sizeof both, "%s/both.csv", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    const char* grid = "--gpu h100 --batch 1,256 --context 2048";
    snprintf(args, sizeof args, "bench --roofline %s --arch qwen3-8b --layers 24 --csv %s", grid, a);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    snprintf(args, sizeof args, "bench --roofline %s --arch qwen3-4b --csv %s", grid, b);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    snprintf(args, sizeof args, "bench --roofline %s --arch qwen3-8b --layers 24 --versus qwen3-4b --csv %s", grid, both);
    cr_assert_eq(run_arbor(args, out), 0);
    double da[2], db[2], ratio[2], mem_a[2];
    char fits[2][8], vfits[2][8];
    FILE* f[3] = {fopen(a, "r"), fopen(b, "r"), fopen(both, "r")};
    char line[2048];
    for (int k = 0; k < 3; k++) cr_assert(f[k] && fgets(line, sizeof line, f[k]));  // headers
    for (int r = 0; r < 2; r++) {
        int batch, context;
        char fields[24][16];
        cr_assert(fgets(line, sizeof line, f[0]));
        cr_assert_eq(sscanf(line, "%*[^,],%*[^,],%d,%d,%lf", &batch, &context, &da[r]), 3, "%s", line);
        cr_assert(fgets(line, sizeof line, f[1]));
        cr_assert_eq(sscanf(line, "%*[^,],%*[^,],%*d,%*d,%lf", &db[r]), 1, "%s", line);
        cr_assert(fgets(line, sizeof line, f[2]));
        int n = 0;
        for (char* tok = strtok(line, ",\n"); tok && n < 24; tok = strtok(NULL, ",\n")) snprintf(fields[n++], 16, "%.15s", tok);
        cr_assert_eq(n, 21, "model .. versus_fits: %d fields", n);
        mem_a[r] = atof(fields[14]);
        snprintf(fits[r], 8, "%.7s", fields[15]);
        ratio[r] = atof(fields[17]);
        snprintf(vfits[r], 8, "%.7s", fields[20]);
        cr_expect_float_eq(ratio[r], da[r] / db[r], 1e-4 * da[r] / db[r], "row %d: the ratio is the floors' ratio", r);
    }
    for (int k = 0; k < 3; k++) fclose(f[k]);
    // batch 256 x 2048: the 24-layer 8B needs ~63 GB and fits 80 GB; Qwen3-4B's 36 layers of KV cache do not
    cr_expect(mem_a[1] > 60e9 && mem_a[1] < 70e9, "%g", mem_a[1]);
    cr_expect_str_eq(fits[1], "yes");
    cr_expect_str_eq(vfits[1], "no");
    cr_expect_gt(ratio[1], 1.3, "at batch 256 and 2048 positions the 24-layer 8B's floor is faster");
    char* said = slurp(out);
    cr_expect(contains(said, "# context 2048: qwen3-8b fits at most batch ") && contains(said, "# context 2048: qwen3-4b fits at most batch ") &&
                  contains(said, "tokens/s are over the whole batch"),
              "%s", said);
    free(said);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    cr_expect_eq(system(args), 0);
    cr_expect_eq(run_arbor("bench --arch qwen3-4b --versus qwen3-8b 2>/dev/null", "/dev/null"), 2, "--versus without --roofline");
}
