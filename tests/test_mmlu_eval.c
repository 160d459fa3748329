// test_mmlu_eval.c: the MMLU evaluator: prompts as lm-evaluation-harness builds them, agreement with
// lm-eval itself (tools/make_lm_eval_fixture.py) on a tiny random Qwen3, summaries, and bad input.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "mmlu/mmlu_eval.h"
#include "mmlu/subjects.h"
#include "mmlu/prompt.h"
#include "models/file_io.h"

Test(mmlu_prompt, matches_lm_eval_template) {
    MmluRecord dev[2] = {{"  Find 1+1. ", {"1", " 2", "3", "4"}, 1, 1}, {"Q2?\n", {"a", "b", "c", "d"}, 3, 2}};
    MmluRecord q = {"\xc2\xa0What?\t", {"x", "y", "z", "w "}, 0, 1};
    ByteVec text = {0};
    mmlu_prefix(&text, "high_school_us_history", dev, 0, 2);
    mmlu_example_text(&text, &q);
    cr_expect_str_eq(text.data,
                     "The following are multiple choice questions (with answers) about high school us history.\n\n"
                     "Find 1+1.\nA. 1\nB.  2\nC. 3\nD. 4\nAnswer: B\n\n"
                     "Q2?\nA. a\nB. b\nC. c\nD. d\nAnswer: D\n\n"
                     "What?\nA. x\nB. y\nC. z\nD. w \nAnswer:");
    text.len = 0;
    mmlu_prefix(&text, "anatomy", dev, 1, 0);  // zero-shot: the description, then the question
    mmlu_example_text(&text, &q);
    cr_expect_str_eq(text.data, "The following are multiple choice questions (with answers) about anatomy.\n\n"
                                "What?\nA. x\nB. y\nC. z\nD. w \nAnswer:");
    free(text.data);
}

static Tokenizer tok;
static int have_tok(void) {
    char dir[512];
    if (data_path(dir, sizeof dir, "qwen3-tokenizer/tokenizer.json") != 0) return 0;
    data_path(dir, sizeof dir, "qwen3-tokenizer");
    Err e;
    cr_assert_eq(tokenizer_load(&tok, dir, &e), 0, "%s", e.msg);
    return 1;
}

// The lm-eval fixture tests/fixtures/mmlu/NAME (the test skips without the tokenizer or MMLU data, whose
// folder goes to mmlu): its model and task: the config (the tiny preset with the fixture's vocabulary and
// layers), the subjects as a comma list, and in *seed the seed `arbor init` drew its weights from.
static cJSON* lm_eval_fixture(const char* name, char mmlu[512], ModelConfig* cfg, char* subjects, size_t n, uint64_t* seed) {
    if (!have_tok() || data_path(mmlu, 512, "mmlu") != 0) cr_skip_test("no Qwen3 tokenizer or MMLU data (ARBOR_DATA)");
    char path[512];
    snprintf(path, sizeof path, "%s/mmlu/%s", ARBOR_FIXTURES, name);
    cJSON* ref = read_json(path);
    const cJSON* mc = cJSON_GetObjectItem(ref, "model");
    Err e;
    cr_assert_eq(config_preset("tiny", cfg, &e), 0);
    cfg->vocab = cJSON_GetObjectItem(mc, "vocab")->valueint;
    cfg->n_layers = cJSON_GetObjectItem(mc, "layers")->valueint;
    subjects[0] = 0;
    const cJSON* s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(ref, "subjects"))
        snprintf(subjects + strlen(subjects), n - strlen(subjects), "%s%s", subjects[0] ? "," : "", s->valuestring);
    *seed = (uint64_t)cJSON_GetObjectItem(mc, "seed")->valueint;
    return ref;
}

