// test_llama_family.c: a Llama-family checkpoint as HF builds SmolLM2 (tests/fixtures/llama_family, made by
// tools/make_llama_family_fixture.py): its own byte-level BPE tokenizer whose 17 added tokens reuse
// vocabulary ids 0-16, tied embeddings, bf16 on disk. The tokenizer and the logits against HF's, then the
// whole CLI path a user runs on it: tokenize (JSONL with NULs too), prune (depth and width), distill, eval
// ppl and mmlu, bench, sweep.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "models/file_io.h"
#include "models/forward.h"
#include "models/generate.h"
#include "models/safetensors.h"
#include "models/token_shard.h"
#include "models/tokenizer/tokenizer.h"

static char dir[256], fixture[700], model_dir[800], corpus[800];
static cJSON* ref;

static void setup(void) {
    make_temp_dir(dir, sizeof dir);
    snprintf(fixture, sizeof fixture, "%s/llama_family", fixtures_root());
    snprintf(model_dir, sizeof model_dir, "%s/model", fixture);
    snprintf(corpus, sizeof corpus, "%s/tokenizer/tinystories.txt", fixtures_root());
    char path[900];
    snprintf(path, sizeof path, "%s/reference.json", fixture);
    ref = read_json(path);
}

static void teardown(void) {
    cJSON_Delete(ref);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(llama_family, .init = setup, .fini = teardown);

static int* ints(const cJSON* arr, int* n) {
    *n = cJSON_GetArraySize(arr);
    int* v = malloc(sizeof(int) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) v[i] = cJSON_GetArrayItem(arr, i)->valueint;
    return v;
}

static void expect_ids(const Tokenizer* t, const char* text, size_t len, const cJSON* want, const char* what) {
    IntVec ids = {0};
    Err e;
    cr_assert_eq(tokenizer_encode(t, text, len, &ids, &e), 0, "%s: %s", what, e.msg);
    int n;
    int* w = ints(want, &n);
    int same = (int)ids.len == n;
    for (int i = 0; same && i < n; i++) same = ids.data[i] == w[i];
    cr_expect(same, "%s: %zu ids, HF %d", what, ids.len, n);
    free(w);
    free(ids.data);
}

Test(llama_family, tokenizer_is_hf_s_with_added_tokens_inside_the_vocabulary) {
    Tokenizer t;
    Err e;
    cr_assert_eq(tokenizer_load(&t, model_dir, &e), 0, "%s", e.msg);
    // the size: the largest id + 1 over vocabulary and added tokens (the 17 added reuse ids 0-16)
    cr_expect_eq(t.n_ids, cJSON_GetObjectItem(ref, "vocab_size_with_added")->valueint);
    cr_expect_eq(t.n_ids, 512);
    cr_expect_eq(t.eod_id, 0, "<|endoftext|> is vocabulary id 0");
    const cJSON* texts = cJSON_GetObjectItem(ref, "texts");
    const cJSON* ids = cJSON_GetObjectItem(ref, "ids");
    for (int i = 0; i < cJSON_GetArraySize(texts); i++) {
        const char* text = cJSON_GetArrayItem(texts, i)->valuestring;
        // the texts with NUL: cJSON cut them at the NUL; the fixture's texts 2 and 3 are "ab\0cd efg" and "\0hello"
        static const char nul2[] = "ab\0cd efg", nul3[] = "\0hello";
        const char* bytes = i == 2 ? nul2 : i == 3 ? nul3 : text;
        size_t len = i == 2 ? sizeof nul2 - 1 : i == 3 ? sizeof nul3 - 1 : strlen(text);
        char what[64];
        snprintf(what, sizeof what, "text %d", i);
        expect_ids(&t, bytes, len, cJSON_GetArrayItem(ids, i), what);
    }
    char* text = slurp(corpus);
    expect_ids(&t, text, 4000, cJSON_GetObjectItem(ref, "corpus_ids_head"), "the corpus' first 4000 bytes");
    free(text);
    tokenizer_free(&t);
    // the variant whose added tokens extend the vocabulary, as Qwen3's do
    char ext[900];
    snprintf(ext, sizeof ext, "%s/tokenizer_extended", fixture);
    cr_assert_eq(tokenizer_load(&t, ext, &e), 0, "%s", e.msg);
    cr_expect_eq(t.n_ids, cJSON_GetObjectItem(ref, "extended_vocab_size_with_added")->valueint);
    cr_expect_eq(t.n_ids, 514);
    tokenizer_free(&t);
}

Test(llama_family, logits_match_transformers) {
    Model m;
    load_model_at(&m, model_dir, NULL);
    cr_expect(m.cfg.tie_embeddings, "tied embeddings");
    cr_expect_eq(m.cfg.bos_token_id, 0);
    int T;
    int* prompt = ints(cJSON_GetObjectItem(ref, "prompt"), &T);
    int V = m.cfg.vocab;
    StFile f;
    Err e;
    char path[900];
    snprintf(path, sizeof path, "%s/reference.safetensors", fixture);
    cr_assert_eq(st_open(&f, path, &e), 0, "%s", e.msg);
    const StTensor* rt = st_find(&f, "prompt");
    cr_assert(rt && rt->shape[0] == T && rt->shape[1] == V);
    float* want = malloc(sizeof(float) * (size_t)T * V);
    cr_assert_eq(st_read_f32(&f, rt, want, &e), 0, "%s", e.msg);
    KVCache cache;
    RunState s;
    kvcache_create(&cache, &m.cfg, 1, T);
    runstate_create(&s, &m.cfg, T, T);
    float* got = malloc(sizeof(float) * (size_t)T * V);
    const int* prompts[1] = {prompt};
    cr_assert_eq(model_prefill(&m, &s, &cache, prompts, &T, 1, true, got, &e), 0, "%s", e.msg);
    double err = rel_l2(got, want, (size_t)T * V);
    cr_expect_leq(err, 1e-5, "prefill of %d tokens: rel L2 %.3g against transformers", T, err);
    free(got), free(want), free(prompt);
    runstate_free(&s);
    kvcache_free(&cache);
    st_close(&f);
    model_free(&m);
}

// the shard's ids and its header's vocabulary
static int* shard_ids(const char* path, int64_t* n, int* vocab) {
    Shard s;
    Err e;
    cr_assert_eq(shard_open(&s, path, &e), 0, "%s", e.msg);
    *vocab = s.vocab_size;
    int* ids = shard_read_tokens(&s, s.n_tokens, n);
    shard_close(&s);
    return ids;
}

Test(llama_family, jsonl_text_with_nul_is_tokenized_whole) {
    char in[400], out[400], args[2400];
    snprintf(in, sizeof in, "%s/docs.jsonl", dir);
    snprintf(out, sizeof out, "%s/docs.shard", dir);
    write_text(in, "{\"text\": \"ab\\u0000cd efg\"}\n{\"id\": 2, \"text\": \"\\u0000hello\"}\n");
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s 2>/dev/null", model_dir, in, out);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    int64_t n;
    int vocab, k2, k3;
    int* got = shard_ids(out, &n, &vocab);
    const cJSON* ids = cJSON_GetObjectItem(ref, "ids");
    int* a = ints(cJSON_GetArrayItem(ids, 2), &k2);
    int* b = ints(cJSON_GetArrayItem(ids, 3), &k3);
    cr_assert_eq(n, k2 + k3, "HF: %d + %d ids", k2, k3);
    for (int i = 0; i < k2; i++) cr_expect_eq(got[i], a[i]);
    for (int i = 0; i < k3; i++) cr_expect_eq(got[k2 + i], b[i]);
    free(got), free(a), free(b);
    // a \u escape that is not one (cJSON would read it as U+0000) is a malformed line, not a silent NUL
    write_text(in, "{\"text\": \"ok\"}\n{\"text\": \"bad \\u00zz\"}\n");
    char said[400];
    snprintf(said, sizeof said, "%s/said.txt", dir);
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s 2> %s", model_dir, in, out, said);
    cr_expect_eq(run_arbor(args, "/dev/null"), 2);
    char* msg = slurp(said);
    cr_expect(contains(msg, "docs.jsonl:2: malformed JSON"), "%s", msg);
    free(msg);
}

static void run_ok(const char* args) {
    char log[400], cmd[4400];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(cmd, sizeof cmd, "%s > %s 2>&1", args, log);
    int rc = run_arbor(cmd, NULL);
    char* said = slurp(log);
    cr_assert_eq(rc, 0, "arbor %s:\n%s", args, said);
    free(said);
}

static const char* const three_rows = "Which animal barks?,a dog,a cat,a fish,a bird,A\nWhat color is the sky?,green,blue,red,brown,B\n"
                                      "\"Lily said, \"\"hello\"\"\",yes,no,maybe,never,A\n";

// a one-subject MMLU folder in the original CSV layout: rows (CSV text) in both splits
static void write_mmlu_rows(const char* root, const char* rows) {
    const char* splits[] = {"dev", "test"};
    for (int i = 0; i < 2; i++) {
        char path[700];
        Err e;
        snprintf(path, sizeof path, "%s/%s", root, splits[i]);
        cr_assert_eq(make_dirs(path, &e), 0);
        snprintf(path, sizeof path, "%s/%s/anatomy_%s.csv", root, splits[i], splits[i]);
        write_text(path, rows);
    }
}

static void write_mmlu(const char* root) { write_mmlu_rows(root, three_rows); }

Test(llama_family, the_cli_path_runs_end_to_end) {
    char shard[400], args[4000], pruned[400], width[400], student[400], mmlu[400], out[400];
    snprintf(shard, sizeof shard, "%s/data.shard", dir);
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s --eod", model_dir, corpus, shard);
    run_ok(args);
    int64_t n;
    int vocab;
    free(shard_ids(shard, &n, &vocab));
    cr_expect_eq(vocab, 512, "the shard's vocabulary is the tokenizer's (was 512 + 17 = 529, refused by the model)");
    cr_expect_gt(n, 10000);
    snprintf(pruned, sizeof pruned, "%s/depth", dir);
    snprintf(args, sizeof args, "prune --model %s --calib %s --strategy bi --layers 2 --out %s", model_dir, shard, pruned);
    run_ok(args);
    snprintf(width, sizeof width, "%s/width", dir);
    snprintf(args, sizeof args, "prune --model %s --calib %s --ffn 96 --kv-heads 1 --out %s", model_dir, shard, width);
    run_ok(args);
    ModelConfig c;
    Err e;
    cr_assert_eq(config_load(width, &c, &e), 0, "%s", e.msg);
    cr_expect(c.ffn == 96 && c.n_kv_heads == 1 && c.tie_embeddings, "ffn %d kv %d tied %d", c.ffn, c.n_kv_heads, c.tie_embeddings);
    snprintf(student, sizeof student, "%s/student", dir);
    snprintf(args, sizeof args, "distill --teacher %s --student %s --data %s --out %s --steps 3 --seq-len 32 --batch 2", model_dir,
             pruned, shard, student);
    run_ok(args);
    snprintf(args, sizeof args, "eval ppl --model %s/model --data %s --seq-len 32", student, shard);
    run_ok(args);
    snprintf(mmlu, sizeof mmlu, "%s/mmlu", dir);
    write_mmlu(mmlu);
    snprintf(out, sizeof out, "%s/mmlu_out", dir);
    snprintf(args, sizeof args, "eval mmlu --model %s --data %s --out %s --shots 1 --subjects anatomy", model_dir, mmlu, out);
    run_ok(args);
    char path[700];
    snprintf(path, sizeof path, "%s/summary.csv", out);
    char* summary = slurp(path);
    cr_expect(contains(summary, "overall,micro,3,"), "%s", summary);
    free(summary);
    snprintf(args, sizeof args, "bench --model %s --prompt-len 8 --gen-len 4", model_dir);
    run_ok(args);
    // a sweep over it: depth and width cells, MMLU and perplexity, the tokenizer from the teacher's folder
    char cfg[400], text[4096];
    snprintf(cfg, sizeof cfg, "%s/sweep.ini", dir);
    snprintf(text, sizeof text,
             "[sweep]\nname = smol\nout = %s/results\n\n[teacher]\nmodel = %s\n\n[data]\ncalib = %s\ndistill = %s\nval = %s\n\n"
             "[prune]\ncalib_windows = 2\nseq_len = 32\n\n[distill]\nsteps = 2\nseq_len = 32\nbatch = 2\n\n"
             "[eval]\nmmlu = %s\nsubjects = anatomy\nshots = 1\nppl_seq_len = 32\nppl_tokens = 256\n\n[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n\n"
             "[matrix]\nstrategies = bi\nlayers = 2, 3\nffn = 96\n",
             dir, model_dir, shard, shard, shard, mmlu);
    write_text(cfg, text);
    snprintf(args, sizeof args, "sweep %s", cfg);
    run_ok(args);
    snprintf(path, sizeof path, "%s/results/smol/results.csv", dir);
    char* csv = slurp(path);
    int rows = 0;
    for (const char* p = csv; *p; p++) rows += *p == '\n';
    cr_expect_eq(rows, 1 + 3, "teacher and two pruned cells: %s", csv);
    cr_expect(contains(csv, ",bi-L2-ffn96,pruned,bi,") && contains(csv, ",bi-L3-ffn96,pruned,bi,"), "%s", csv);
    free(csv);
}

// The extending variant through the same path: a model whose vocabulary covers the two added ids
Test(llama_family, added_tokens_past_the_vocabulary_go_through_the_path_too) {
    char teacher[400], shard[400], args[4000], student[400];
    snprintf(teacher, sizeof teacher, "%s/teacher514", dir);
    snprintf(args, sizeof args, "init --arch tiny --layers 2 --hidden 64 --ffn 128 --heads 4 --kv-heads 2 --vocab 514 --out %s", teacher);
    run_ok(args);
    snprintf(args, sizeof args, "cp %s/tokenizer_extended/tokenizer.json %s/", fixture, teacher);
    cr_assert_eq(system(args), 0);
    // text holding the two added tokens, which take ids 512 and 513
    char in[400];
    snprintf(in, sizeof in, "%s/fim.txt", dir);
    char* text = slurp(corpus);
    FILE* f = fopen(in, "w");
    fprintf(f, "<|fim_prefix|>%.20000s<|fim_suffix|>", text);
    fclose(f);
    free(text);
    snprintf(shard, sizeof shard, "%s/fim.shard", dir);
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s", teacher, in, shard);
    run_ok(args);
    int64_t n;
    int vocab;
    int* ids = shard_ids(shard, &n, &vocab);
    cr_expect_eq(vocab, 514);
    cr_expect(ids[0] == 512 && ids[n - 1] == 513, "first %d, last %d", ids[0], ids[n - 1]);
    free(ids);
    snprintf(args, sizeof args, "prune --model %s --calib %s --strategy bi --layers 1 --out %s/p", teacher, shard, dir);
    run_ok(args);
    snprintf(student, sizeof student, "%s/s", dir);
    snprintf(args, sizeof args, "distill --teacher %s --student %s/p --data %s --out %s --steps 2 --seq-len 32 --batch 2", teacher, dir,
             shard, student);
    run_ok(args);
    snprintf(args, sizeof args, "eval ppl --model %s/model --data %s --seq-len 32", student, shard);
    run_ok(args);
}

// characters newer than PCRE2's Unicode tables are counted and named; text without them says nothing
Test(llama_family, characters_newer_than_the_regex_tables_are_reported) {
    char in[400], said[400], args[2400];
    snprintf(in, sizeof in, "%s/new.txt", dir);
    snprintf(said, sizeof said, "%s/said.txt", dir);
    write_text(in, "x\xf0\xb1\x8d\x90y don't \xf0\xb1\x8d\x91't");  // U+31350, U+31351: CJK Extension H (Unicode 15.0)
    snprintf(args, sizeof args, "tokenize --tokenizer %s --ids < %s 2> %s", model_dir, in, said);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    char* msg = slurp(said);
    cr_expect(contains(msg, "warning: 2 characters (the first U+31350) unassigned in PCRE2's Unicode 14.0.0 tables"), "%s", msg);
    free(msg);
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s/c.shard 2> %s", model_dir, corpus, dir, said);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    msg = slurp(said);
    cr_expect(!contains(msg, "warning"), "%s", msg);
    free(msg);
}

// --invalid-utf8: stop at the document (default), replace its ill-formed subparts with U+FFFD (the text
// Python's errors='replace' gives: test_text_pipeline checks that), or leave it out
Test(llama_family, invalid_utf8_is_refused_replaced_or_skipped) {
    char in[400], fixed[400], said[400], args[2400], out[400];
    snprintf(in, sizeof in, "%s/u.jsonl", dir);
    snprintf(fixed, sizeof fixed, "%s/fixed.jsonl", dir);
    snprintf(said, sizeof said, "%s/said.txt", dir);
    snprintf(out, sizeof out, "%s/u.shard", dir);
    write_text(in, "{\"text\": \"good\"}\n{\"text\": \"bad \xff\xe2\x82 x\"}\n{\"text\": \"ok\"}\n");
    write_text(fixed, "{\"text\": \"good\"}\n{\"text\": \"bad \xef\xbf\xbd\xef\xbf\xbd x\"}\n{\"text\": \"ok\"}\n");
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s 2> %s", model_dir, in, out, said);
    cr_expect_eq(run_arbor(args, "/dev/null"), 2);
    char* msg = slurp(said);
    cr_expect(contains(msg, "u.jsonl:2: not UTF-8 (byte 4 of the text"), "%s", msg);
    free(msg);
    int64_t n_rep, n_fix, n_skip;
    int vocab;
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s --invalid-utf8 replace 2> %s", model_dir, in, out, said);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    msg = slurp(said);
    cr_expect(contains(msg, "1 document not UTF-8: 2 ill-formed subparts replaced with U+FFFD"), "%s", msg);
    free(msg);
    int* rep = shard_ids(out, &n_rep, &vocab);
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s 2> /dev/null", model_dir, fixed, out);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    int* fix = shard_ids(out, &n_fix, &vocab);
    cr_expect(n_rep == n_fix && !memcmp(rep, fix, sizeof(int) * (size_t)n_fix), "replace tokenizes the repaired text");
    snprintf(args, sizeof args, "tokenize --tokenizer %s --in %s --out %s --invalid-utf8 skip 2> /dev/null", model_dir, in, out);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    int* skip = shard_ids(out, &n_skip, &vocab);
    Shard s;
    Err e;
    cr_assert_eq(shard_open(&s, out, &e), 0, "%s", e.msg);
    cr_expect_eq(s.n_docs, 2, "the bad document left out");
    shard_close(&s);
    cr_expect_lt(n_skip, n_fix);
    free(rep), free(fix), free(skip);
}

// the token count `eval mmlu --dry-run` predicts is what the run computes: shared prefixes once, cut
// contexts as cut (at 5 shots every context here is past the fixture's 256 positions)
Test(llama_family, mmlu_dry_run_counts_the_tokens_the_run_computes) {
    char mmlu[400], out[400], args[3000], got[400];
    snprintf(mmlu, sizeof mmlu, "%s/mmlu6", dir);
    char rows[1024];
    snprintf(rows, sizeof rows, "%sQ4 long question here about many things?,w,x,y,z,C\nQ5?,1,2,3,4,D\nQ6 what?,a,b,c,d,B\n", three_rows);
    write_mmlu_rows(mmlu, rows);
    snprintf(out, sizeof out, "%s/o", dir);
    snprintf(got, sizeof got, "%s/counts.txt", dir);
    const int shots[] = {0, 1, 5};
    for (int k = 0; k < 3; k++) {
        long counts[2] = {-1, -2};
        for (int dry = 0; dry < 2; dry++) {
            snprintf(args, sizeof args, "eval mmlu --model %s --data %s --subjects anatomy --shots %d --out %s %s 2>/dev/null", model_dir,
                     mmlu, shots[k], out, dry ? "--dry-run" : "");
            cr_assert_eq(run_arbor(args, got), 0, "%s", args);
            char* text = slurp(got);
            const char* at = strstr(text, "computed_tokens=");
            cr_assert_not_null(at, "%s", text);
            counts[dry] = atol(at + 16);
            free(text);
        }
        cr_expect_eq(counts[1], counts[0], "%d shots: the dry run predicts %ld computed tokens, the run computes %ld", shots[k],
                     counts[1], counts[0]);
    }
    char path[700];
    snprintf(path, sizeof path, "%s/summary.csv", out);
    char* summary = slurp(path);
    cr_expect(contains(summary, "overall,micro,6,") && contains(summary, ",5,256,tokens\n"), "%s", summary);
    free(summary);
}
