// test_cli.c: the arbor binary end to end: init, info, forward, generate, bench, and exit code 2 with
// one line on stderr for bad input.
#define _GNU_SOURCE  // memmem
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#ifdef ARBOR_HAVE_CUDA
#include "kernels/cuda/cuda_ops.h"
#endif
#include "models/file_io.h"
#include "models/generate.h"
#include "models/npy.h"
#include "models/tokenizer/tokenizer.h"
#include "models/token_shard.h"

static char dir[256];
static char model[300];

static void setup(void) {
    make_temp_dir(dir, sizeof dir);
    snprintf(model, sizeof model, "%s/tiny", dir);
}
TestSuite(cli, .init = setup);

static void init_tiny(const char* extra) {
    char args[1024];
    snprintf(args, sizeof args, "init --arch tiny --seed 5 --out %s %s 2>/dev/null", model, extra);
    cr_assert_eq(run_arbor(args, NULL), 0);
}

Test(cli, init_info_forward_generate) {
    init_tiny("--dtype f32");
    char args[1024], out[512], npy[512];
    snprintf(out, sizeof out, "%s/info.txt", dir);
    snprintf(args, sizeof args, "info --model %s", model);
    cr_assert_eq(run_arbor(args, out), 0);
    char* info = slurp(out);
    cr_expect(contains(info, "Qwen3ForCausalLM"), "%s", info);
    cr_expect(contains(info, "head_dim 16"), "%s", info);
    free(info);

    // forward writes the same logits the library computes
    snprintf(npy, sizeof npy, "%s/logits.npy", dir);
    snprintf(args, sizeof args, "forward --model %s --tokens \"3 1 4 1 5 9\" --out %s 2>/dev/null", model, npy);
    cr_assert_eq(run_arbor(args, NULL), 0);
    int rows, cols;
    Err e;
    float* got = npy_read_f32(npy, &rows, &cols, &e);
    cr_assert_not_null(got, "%s", e.msg);
    cr_expect_eq(rows, 6);
    cr_expect_eq(cols, 512);
    Model m;
    cr_assert_eq(model_load(&m, model, &e), 0, "%s", e.msg);
    int ids[6] = {3, 1, 4, 1, 5, 9}, T = 6;
    KVCache cache;
    RunState s;
    kvcache_create(&cache, &m.cfg, 1, 8);
    runstate_create(&s, &m.cfg, 6, 8);
    float* want = malloc(sizeof(float) * 6 * 512);
    const int* p[1] = {ids};
    cr_assert_eq(model_prefill(&m, &s, &cache, p, &T, 1, true, want, &e), 0);
    cr_expect_arr_eq(got, want, sizeof(float) * 6 * 512);
    free(got);
    runstate_free(&s);
    kvcache_free(&cache);

    // --weights bf16: the matrices rounded, the logits the library's bf16 model gives, within bf16's
    // tolerance of the fp32 ones
    snprintf(args, sizeof args, "forward --model %s --tokens \"3 1 4 1 5 9\" --out %s --weights bf16 2>/dev/null", model, npy);
    cr_assert_eq(run_arbor(args, NULL), 0);
    got = npy_read_f32(npy, &rows, &cols, &e);
    cr_assert_not_null(got, "%s", e.msg);
    Model h;
    cr_assert_eq(model_load_as(&h, model, WEIGHT_BF16, &e), 0, "%s", e.msg);
    float* want16 = malloc(sizeof(float) * 6 * 512);
    kvcache_create(&cache, &h.cfg, 1, 8);
    runstate_create(&s, &h.cfg, 6, 8);
    cr_assert_eq(model_prefill(&h, &s, &cache, p, &T, 1, true, want16, &e), 0);
    cr_expect_arr_eq(got, want16, sizeof(float) * 6 * 512);
    double moved = rel_l2(got, want, 6 * 512);
    cr_expect(moved > 0 && moved < 2e-2, "bf16 logits moved %.3g from the fp32 ones", moved);
    free(got), free(want), free(want16);
    runstate_free(&s);
    kvcache_free(&cache);
    model_free(&h);

    // generate prints the library's greedy ids
    snprintf(args, sizeof args, "generate --model %s --tokens 3,1,4 -n 12 --greedy", model);
    cr_assert_eq(run_arbor(args, out), 0);
    char* line = slurp(out);
    int lib[12], n;
    SampleOptions g = {.greedy = true};
    cr_assert_eq(generate(&m, p, (int[]){3}, 1, 12, &g, lib, &n, &e), 0);
    char expect[256] = "";
    for (int i = 0; i < n; i++) snprintf(expect + strlen(expect), sizeof expect - strlen(expect), "%s%d", i ? " " : "", lib[i]);
    strcat(expect, "\n");
    cr_expect_str_eq(line, expect);
    free(line);
    model_free(&m);
}

Test(cli, sampling_is_reproducible_by_seed) {
    init_tiny("");
    char args[1024], a[512], b[512];
    snprintf(a, sizeof a, "%s/a.txt", dir);
    snprintf(b, sizeof b, "%s/b.txt", dir);
    snprintf(args, sizeof args, "generate --model %s --tokens 7 -n 20 --seed 3 --top-p 0.9", model);
    cr_assert_eq(run_arbor(args, a), 0);
    cr_assert_eq(run_arbor(args, b), 0);
    char *x = slurp(a), *y = slurp(b);
    cr_expect_str_eq(x, y);
    int count = 0;
    for (char* t = strtok(x, " \n"); t; t = strtok(NULL, " \n")) {
        int id = atoi(t);
        cr_expect(id >= 0 && id < 512);
        count++;
    }
    cr_expect_eq(count, 20);
    free(x);
    free(y);
}