Test(mmlu_eval, agrees_with_lm_evaluation_harness) {
    char mmlu[512], subjects[1024];
    ModelConfig cfg;
    Err e;
    uint64_t seed;
    cJSON* ref = lm_eval_fixture("lm_eval_reference.json", mmlu, &cfg, subjects, sizeof subjects, &seed);
    Model m;  // the same weights `arbor init --seed S` wrote for lm-eval: init is a pure function of the seed
    model_create(&m, &cfg);
    model_init_random(&m, seed);
    int batches[] = {1, 5};
    for (int bi = 0; bi < 2; bi++) {
        MmluOptions o = {cJSON_GetObjectItem(ref, "shots")->valueint, cJSON_GetObjectItem(ref, "limit")->valueint,
                         batches[bi], 0, "test", subjects, 0, MMLU_TRUNCATE_TOKENS};
        MmluResult r;
        cr_assert_eq(mmlu_evaluate(&m, &tok, mmlu, &o, &r, &e), 0, "%s", e.msg);
        const cJSON* qs = cJSON_GetObjectItem(ref, "questions");
        cr_assert_eq(r.n, cJSON_GetArraySize(qs));
        double worst = 0;
        int near_ties = 0, i = 0;
        const cJSON* q;
        cJSON_ArrayForEach(q, qs) {
            const MmluAnswer* a = &r.answers[i++];
            cr_assert_str_eq(mmlu_subject_name(a->subject), cJSON_GetObjectItem(q, "subject")->valuestring);
            cr_assert_eq(a->index, cJSON_GetObjectItem(q, "index")->valueint);
            cr_expect_eq(a->gold, cJSON_GetObjectItem(q, "gold")->valueint);
            double ll[4], best = -1e30, second = -1e30;
            for (int c = 0; c < 4; c++) {
                ll[c] = cJSON_GetArrayItem(cJSON_GetObjectItem(q, "loglik"), c)->valuedouble;
                worst = fmax(worst, fabs(ll[c] - a->logprob[c]));
                if (ll[c] > best) second = best, best = ll[c];
                else if (ll[c] > second) second = ll[c];
            }
            if (best - second < 2e-4) near_ties++;
            else cr_expect_eq(a->pred, cJSON_GetObjectItem(q, "pred")->valueint, "%s %d", mmlu_subject_name(a->subject), a->index);
        }
        cr_expect_leq(worst, 1e-4, "max |log-likelihood difference| %.3g", worst);
        cr_log_info("batch %d: %d questions, max |loglik diff| vs lm-eval %.2e, %d near-ties", batches[bi], r.n, worst, near_ties);
        mmlu_result_free(&r);
    }
    model_free(&m);
    tokenizer_free(&tok);
    cJSON_Delete(ref);
}

// Contexts longer than the model's positions, against lm-eval run with a small
// max_position_embeddings (tools/make_lm_eval_fixture.py): left truncation by tokens at lm-eval's
// boundary (a context of exactly max_length tokens is not cut; one token more is cut by one), and
// prompts that even zero-shot do not fit are cut, not fatal.
Test(mmlu_eval, long_prompts_truncate_as_lm_evaluation_harness) {
    char mmlu[512], subjects[1024];
    ModelConfig cfg;
    Err e;
    uint64_t seed;
    cJSON* ref = lm_eval_fixture("lm_eval_truncation.json", mmlu, &cfg, subjects, sizeof subjects, &seed);
    const cJSON* run;
    cJSON_ArrayForEach(run, cJSON_GetObjectItem(ref, "runs")) {
        cfg.max_positions = cJSON_GetObjectItem(run, "max_length")->valueint;
        Model m;
        model_create(&m, &cfg);
        model_init_random(&m, seed);
        MmluOptions o = {cJSON_GetObjectItem(ref, "shots")->valueint, cJSON_GetObjectItem(ref, "limit")->valueint, 2, 0, "test",
                         subjects, 0, MMLU_TRUNCATE_TOKENS};
        MmluResult r;
        cr_assert_eq(mmlu_evaluate(&m, &tok, mmlu, &o, &r, &e), 0, "max_length %d: %s", cfg.max_positions, e.msg);
        const cJSON* qs = cJSON_GetObjectItem(run, "questions");
        cr_assert_eq(r.n, cJSON_GetArraySize(qs));
        double worst = 0;
        int i = 0, cut = 0;
        const cJSON* q;
        cJSON_ArrayForEach(q, qs) {
            const MmluAnswer* a = &r.answers[i++];
            int ctx = cJSON_GetObjectItem(q, "context_tokens")->valueint;
            int want_cut = ctx > cfg.max_positions ? ctx - cfg.max_positions : 0;
            cut += want_cut > 0;
            cr_expect_eq(a->cut_tokens, want_cut, "max_length %d, %d-token context: cut %d, lm-eval %d", cfg.max_positions, ctx,
                         a->cut_tokens, want_cut);
            cr_expect_eq(a->shots_used, o.shots);
            for (int c = 0; c < 4; c++)
                worst = fmax(worst, fabs(cJSON_GetArrayItem(cJSON_GetObjectItem(q, "loglik"), c)->valuedouble - a->logprob[c]));
        }
        cr_expect_eq(r.n_truncated, cut);
        cr_expect_leq(worst, 1e-4, "max_length %d: max |loglik diff| %.3g", cfg.max_positions, worst);
        cr_log_info("max_length %d: %d of %d cut, max |loglik diff| vs lm-eval %.2e", cfg.max_positions, cut, r.n, worst);
        mmlu_result_free(&r);
        model_free(&m);
    }
    // a config.json without max_position_embeddings: the length lm-eval resolves (the transformers
    // class default of the architecture), never a guess
    const cJSON* fb;
    cJSON_ArrayForEach(fb, cJSON_GetObjectItem(ref, "max_length_without_max_position_embeddings")) {
        char dir[256], src[600], path[600];
        make_temp_dir(dir, sizeof dir);
        snprintf(src, sizeof src, "%s/hf/%s/config.json", ARBOR_FIXTURES, fb->string);
        cJSON* c = read_json(src);
        cJSON_DeleteItemFromObject(c, "max_position_embeddings");
        char* text = cJSON_Print(c);
        snprintf(path, sizeof path, "%s/config.json", dir);
        write_text(path, text);
        free(text);
        cJSON_Delete(c);
        ModelConfig got;
        cr_assert_eq(config_load(dir, &got, &e), 0, "%s", e.msg);
        cr_expect_eq(got.max_positions, fb->valueint, "%s: %d, lm-eval %d", fb->string, got.max_positions, fb->valueint);
    }
    cJSON_Delete(ref);
}

