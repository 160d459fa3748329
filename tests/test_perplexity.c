// test_perplexity.c: sliding-window perplexity against transformers (tools/make_ppl_fixture.py), in
// the library and through `arbor eval ppl` on a token shard.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evals/perplexity.h"
#include "helpers.h"
#include "models/file_io.h"
#include "models/token_shard.h"

static cJSON* ref;
static Model model;
static int tokens[1024], n_tokens;

static void setup(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/ppl/reference.json", ARBOR_FIXTURES);
    ref = read_json(path);
    n_tokens = 0;
    const cJSON* t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(ref, "tokens")) tokens[n_tokens++] = t->valueint;
    fixture_dir(path, sizeof path, "qwen3_gqa_headdim_tied_bf16");
    Err e;
    cr_assert_eq(model_load(&model, path, &e), 0, "%s", e.msg);
}
static void teardown(void) {
    model_free(&model);
    cJSON_Delete(ref);
}
TestSuite(perplexity, .init = setup, .fini = teardown);

Test(perplexity, matches_transformers_for_every_window_setting) {
    const cJSON* c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) {
        int L = cJSON_GetObjectItem(c, "seq_len")->valueint, S = cJSON_GetObjectItem(c, "stride")->valueint;
        double want = cJSON_GetObjectItem(c, "mean_nll")->valuedouble;
        int chunks[] = {256, 7};  // one call per window, and windows prefilled in chunks through the cache
        for (int k = 0; k < 2; k++) {
            PplOptions o = {L, S, 0, chunks[k]};
            PplResult r;
            Err e;
            cr_assert_eq(perplexity_eval(&model, tokens, n_tokens, &o, &r, &e), 0, "%s", e.msg);
            cr_expect_eq(r.n_predicted, cJSON_GetObjectItem(c, "predicted")->valueint);
            if (S < L) cr_expect_eq(r.n_predicted, n_tokens - 1, "overlapping windows score every token but the first");
            cr_expect(fabs(r.mean_nll - want) / want < 1e-5, "L %d S %d chunk %d: %.8f vs transformers %.8f", L, S,
                      chunks[k], r.mean_nll, want);
            cr_expect(fabs(r.perplexity - exp(r.mean_nll)) < 1e-9 * r.perplexity);
        }
    }
}

Test(perplexity, refuses_impossible_settings) {
    PplResult r;
    Err e;
    PplOptions bad_stride = {16, 17, 0, 8};
    cr_expect_eq(perplexity_eval(&model, tokens, n_tokens, &bad_stride, &r, &e), -1);
    cr_expect(contains(e.msg, "--stride"), "%s", e.msg);
    int big[3] = {1, 2, 999};
    PplOptions ok = {16, 16, 0, 8};
    cr_expect_eq(perplexity_eval(&model, big, 3, &ok, &r, &e), -1);
    cr_expect(contains(e.msg, "token 2 is 999, outside the model's vocabulary of 256"), "%s", e.msg);
}

Test(perplexity, cli_on_a_token_shard) {
    char dir[256], shard[512], args[2048], out[512], model_dir[512];
    make_temp_dir(dir, sizeof dir);
    snprintf(shard, sizeof shard, "%s/t.shard", dir);
    write_test_shard(shard, n_tokens, 256, 0, tokens);
    Err e;
    fixture_dir(model_dir, sizeof model_dir, "qwen3_gqa_headdim_tied_bf16");
    snprintf(out, sizeof out, "%s/ppl.txt", dir);
    snprintf(args, sizeof args, "eval ppl --model %s --data %s --seq-len 32 --stride 8 2>/dev/null", model_dir, shard);
    cr_assert_eq(run_arbor(args, out), 0);
    char* text = file_read_all(out, NULL, &e);
    cr_assert_not_null(text);
    const char* at = strstr(text, "mean_nll=");
    cr_assert_not_null(at, "%s", text);
    double got = atof(at + 9);
    const cJSON* c = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "cases"), 1);  // (32, 8)
    double want = cJSON_GetObjectItem(c, "mean_nll")->valuedouble;
    cr_expect(fabs(got - want) / want < 1e-5, "%.6f vs %.6f", got, want);
    cr_expect(contains(text, "device=cpu\nweights=fp32\n"), "%s", text);
    free(text);
    // --weights bf16 on this BF16 checkpoint keeps its matrices bit for bit: the same perplexity, and
    // the output says which weights ran
    snprintf(args, sizeof args, "eval ppl --model %s --data %s --seq-len 32 --stride 8 --weights bf16 2>/dev/null", model_dir, shard);
    cr_assert_eq(run_arbor(args, out), 0);
    text = file_read_all(out, NULL, &e);
    cr_assert_not_null(text);
    at = strstr(text, "mean_nll=");
    cr_assert_not_null(at, "%s", text);
    got = atof(at + 9);
    cr_expect(fabs(got - want) / want < 1e-5, "bf16 weights: %.6f vs %.6f", got, want);
    cr_expect(contains(text, "weights=bf16\n"), "%s", text);
    free(text);
    snprintf(args, sizeof args, "eval ppl --model %s --data %s --seq-len 32 --stride 40 2>/dev/null", model_dir, shard);
    cr_expect_eq(run_arbor(args, "/dev/null"), 2);
}