Test(cli, bench_reports_throughput) {
    char args[512], out[512];
    snprintf(out, sizeof out, "%s/bench.txt", dir);
    snprintf(args, sizeof args, "bench --arch tiny --layers 2 --prompt-len 16 --gen-len 4 --repeats 1 2>/dev/null");
    cr_assert_eq(run_arbor(args, out), 0);
    char* text = slurp(out);
    double pf = 0, dc = 0;
    const char* p = strstr(text, "prefill_tokens_per_s=");
    const char* d = strstr(text, "decode_tokens_per_s=");
    cr_assert(p && d, "%s", text);
    sscanf(p, "prefill_tokens_per_s=%lf", &pf);
    sscanf(d, "decode_tokens_per_s=%lf", &dc);
    cr_expect_gt(pf, 0);
    cr_expect_gt(dc, 0);
    free(text);
    // 16-bit weights: said in the table and the key=value lines
    snprintf(args, sizeof args, "bench --arch tiny --layers 2 --prompt-len 16 --gen-len 4 --repeats 1 --weights f16 2>/dev/null");
    cr_assert_eq(run_arbor(args, out), 0);
    text = slurp(out);
    cr_expect(contains(text, "weights=f16\n") && contains(text, "decode_tokens_per_s="), "%s", text);
    // the spread over repeats and whether the cores were free come with every number
    cr_expect(contains(text, "decode_tokens_per_s_min=") && contains(text, "decode_tokens_per_s_max=") &&
                  contains(text, "wait_share=") && contains(text, "cpu_per_wall=") && contains(text, "repeats=1\n"),
              "%s", text);
    free(text);
    // how idle OpenMP threads wait: passive when shared, libgomp's default when dedicated, the user's own kept
    const char* policies[3][2] = {{"ARBOR_CPU_POLICY=shared", "wait_policy=passive\n"},
                                  {"ARBOR_CPU_POLICY=dedicated", "wait_policy=default\n"},
                                  {"ARBOR_CPU_POLICY=shared OMP_WAIT_POLICY=active", "wait_policy=active\n"}};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "bench --arch tiny --layers 1 --prompt-len 4 --gen-len 1 --repeats 1 2>/dev/null");
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "env %s %s %s > %s", policies[i][0], ARBOR_BIN, args, out);
        cr_assert_eq(system(cmd), 0);
        text = slurp(out);
        cr_expect(contains(text, policies[i][1]), "%s: %s", policies[i][0], text);
        free(text);
    }
    // the OpenBLAS kernels match the CPU (OpenBLAS 0.3.21 took this project's AVX-512 Xeon for a Prescott,
    // SSE3, and sgemm ran at a quarter of the rate); a coretype the user sets is kept
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512vl");
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const char* cores[2] = {"env -u OPENBLAS_CORETYPE", "env OPENBLAS_CORETYPE=Prescott"};
    for (int i = 0; i < 2; i++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "%s %s %s > %s", cores[i], ARBOR_BIN, args, out);
        cr_assert_eq(system(cmd), 0);
        text = slurp(out);
        const char* line = strstr(text, "blas_core=");
        cr_assert_not_null(line, "%s", text);
        char core[64] = "";
        sscanf(line, "blas_core=%63s", core);
        if (i == 1) cr_expect_str_eq(core, "Prescott", "the user's OPENBLAS_CORETYPE is kept");
        else if (avx512) cr_expect(!strcmp(core, "SkylakeX") || !strcmp(core, "Cooperlake") || !strcmp(core, "SapphireRapids"), "%s", core);
        else if (avx2) cr_expect(strcmp(core, "Prescott") && strcmp(core, "Nehalem") && strcmp(core, "Core2") && strcmp(core, "Sandybridge"),
                                 "an AVX2 CPU gets AVX2 kernels, not %s", core);
        free(text);
    }
}

// Runs arbor with args; expects exit 2 and exactly one stderr line containing phrase.
static void expect_bad_input(const char* args, const char* phrase) {
    char cmd[2048], err[512];
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "%s 2> %s", args, err);
    cr_expect_eq(run_arbor(cmd, "/dev/null"), 2, "arbor %s should exit 2", args);
    char* text = slurp(err);
    cr_expect(contains(text, phrase), "stderr says '%s': %s", phrase, text);
    char* nl = strchr(text, '\n');
    cr_expect(nl && nl[1] == 0, "one line: %s", text);
    cr_expect(strncmp(text, "arbor: ", 7) == 0, "%s", text);
    free(text);
}

Test(cli, bad_input_exits_2_with_one_line) {
    init_tiny("");
    char args[1024];
    expect_bad_input("info --model /nonexistent/m", "/nonexistent/m/config.json: cannot open");
    expect_bad_input("frobnicate", "unknown command 'frobnicate'");
    expect_bad_input("info --modle x", "unknown option '--modle'");
    expect_bad_input("init --arch qwen99 --out /tmp/x", "unknown --arch 'qwen99'");
    expect_bad_input("init --arch tiny --heads 3 --out /tmp/x", "not a multiple");
    expect_bad_input("init --arch tiny", "--out is required");
    snprintf(args, sizeof args, "forward --model %s --tokens \"1 x 2\" --out %s/o.npy", model, dir);
    expect_bad_input(args, "is not a non-negative integer token id");
    snprintf(args, sizeof args, "forward --model %s --tokens \"1 512\" --out %s/o.npy", model, dir);
    expect_bad_input(args, "token id 512 is outside the vocabulary");
    snprintf(args, sizeof args, "generate --model %s --tokens 1 -n 0", model);
    expect_bad_input(args, "-n '0' must be an integer in");

    expect_bad_input("bench --arch tiny --device gpu", "device 'gpu' is neither cpu nor cuda");
    expect_bad_input("bench --arch tiny --device cuda --batch 1,0", "--batch: 0 is outside [1, 4096]");
    expect_bad_input("bench --arch tiny --device cuda --label a,b", "--label: 'a,b' may not hold a comma");
    expect_bad_input("bench --arch tiny --weights q8", "--weights must be fp32, bf16 or f16, not 'q8'");
    // an option the mode does not read is refused, never ignored
    expect_bad_input("bench --arch tiny --csv x.csv", "bench: --csv has no effect with --device cpu");
    expect_bad_input("bench --arch tiny --gpu h100", "bench: --gpu has no effect without --roofline");
    expect_bad_input("bench --arch tiny --context 64", "bench: --context has no effect without --roofline");
    expect_bad_input("bench --roofline --gpu h100 --arch tiny --threads 2", "bench: --threads has no effect with --roofline");
    expect_bad_input("bench --arch tiny --device cuda --threads 2", "bench: --threads has no effect with --device cuda");
    snprintf(args, sizeof args, "generate --model %s --tokens 1 --tokenizer %s", model, model);
    expect_bad_input(args, "generate: --tokenizer has no effect with --tokens");
    const char* prune_extra[][2] = {{"--params 1e6", "prune: --params has no effect without --search"},
                                    {"--layers 2", "prune: --layers has no effect without --strategy"},
                                    {"--mmlu /tmp", "prune: --mmlu has no effect without --score-with"}};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "prune --model %s --out %s/p --drop-layers 1 %s", model, dir, prune_extra[i][0]);
        expect_bad_input(args, prune_extra[i][1]);
    }
    snprintf(args, sizeof args, "generate --model %s --tokens 1 --weights bf16 --device cuda", model);
    expect_bad_input(args, "--weights bf16 is for the CPU; --device cuda uploads its own bf16 copy");
    // a truncated weights file
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", model);
    write_text(path, "abc");
    snprintf(args, sizeof args, "forward --model %s --tokens 1 --out %s/o.npy", model, dir);
    expect_bad_input(args, "model.safetensors: truncated");
}