// A small MMLU directory: two subjects, edited per test.
static char dir[256];
static void write_subject(const char* split, const char* subject, const char* rows) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, split);
    Err e;
    make_dirs(path, &e);
    snprintf(path, sizeof path, "%s/%s/%s_%s.csv", dir, split, subject, split);
    write_text(path, rows);
}

static void small_mmlu(void) {
    make_temp_dir(dir, sizeof dir);
    const char* rows = "What is 2+2?,3,4,5,6,B\n\"Multi\nline\",a,b,c,d,D\n";
    write_subject("test", "anatomy", rows);
    write_subject("dev", "anatomy", rows);
    write_subject("test", "virology", rows);
    write_subject("dev", "virology", rows);
}

static void expect_refused(int shots, const char* subjects, const char* phrase) {
    Model m;
    ModelConfig cfg;
    Err e = {{0}, 0};
    config_preset("tiny", &cfg, &e);
    cfg.vocab = 151936;
    cfg.n_layers = 1;
    model_create(&m, &cfg);
    MmluOptions o = {shots, 0, 2, 0, "test", subjects, 0, MMLU_TRUNCATE_TOKENS};
    MmluResult r;
    cr_expect_eq(mmlu_evaluate(&m, &tok, dir, &o, &r, &e), -1, "should refuse: %s", phrase);
    cr_expect(contains(e.msg, phrase), "says '%s': %s", phrase, e.msg);
    model_free(&m);
}