// Without a usable GPU, --device cuda says why in one line (bad input: the request cannot be met).
Test(cli, device_cuda_without_a_gpu_says_why) {
#ifdef ARBOR_HAVE_CUDA
    char why[256];
    if (cuda_device_count(why, sizeof why) > 0) cr_skip_test("a CUDA device is present");
    const char* phrase = "no CUDA device";
#else
    const char* phrase = "built without CUDA";
#endif
    init_tiny("");
    char args[2048];
    snprintf(args, sizeof args, "eval mmlu --model %s --data %s --out %s/mmlu --device cuda", model, dir, dir);
    expect_bad_input(args, phrase);
    snprintf(args, sizeof args, "distill --teacher %s --student %s --data %s/none.bin --out %s/d --device cuda", model,
             model, dir, dir);
    expect_bad_input(args, phrase);
}

// Replaces the first occurrence of `find` in the file by `repl` (same length keeps offsets valid);
// without `find`, truncates to truncate_to bytes, or when that is negative sets the header length huge.
static void patch_file(const char* path, const char* find, const char* repl, long truncate_to) {
    size_t len;
    Err e;
    char* buf = file_read_all(path, &len, &e);
    cr_assert_not_null(buf, "%s", e.msg);
    if (find) {
        char* at = memmem(buf, len, find, strlen(find));
        cr_assert_not_null(at, "%s not found in %s", find, path);
        size_t fl = strlen(find), rl = strlen(repl);
        char* out = malloc(len - fl + rl);
        memcpy(out, buf, (size_t)(at - buf));
        memcpy(out + (at - buf), repl, rl);
        memcpy(out + (at - buf) + rl, at + fl, len - (size_t)(at - buf) - fl);
        write_bytes(path, out, len - fl + rl);
        free(out);
    } else if (truncate_to >= 0) {
        write_bytes(path, buf, (size_t)truncate_to);
    } else {  // a header length of 2^40
        memcpy(buf, "\x00\x00\x00\x00\x00\x01\x00\x00", 8);
        write_bytes(path, buf, len);
    }
    free(buf);
}