Test(mmlu_eval, small_dir_summary_and_bad_input) {
    if (!have_tok()) cr_skip_test("no Qwen3 tokenizer (ARBOR_DATA)");
    small_mmlu();
    ModelConfig cfg;
    Err e;
    config_preset("tiny", &cfg, &e);
    cfg.vocab = 151936;
    cfg.n_layers = 1;
    Model m;
    model_create(&m, &cfg);
    model_init_random(&m, 1);
    MmluOptions o = {2, 0, 3, 0, "test", "anatomy,virology", 0, MMLU_TRUNCATE_TOKENS};
    MmluResult r;
    cr_assert_eq(mmlu_evaluate(&m, &tok, dir, &o, &r, &e), 0, "%s", e.msg);
    cr_expect_eq(r.n, 4);
    cr_expect_eq(r.n_truncated, 0);
    char out[512];
    snprintf(out, sizeof out, "%s/out", dir);
    cr_assert_eq(mmlu_write_results(&r, out, &e), 0, "%s", e.msg);
    int correct = 0;
    for (int i = 0; i < r.n; i++) correct += r.answers[i].pred == r.answers[i].gold;
    snprintf(out, sizeof out, "%s/out/summary.csv", dir);
    char* summary = file_read_all(out, NULL, &e);
    char want[128];
    snprintf(want, sizeof want, "overall,micro,4,%d,%.6f,", correct, correct / 4.0);
    cr_expect(contains(summary, want), "%s", summary);
    cr_expect(contains(summary, "category,stem,2,") && contains(summary, "category,other,2,"), "%s", summary);
    snprintf(want, sizeof want, ",%d,%d,tokens\n", r.shots, r.max_len);  // how the contexts were built, on every row
    cr_expect(contains(summary, "level,name,questions,correct,accuracy,shots,max_len,truncate\n") && contains(summary, want), "%s", summary);
    free(summary);
    mmlu_result_free(&r);
    // a context limit that leaves room for no shot: --truncate shots drops them from the front and counts it
    MmluOptions tight = {2, 0, 1, 70, "test", "anatomy", 0, MMLU_TRUNCATE_SHOTS};
    cr_assert_eq(mmlu_evaluate(&m, &tok, dir, &tight, &r, &e), 0, "%s", e.msg);
    cr_expect_eq(r.n_fewer_shots, 2);
    cr_expect_eq(r.n_truncated, 0);
    for (int i = 0; i < r.n; i++) cr_expect_lt(r.answers[i].shots_used, 2);
    mmlu_result_free(&r);
    // ... and one too short for even the zero-shot prompt cuts that by tokens, never ends the run
    tight.max_len = 8;
    cr_assert_eq(mmlu_evaluate(&m, &tok, dir, &tight, &r, &e), 0, "%s", e.msg);
    cr_expect_eq(r.n_fewer_shots, 2);
    cr_expect_eq(r.n_truncated, 2);
    for (int i = 0; i < r.n; i++) cr_expect(r.answers[i].shots_used == 0 && r.answers[i].cut_tokens > 0);
    mmlu_result_free(&r);
    // lm-eval's default keeps every shot and cuts tokens from the left
    tight = (MmluOptions){2, 0, 1, 70, "test", "anatomy", 0, MMLU_TRUNCATE_TOKENS};
    cr_assert_eq(mmlu_evaluate(&m, &tok, dir, &tight, &r, &e), 0, "%s", e.msg);
    cr_expect_eq(r.n_fewer_shots, 0);
    cr_expect_eq(r.n_truncated, 2);
    for (int i = 0; i < r.n; i++) cr_expect(r.answers[i].shots_used == 2 && r.answers[i].cut_tokens > 0);
    mmlu_result_free(&r);
    // a limit past the model's positions is refused, not silently lowered
    tight.max_len = cfg.max_positions + 1;
    cr_expect_eq(mmlu_evaluate(&m, &tok, dir, &tight, &r, &e), -1);
    cr_expect(contains(e.msg, "past the model's max_position_embeddings"), "%s", e.msg);
    model_free(&m);

    expect_refused(0, "anatomy,astrology", "'astrology' is not one of MMLU's 57 subjects");
    expect_refused(0, "anatomy,anatomy", "listed twice");
    expect_refused(0, NULL, "test/abstract_algebra_test.csv: missing");
    expect_refused(3, "anatomy", "dev/anatomy_dev.csv: 2 rows, fewer than --shots 3");
    write_subject("test", "virology", "q,a,b,c,d,B\nq,a,b,c,E\n");
    expect_refused(0, "virology", "virology_test.csv:2: expected 6 fields");
    write_subject("test", "virology", "q,a,b,c,d,E\n");
    expect_refused(0, "virology", "virology_test.csv:1: answer 'E' is not one of A, B, C, D");
    write_subject("test", "virology", "");
    expect_refused(0, "virology", "virology_test.csv: no records");
    write_subject("test", "virology", "q,a,b,c,d,B\n");
    char path[600];
    snprintf(path, sizeof path, "%s/dev/virology_dev.csv", dir);
    remove(path);
    expect_refused(1, "virology", "dev/virology_dev.csv: missing: --shots 1 needs the subject's dev file");
    write_subject("test", "astrology", "q,a,b,c,d,B\n");
    expect_refused(0, "virology", "astrology_test.csv: not an MMLU subject file");
    tokenizer_free(&tok);
}

// Subject lists read the same everywhere (eval --subjects, the sweep's [eval] subjects, prune
// --mmlu-subjects): commas and spaces between names; the sweep's check once split on both while the
// evaluation split on commas only, so "anatomy, virology" passed the config and failed the eval stage.
Test(mmlu_eval, subject_lists_split_on_commas_and_spaces) {
    int chosen[MMLU_N_SUBJECTS], n;
    Err e;
    cr_assert_eq(mmlu_subject_list("anatomy, virology,\tworld_religions", chosen, &n, &e), 0, "%s", e.msg);
    cr_expect(n == 3 && chosen[0] == mmlu_subject_index("anatomy") && chosen[1] == mmlu_subject_index("virology") &&
              chosen[2] == mmlu_subject_index("world_religions"));
    cr_expect_eq(mmlu_subject_list("anatomy, anatomy", chosen, &n, &e), -1);
    cr_expect(contains(e.msg, "'anatomy' is listed twice"), "%s", e.msg);
    cr_expect_eq(mmlu_subject_list(" , ", chosen, &n, &e), -1);
    cr_expect(contains(e.msg, "empty list"), "%s", e.msg);
    cr_expect_eq(mmlu_subject_list("anatomy,astrology", chosen, &n, &e), -1);
    cr_expect(contains(e.msg, "'astrology' is not one of MMLU's 57 subjects"), "%s", e.msg);
}