Test(cli, every_bad_checkpoint_exits_2_with_one_line) {
    // tiny, F32, tied: the embedding is 512 x 64 x 4 = 131072 bytes, then input_layernorm (256 bytes)
    const struct {
        const char* file;
        const char* find;
        const char* repl;
        long truncate_to;
        const char* phrase;
    } cases[] = {
        {"model.safetensors", NULL, NULL, 100000, "past file size"},
        {"model.safetensors", NULL, NULL, 5, "truncated"},
        {"model.safetensors", NULL, NULL, -1, "runs past file size"},
        {"model.safetensors", "[131072,131328]", "[131071,131327]", 0, "overlap"},
        {"model.safetensors", "\"F32\"", "\"F99\"", 0, "unknown dtype 'F99'"},
        {"config.json", "\"intermediate_size\":\t192", "\"intermediate_size\":\t200", 0, "but config.json implies [200, 64]"},
        {"config.json", "\"num_hidden_layers\":\t4", "\"num_hidden_layers\":\t5", 0, "missing tensor 'model.layers.4."},
        {"config.json", "Qwen3ForCausalLM", "Qwen9ForCausalLM", 0, "unsupported architecture 'Qwen9ForCausalLM'"},
        {"config.json", "{", "[", 0, "malformed JSON"},
        {"config.json", NULL, NULL, 0, "names the architecture"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(model, sizeof model, "%s/bad%zu", dir, i);
        init_tiny("--dtype f32");
        char path[600], args[1400];
        snprintf(path, sizeof path, "%s/%s", model, cases[i].file);
        if (strcmp(cases[i].file, "config.json") == 0 && !cases[i].find)
            write_text(path, "{}");
        else
            patch_file(path, cases[i].find, cases[i].repl, cases[i].truncate_to);
        snprintf(args, sizeof args, "info --model %s", model);
        expect_bad_input(args, cases[i].phrase);
        snprintf(args, sizeof args, "generate --model %s --tokens 1 -n 2", model);
        expect_bad_input(args, cases[i].phrase);
    }
}

Test(cli, convert_round_trips_a_transformers_checkpoint) {
    char src[512], args[2048], out[600];
    fixture_dir(src, sizeof src, "qwen3_gqa_headdim_tied_bf16");
    snprintf(out, sizeof out, "%s/converted", dir);
    snprintf(args, sizeof args, "convert --model %s --out %s --dtype f32 --max-shard-bytes 50000", src, out);
    cr_assert_eq(run_arbor(args, NULL), 0);
    Model a, b;
    Err e;
    cr_assert_eq(model_load(&a, src, &e), 0, "%s", e.msg);
    cr_assert_eq(model_load(&b, out, &e), 0, "%s", e.msg);
    cr_expect_eq(memcmp(&a.cfg, &b.cfg, sizeof a.cfg), 0, "same config");
    cr_expect_arr_eq(a.arena, b.arena, a.table.n_floats * sizeof(float), "BF16 -> F32 is exact");
    model_free(&a);
    model_free(&b);
    snprintf(args, sizeof args, "convert --model %s --out %s", out, out);
    expect_bad_input(args, "--out must differ from --model");
}

Test(cli, tokenize_ids_decode_and_shards) {
    char tok[512];
    if (data_path(tok, sizeof tok, "qwen3-tokenizer/tokenizer.json") != 0) cr_skip_test("no Qwen3 tokenizer at %s", tok);
    data_path(tok, sizeof tok, "qwen3-tokenizer");
    char args[2048], out[512], in[512], shard[512];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(args, sizeof args, "tokenize --tokenizer %s --ids < %s/tokenizer/hello.txt", tok, ARBOR_FIXTURES);
    cr_assert_eq(run_arbor(args, out), 0);
    char* ids = slurp(out);
    cr_expect_str_eq(ids, "9707 1879 151643\n");
    free(ids);
    snprintf(in, sizeof in, "%s/ids.txt", dir);
    write_text(in, "9707 1879 151643");
    snprintf(args, sizeof args, "tokenize --tokenizer %s --decode < %s", tok, in);
    cr_assert_eq(run_arbor(args, out), 0);
    char* text = slurp(out);
    cr_expect_str_eq(text, "Hello world<|endoftext|>");
    free(text);
    // jsonl: one document per line, EOD after each
    snprintf(in, sizeof in, "%s/docs.jsonl", dir);
    write_text(in, "{\"text\": \"Hello world\"}\n\n{\"text\": \" Hello world\", \"id\": 2}\n");
    snprintf(shard, sizeof shard, "%s/docs.shard", dir);
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s --eod 2>/dev/null", tok, in, shard);
    cr_assert_eq(run_arbor(args, NULL), 0);
    Shard s;
    Err e;
    cr_assert_eq(shard_open(&s, shard, &e), 0, "%s", e.msg);
    int want[] = {9707, 1879, 151643, 21927, 1879, 151643};
    cr_assert_eq(s.n_tokens, 6);
    cr_expect_eq(s.n_docs, 2);
    for (int i = 0; i < 6; i++) cr_expect_eq(shard_token(&s, (uint64_t)i), want[i]);
    shard_close(&s);
    // bad input: one line naming file:line, no shard left behind
    write_text(in, "{\"text\": \"ok\"}\n{\"body\": \"no text field\"}\n");
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s/bad.shard", tok, in, dir);
    expect_bad_input(args, "docs.jsonl:2: no string field 'text'");
    write_text(in, "{\"text\": \"ok\"\n");
    expect_bad_input(args, "docs.jsonl:1: malformed JSON");
    snprintf(in, sizeof in, "%s/bad.txt", dir);
    write_text(in, "fine\nnot \xff utf-8\n");
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s/bad.shard", tok, in, dir);
    expect_bad_input(args, "bad.txt:2: not UTF-8");
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s/missing.txt --out %s/bad.shard", tok, dir, dir);
    expect_bad_input(args, "missing.txt: cannot open");
    snprintf(args, sizeof args, "%s/bad.shard", dir);
    cr_expect_neq(access(args, F_OK), 0, "no shard written on failure");
}

Test(cli, generate_from_a_text_prompt) {
    char tok_dir[512];
    if (data_path(tok_dir, sizeof tok_dir, "qwen3-tokenizer/tokenizer.json") != 0) cr_skip_test("no Qwen3 tokenizer");
    data_path(tok_dir, sizeof tok_dir, "qwen3-tokenizer");
    init_tiny("--vocab 151936 --layers 1");
    char args[2048], out[512];
    snprintf(out, sizeof out, "%s/gen.txt", dir);
    snprintf(args, sizeof args, "generate --model %s --tokenizer %s --prompt \"Once upon a time\" -n 6 --greedy", model, tok_dir);
    cr_assert_eq(run_arbor(args, out), 0);
    char* text = slurp(out);
    // the same through the library: encode, greedy ids, decode
    Tokenizer tok;
    Model m;
    Err e;
    cr_assert_eq(tokenizer_load(&tok, tok_dir, &e), 0, "%s", e.msg);
    cr_assert_eq(model_load(&m, model, &e), 0, "%s", e.msg);
    IntVec ids = {0};
    cr_assert_eq(tokenizer_encode(&tok, "Once upon a time", 16, &ids, &e), 0);
    cr_expect_eq(ids.len, 4);
    int gen[6], n, T = (int)ids.len;
    const int* p[1] = {ids.data};
    SampleOptions g = {.greedy = true, .stop_at_eos = true};
    cr_assert_eq(generate(&m, p, &T, 1, 6, &g, gen, &n, &e), 0);
    ByteVec want = {0};
    cr_assert_eq(tokenizer_decode(&tok, gen, (size_t)n, &want, &e), 0);
    bytevec_append(&want, "\n", 1);
    cr_expect_str_eq(text, want.data);
    free(want.data);
    free(ids.data);
    free(text);
    model_free(&m);
    tokenizer_free(&tok);
    snprintf(args, sizeof args, "generate --model %s --prompt hi", model);
    expect_bad_input(args, "no tokenizer.json");
    snprintf(args, sizeof args, "generate --model %s --prompt hi --tokens 1", model);
    expect_bad_input(args, "exactly one of --tokens and --prompt");
}

Test(cli, eval_mmlu_writes_csvs_and_refuses_bad_data) {
    char tok_dir[512];
    if (data_path(tok_dir, sizeof tok_dir, "qwen3-tokenizer/tokenizer.json") != 0) cr_skip_test("no Qwen3 tokenizer");
    data_path(tok_dir, sizeof tok_dir, "qwen3-tokenizer");
    init_tiny("--vocab 151936 --layers 1");
    char mmlu[512], path[700], args[3000], out[600];
    snprintf(mmlu, sizeof mmlu, "%s/mmlu", dir);
    const char* splits[] = {"test", "dev"};
    for (int i = 0; i < 2; i++) {
        Err e;
        snprintf(path, sizeof path, "%s/%s", mmlu, splits[i]);
        cr_assert_eq(make_dirs(path, &e), 0);
        snprintf(path, sizeof path, "%s/%s/anatomy_%s.csv", mmlu, splits[i], splits[i]);
        write_text(path, "Which bone?,femur,skull,\"rib, left\",ulna,A\nWhich organ?,heart,lung,liver,skin,D\n");
    }
    snprintf(out, sizeof out, "%s/mmlu_out", dir);
    snprintf(args, sizeof args, "eval mmlu --model %s --tokenizer %s --data %s --subjects anatomy --shots 1 --out %s 2>/dev/null",
             model, tok_dir, mmlu, out);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    snprintf(path, sizeof path, "%s/predictions.csv", out);
    char* pred = slurp(path);
    cr_expect(strncmp(pred, "subject,index,prediction,gold,correct,logprob_A", 47) == 0, "%s", pred);
    cr_expect(contains(pred, "\nanatomy,0,") && contains(pred, "\nanatomy,1,"), "%s", pred);
    free(pred);
    snprintf(path, sizeof path, "%s/summary.csv", out);
    char* summary = slurp(path);
    cr_expect(contains(summary, "overall,micro,2,"), "%s", summary);
    free(summary);
    snprintf(path, sizeof path, "%s/test/anatomy_test.csv", mmlu);
    write_text(path, "Which bone?,femur,skull,rib,ulna,A\nWhich organ?,heart,lung,liver,F\n");
    snprintf(args, sizeof args, "eval mmlu --model %s --tokenizer %s --data %s --subjects anatomy --shots 0 --out %s",
             model, tok_dir, mmlu, out);
    expect_bad_input(args, "anatomy_test.csv:2: expected 6 fields");
    snprintf(args, sizeof args, "eval mmlu --model %s --tokenizer %s --data %s --subjects anatomy --shots 9 --out %s",
             model, tok_dir, mmlu, out);
    expect_bad_input(args, "--shots '9' must be an integer in [0, 5]");
}

Test(cli, train_and_distill) {
    // a shard of random ids for the tiny model (vocab 512)
    char shard[512], out[512], args[3000], path[700];
    snprintf(shard, sizeof shard, "%s/d.shard", dir);
    write_test_shard(shard, 3000, 512, 1, NULL);
    Err e;
    init_tiny("--dtype f32");
    snprintf(out, sizeof out, "%s/run_train", dir);
    snprintf(args, sizeof args, "train --model %s --data %s --out %s --steps 4 --seq-len 16 --batch 2 --warmup 1 --lr 1e-2 "
             "--val-every 2 2>/dev/null", model, shard, out);
    cr_assert_eq(run_arbor(args, NULL), 0);
    snprintf(path, sizeof path, "%s/log.csv", out);
    char* log = slurp(path);
    cr_expect(strncmp(log, "step,loss,ce,kd,lr,grad_norm,tokens_per_s,val_loss,kd_weight\n1,", 63) == 0, "%s", log);
    cr_expect(contains(log, "\n4,"), "4 steps logged: %s", log);
    free(log);
    snprintf(path, sizeof path, "%s/model", out);
    Model trained;
    cr_assert_eq(model_load(&trained, path, &e), 0, "%s", e.msg);
    model_free(&trained);
    // distill a 2-layer student from the 4-layer model
    char student[600];
    snprintf(student, sizeof student, "%s/student", dir);
    snprintf(args, sizeof args, "init --arch tiny --layers 2 --seed 9 --dtype f32 --out %s 2>/dev/null", student);
    cr_assert_eq(run_arbor(args, NULL), 0);
    snprintf(out, sizeof out, "%s/run_distill", dir);
    snprintf(args, sizeof args, "distill --teacher %s --student %s --data %s --out %s --steps 3 --seq-len 16 --batch 2 "
             "--loss mix:0.5,kl --kd-temp 2 --t2 --kd-scale auto:2 2>/dev/null", model, student, shard, out);
    cr_assert_eq(run_arbor(args, NULL), 0);
    snprintf(path, sizeof path, "%s/train_state.bin", out);
    cr_expect_eq(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/log.csv", out);
    log = slurp(path);
    int rows = 0;  // every step logs the KD weight it used: 2 x its LM loss / its KD loss
    for (char* line = strchr(log, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        double loss, ce, kd, lr, gn, tps, w;
        char val[32];
        int step;
        cr_assert_eq(sscanf(line + 1, "%d,%lf,%lf,%lf,%lf,%lf,%lf,%31[^,],%lf", &step, &loss, &ce, &kd, &lr, &gn, &tps, val, &w), 9, "%s", line);
        cr_expect(fabs(w - 2 * ce / kd) <= 1e-4 * w, "step %d: kd weight %g, 2 ce/kd %g", step, w, 2 * ce / kd);
        rows++;
    }
    cr_expect_eq(rows, 3);
    free(log);
    // with an intermediate hidden-state loss, the layer map read from the student's lineage file
    snprintf(path, sizeof path, "%s/arbor_lineage.json", student);
    write_text(path, "{\"teacher_layers\": [1, 3]}");
    snprintf(args, sizeof args, "distill --teacher %s --student %s --data %s --out %s_h --steps 2 --seq-len 16 --batch 2 "
             "--hidden-loss cosine 2>/dev/null", model, student, shard, out);
    cr_assert_eq(run_arbor(args, NULL), 0);
    write_text(path, "{\"teacher_layers\": [1, 9]}");
    snprintf(args, sizeof args, "distill --teacher %s --student %s --data %s --out %s_h --hidden-loss mse", model, student,
             shard, out);
    expect_bad_input(args, "teacher_layers[1] is not a layer of the 4-layer teacher");
    snprintf(args, sizeof args, "distill --teacher %s --student %s --data %s --out %s --loss topk:0", model, student, shard, out);
    expect_bad_input(args, "loss 'topk:0'");
    // train has no teacher: the distillation options are refused, not ignored
    snprintf(args, sizeof args, "train --model %s --data %s --out %s --loss kl", model, shard, out);
    expect_bad_input(args, "unknown option '--loss'");
    snprintf(args, sizeof args, "train --model %s --data %s --out %s --teacher %s", model, shard, out, model);
    expect_bad_input(args, "unknown option '--teacher'");
    snprintf(args, sizeof args, "demo --entities -5");
    expect_bad_input(args, "--entities '-5'");
    snprintf(args, sizeof args, "demo --teacher-steps abc");
    expect_bad_input(args, "--teacher-steps 'abc'");
    snprintf(args, sizeof args, "train --model %s --data %s --out %s --seq-len 100000", model, shard, out);
    expect_bad_input(args, "fewer than two windows");
}

Test(cli, prune_writes_a_checkpoint_scores_and_lineage) {
    char shard[512], out[512], args[3000], path[700];
    snprintf(shard, sizeof shard, "%s/calib.shard", dir);
    write_test_shard(shard, 2048, 512, 2, NULL);
    Err e;
    init_tiny("--dtype f32");
    snprintf(out, sizeof out, "%s/pruned", dir);
    snprintf(args, sizeof args, "prune --model %s --calib %s --seq-len 32 --calib-windows 16 --strategy block --layers 3 "
             "--ffn 128 --heads 2 --kv-heads 1 --hidden 48 --out %s 2>/dev/null", model, shard, out);
    cr_assert_eq(run_arbor(args, NULL), 0);
    Model p;
    cr_assert_eq(model_load(&p, out, &e), 0, "%s", e.msg);
    cr_expect(p.cfg.n_layers == 3 && p.cfg.ffn == 128 && p.cfg.n_heads == 2 && p.cfg.n_kv_heads == 1 && p.cfg.hidden == 48);
    model_free(&p);
    const char* files[] = {"scores.json", "scores.txt", "arbor_lineage.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", out, files[i]);
        cr_expect_eq(access(path, F_OK), 0, "%s written", files[i]);
    }
    // the scores file serves a second prune without calibration
    char out2[600];
    snprintf(out2, sizeof out2, "%s2", out);
    snprintf(args, sizeof args, "prune --model %s --scores %s/scores.json --strategy bi --layers 2 --out %s 2>/dev/null", model,
             out, out2);
    cr_assert_eq(run_arbor(args, NULL), 0);
    // outputs: never the input, never over a checkpoint without --force
    snprintf(args, sizeof args, "prune --model %s --scores %s/scores.json --strategy bi --layers 2 --out %s", out2, out, out2);
    expect_bad_input(args, "is the input checkpoint");
    snprintf(args, sizeof args, "prune --model %s --scores %s/scores.json --strategy bi --layers 2 --out %s", model, out, out2);
    expect_bad_input(args, "already holds a checkpoint; give --force");
    snprintf(args, sizeof args, "prune --model %s --scores %s/scores.json --strategy bi --layers 2 --out %s --force 2>/dev/null",
             model, out, out2);
    cr_expect_eq(run_arbor(args, NULL), 0, "--force replaces it");
    snprintf(args, sizeof args, "init --arch tiny --out %s", out2);
    expect_bad_input(args, "already holds a checkpoint");
    // --force writes the new checkpoint beside the old and swaps them only when it is complete
    snprintf(args, sizeof args, "init --arch tiny --layers 2 --seed 5 --out %s --force 2>/dev/null", out2);
    cr_expect_eq(run_arbor(args, NULL), 0);
    {
        ModelConfig replaced;
        Err ce;
        cr_expect_eq(config_load(out2, &replaced, &ce), 0, "%s", ce.msg);
        cr_expect_eq(replaced.n_layers, 2, "the new checkpoint is in place");
        char parent[600], cmd2[800];
        snprintf(parent, sizeof parent, "%s", out2);
        *strrchr(parent, '/') = 0;
        snprintf(cmd2, sizeof cmd2, "ls %s | grep -c -E '\\.(new|old)\\.' > /dev/null", parent);
        cr_expect_neq(system(cmd2), 0, "no staging folder is left behind");
    }
    snprintf(args, sizeof args, "convert --model %s --out %s", model, out2);
    expect_bad_input(args, "already holds a checkpoint");
    // --search and ppl arguments are checked before any calibration
    snprintf(args, sizeof args, "prune --model %s --calib /nonexistent.shard --search --out %s_s", model, out);
    expect_bad_input(args, "--search needs --params, --ratio, --memory-mb or --tps");
    snprintf(args, sizeof args, "prune --model %s --calib %s --search --tps 10 --tps-device x100 --out %s_s", model, shard, out);
    expect_bad_input(args, "--tps-device must be h100, h200 or a100, not 'x100'");
    snprintf(args, sizeof args, "prune --model %s --calib %s --search --ratio 0.5 --tps-device h200 --out %s_s", model, shard, out);
    expect_bad_input(args, "--tps-device without --tps");
    snprintf(args, sizeof args, "prune --model %s --calib %s --search --memory-mb 1 --precision fp8 --out %s_s", model, shard, out);
    expect_bad_input(args, "--precision must be bf16 or fp32");
    snprintf(args, sizeof args, "prune --model %s --calib %s --search --ratio 0.5 --finalists 2 --data /nonexistent.shard --out %s_s",
             model, shard, out);
    expect_bad_input(args, "cannot read the distillation shard");
    // a memory budget, a tokens/s floor on an H200 and two finalists distilled, end to end: search.csv ranks
    // them after distillation
    snprintf(args, sizeof args, "prune --model %s --calib %s --seq-len 16 --calib-windows 4 --search --memory-mb 0.5 --kv-batch 2 "
             "--kv-context 64 --tps 1e5 --tps-device h200 --finalists 2 --finalist-steps 2 --finalist-batch 2 --layer-step 1 --hidden-step 16 --ffn-step 48 "
             "--max-depth-cut 0.5 --max-width-cut 0.5 "
             "--val-tokens 256 --out %s_f", model, shard, out);
    // ranked on the tokens they are distilled on (--val and --data both default to --calib): refused ...
    expect_bad_input(args, "prune: --finalists would be ranked on the tokens they are distilled on");
    // ... unless asked for, with a warning
    strcat(args, " --val-overlap 2> ");
    char warned[600];
    snprintf(warned, sizeof warned, "%s/warned.txt", dir);
    strcat(args, warned);
    cr_assert_eq(run_arbor(args, NULL), 0);
    char* said = slurp(warned);
    cr_expect(contains(said, "warning: the finalists are ranked by validation loss on the tokens they were distilled on"), "%s", said);
    cr_expect(contains(said, "the distilled winner (final rank 1) is ") && contains(said, "_f/rank-1/model"), "%s", said);
    free(said);
    snprintf(path, sizeof path, "%s_f/search.csv", out);
    char* csv = slurp(path);
    int rows = 0, finalists = 0;
    for (char* line = strchr(csv, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        int rank, layers, hidden, ffn, heads, rank_pruned;
        long long params;
        double mb, loss, tps, tps_lo, tps_hi;
        char score[32];
        cr_assert_eq(sscanf(line + 1, "%d,%d,%d,%d,%d,%lld,%lf,%lf,%lf,%lf,%lf,%d,%31s", &rank, &layers, &hidden, &ffn, &heads, &params,
                            &mb, &tps, &tps_lo, &tps_hi, &loss, &rank_pruned, score), 13, "%s", line + 1);
        cr_expect_leq(mb, 0.5, "within --memory-mb: %s", line + 1);
        cr_expect(tps >= 1e5 && tps_lo == tps && tps_hi == tps, "at least --tps, a prediction (no range): %s", line + 1);
        finalists += strcmp(score, "nan") != 0;
        cr_expect_eq(rank_pruned <= 2, rank <= 2, "the two finalists lead: %s", line + 1);
        rows++;
    }
    cr_expect_gt(rows, 2);
    cr_expect_eq(finalists, 2);
    free(csv);
    snprintf(path, sizeof path, "%s_f/rank-2/log.csv", out);
    cr_expect_eq(access(path, R_OK), 0);
    snprintf(path, sizeof path, "%s_f/search.csv", out);
    csv = slurp(path);
    cr_expect(contains(csv, ",rank_pruned,final_val_loss\n"), "%s", csv);
    free(csv);
    snprintf(args, sizeof args, "prune --model %s --calib %s --search --ratio 2 --out %s_s", model, shard, out);
    expect_bad_input(args, "--ratio '2' must be a number in");
    snprintf(args, sizeof args, "prune --model %s --search --ratio 0.5 --out %s_s", model, out);
    expect_bad_input(args, "--search needs importance scores");
    snprintf(args, sizeof args, "prune --model %s --calib %s --search --ratio 0.5 --val /nonexistent.shard --out %s_s", model,
             shard, out);
    expect_bad_input(args, "cannot read the validation shard");
    snprintf(args, sizeof args, "prune --model %s --scores %s/scores.json --strategy bi --layers 9 --out %s --force", model, out,
             out2);
    expect_bad_input(args, "--layers 9: the model has 4 layers");
    snprintf(args, sizeof args, "prune --model %s --scores %s/scores.json --ffn 999 --out %s --force", model, out, out2);
    expect_bad_input(args, "--ffn 999 is larger than the model's 192");
    snprintf(args, sizeof args, "prune --model %s --scores %s/scores.json --strategy bi --layers 2 --out %s_o", out, out, out2);
    expect_bad_input(args, "scores of another model");
    snprintf(path, sizeof path, "%s/empty.shard", dir);
    write_test_shard(path, 0, 512, 0, NULL);
    snprintf(args, sizeof args, "prune --model %s --calib %s --strategy bi --layers 2 --out %s_o", model, path, out2);
    expect_bad_input(args, "empty calibration data");
}

Test(cli, help_exits_0) {
    cr_expect_eq(run_arbor("--help", "/dev/null"), 0);
    const char* cmds[] = {"init", "info", "convert", "tokenize", "forward", "generate", "bench", "demo", "eval",
                          "eval mmlu", "eval ppl", "train", "distill", "prune"};
    for (int i = 0; i < 14; i++) {
        char args[128];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        cr_expect_eq(run_arbor(args, "/dev/null"), 0, "%s --help", cmds[i]);
    }
    // train and distill say different things: each lists only its own options
    char dir_[256], train_help[512], distill_help[512];
    make_temp_dir(dir_, sizeof dir_);
    snprintf(train_help, sizeof train_help, "%s/train.txt", dir_);
    snprintf(distill_help, sizeof distill_help, "%s/distill.txt", dir_);
    cr_assert_eq(run_arbor("train --help", train_help), 0);
    cr_assert_eq(run_arbor("distill --help", distill_help), 0);
    Err e;
    char* t = file_read_all(train_help, NULL, &e);
    char* d = file_read_all(distill_help, NULL, &e);
    cr_assert(t && d);
    cr_expect(!contains(t, "--teacher") && !contains(t, "--loss") && contains(t, "--model"), "%s", t);
    cr_expect(contains(d, "--teacher") && contains(d, "--loss") && !contains(d, "--model "), "%s", d);
    free(t), free(d);
    unlink(train_help), unlink(distill_help), rmdir(dir_);
}

Test(cli, a_full_disk_is_a_runtime_failure_not_bad_input) {
    char mnt[256], logs[256], args[1024], cmd[600];
    make_temp_dir(mnt, sizeof mnt);
    make_temp_dir(logs, sizeof logs);
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=64k tmpfs %s 2>/dev/null", mnt);
    if (system(cmd) != 0) cr_skip_test("cannot mount a small tmpfs here (needs root): the full-disk path is not exercised");
    snprintf(args, sizeof args, "init --arch tiny --out %s/m 2>%s/err.txt", mnt, logs);
    int rc = run_arbor(args, "/dev/null");
    char path[600];
    snprintf(path, sizeof path, "%s/m/config.json", mnt);
    int config_there = access(path, F_OK) == 0;
    snprintf(cmd, sizeof cmd, "umount %s", mnt);
    cr_assert_eq(system(cmd), 0);
    cr_expect_eq(rc, 1, "a full disk exits 1 (runtime), not 2 (bad input)");
    cr_expect(!config_there, "no checkpoint that looks complete");
    snprintf(path, sizeof path, "%s/err.txt", logs);
    char* err = slurp(path);
    cr_expect(contains(err, "No space left on device"), "%s", err);
    free(err);
}

// Options only some modes read, and options given twice: refused with one line, never silently dropped
// or overridden (issue 26, item 5)
Test(cli, options_a_mode_does_not_read_and_repeated_options_are_refused) {
    init_tiny("");
    char shard[400], args[3000];
    snprintf(shard, sizeof shard, "%s/data.shard", dir);
    write_test_shard(shard, 4000, 512, 1, NULL);
    expect_bad_input("bench --arch tiny --prompt-len 8 --prompt-len 16", "bench: option '--prompt-len' is given twice");
    expect_bad_input("bench --roofline --gpu h100 --arch tiny --weights bf16",
                     "bench: --weights has no effect with --roofline (nothing is measured; --weight-dtype sets its bytes per weight)");
    const char* prune_cases[][2] = {
        {"--search --ratio 0.5 --kv-batch 8", "prune: --kv-batch has no effect without --memory-mb or --tps"},
        {"--search --ratio 0.5 --kv-context 512", "prune: --kv-context has no effect without --memory-mb or --tps"},
        {"--search --ratio 0.5 --precision fp32", "prune: --precision has no effect without --memory-mb or --tps"},
        {"--search --memory-mb 5 --kv-batch 0", "--kv-batch '0' must be an integer in [1, 1048576]"},
        {"--search --memory-mb 5 --kv-context 0", "--kv-context '0' must be an integer in [1, 1073741824]"},
        {"--search --ratio 0.5 --finalist-batch 8", "prune: --finalist-batch has no effect without --finalists"},
        {"--search --ratio 0.5 --finalist-steps 8", "prune: --finalist-steps has no effect without --finalists"},
        {"--search --ratio 0.5 --data x.shard", "prune: --data has no effect without --finalists"},
        {"--kv-batch 2 --drop-layers 1", "prune: --kv-batch has no effect without --search"},
    };
    for (size_t i = 0; i < sizeof prune_cases / sizeof prune_cases[0]; i++) {
        snprintf(args, sizeof args, "prune --model %s --calib %s --out %s/p %s", model, shard, dir, prune_cases[i][0]);
        expect_bad_input(args, prune_cases[i][1]);
    }
    const char* distill_cases[][2] = {
        {"--loss ce --kd-temp 2", "distill: --kd-temp has no effect with a loss without a KD term (--loss ce)"},
        {"--loss ce --t2", "distill: --t2 has no effect with a loss without a KD term (--loss ce)"},
        {"--hidden-weight 0.5", "distill: --hidden-weight has no effect without --hidden-loss"},
        {"--loss topk:600", "distill: --loss topk:600: top-600 of a 512-token vocabulary is the whole of it (use kl)"},
        {"--steps 2 --steps 3", "distill: option '--steps' is given twice"},
    };
    for (size_t i = 0; i < sizeof distill_cases / sizeof distill_cases[0]; i++) {
        snprintf(args, sizeof args, "distill --teacher %s --student %s --data %s --out %s/d --steps 1 --seq-len 16 --batch 2 %s", model,
                 model, shard, dir, distill_cases[i][0]);
        if (strstr(distill_cases[i][0], "--steps 2")) {  // it names --steps itself
            snprintf(args, sizeof args, "distill --teacher %s --student %s --data %s --out %s/d --seq-len 16 --batch 2 %s", model, model,
                     shard, dir, distill_cases[i][0]);
        }
        expect_bad_input(args, distill_cases[i][1]);
    }
    // the defaults still hold when the options are not given: a measured --tps with bf16 matrices
    snprintf(args, sizeof args, "prune --model %s --calib %s --out %s/s --search --tps 1 --kv-batch 1 --kv-context 16 --val-tokens 256 "
             "--seq-len 16 --calib-windows 2 --layer-step 1 > /dev/null 2>&1", model, shard, dir);
    cr_expect_eq(run_arbor(args, NULL), 0, "%s", args);
}

// generate and forward follow one rule past max_position_embeddings: computed (as transformers does), with
// a warning naming the count, and the same logits either way
Test(cli, positions_past_the_trained_length_are_computed_with_a_warning) {
    init_tiny("");
    char cfg[400], args[2000], said[400], npy[400];
    snprintf(cfg, sizeof cfg, "%s/config.json", model);
    cJSON* c = read_json(cfg);
    cJSON_ReplaceItemInObject(c, "max_position_embeddings", cJSON_CreateNumber(8));
    Err e;
    cr_assert_eq(json_write_atomic(model, "config.json", c, &e), 0, "%s", e.msg);
    snprintf(said, sizeof said, "%s/said.txt", dir);
    snprintf(npy, sizeof npy, "%s/f.npy", dir);
    snprintf(args, sizeof args, "forward --model %s --tokens \"1 2 3 4 5 6 7 8 9 10\" --out %s 2> %s", model, npy, said);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    char* msg = slurp(said);
    cr_expect(contains(msg, "forward: warning: 10 positions, past the model's max_position_embeddings (8)"), "%s", msg);
    free(msg);
    snprintf(args, sizeof args, "generate --model %s --tokens 1,2,3,4,5,6 -n 4 --greedy 2> %s", model, said);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    msg = slurp(said);
    cr_expect(contains(msg, "generate: warning: 10 positions, past the model's max_position_embeddings (8)"), "%s", msg);
    free(msg);
    snprintf(args, sizeof args, "forward --model %s --tokens \"1 2 3\" --out %s 2> %s", model, npy, said);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    msg = slurp(said);
    cr_expect(!contains(msg, "warning"), "within the trained length: no warning: %s", msg);
    free(msg);
}
