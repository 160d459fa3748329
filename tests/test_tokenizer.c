// test_tokenizer.c: arbor's Qwen3 tokenizer against Hugging Face tokenizers (fixtures made by
// tools/make_tokenizer_fixtures.py): identical ids for every hard case, every MMLU question and choice,
// and every TinyStories line; published test vectors; the vocab.json + merges.txt form; round trips.
// Needs the real tokenizer from ARBOR_DATA (../shared/data); skips with a message when absent.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "mmlu/mmlu_csv.h"
#include "models/file_io.h"
#include "models/tokenizer/tokenizer.h"

static Tokenizer tok;
static char tok_dir[512];

static void load(void) {
    if (data_path(tok_dir, sizeof tok_dir, "qwen3-tokenizer/tokenizer.json") != 0)
        cr_skip_test("no Qwen3 tokenizer at %s (set ARBOR_DATA)", tok_dir);
    data_path(tok_dir, sizeof tok_dir, "qwen3-tokenizer");
    Err e;
    cr_assert_eq(tokenizer_load(&tok, tok_dir, &e), 0, "%s", e.msg);
}
static void unload(void) {
    if (tok.n_ids) tokenizer_free(&tok);
}
TestSuite(tokenizer, .init = load, .fini = unload);

// the fixtures' hash of groups of ids (helpers.h)
static uint32_t id_hash(IntVec* groups, int n) {
    IdHash h = {0};
    for (int g = 0; g < n; g++) id_hash_add(&h, groups[g].data, groups[g].len);
    return id_hash_value(&h);
}

static IntVec encode(const char* s, size_t n) {
    IntVec v = {0};
    Err e;
    cr_assert_eq(tokenizer_encode(&tok, s, n, &v, &e), 0, "%s", e.msg);
    return v;
}

static void expect_ids(const char* text, const int* want, size_t n) {
    IntVec v = encode(text, strlen(text));
    cr_expect_eq(v.len, n, "'%s': %zu ids, want %zu", text, v.len, n);
    if (v.len == n) cr_expect_arr_eq(v.data, want, n * sizeof(int), "'%s'", text);
    free(v.data);
}

Test(tokenizer, published_test_vectors) {
    expect_ids("Hello world", (int[]){9707, 1879}, 2);
    expect_ids(" Hello world", (int[]){21927, 1879}, 2);
    expect_ids("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
               (int[]){151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271}, 13);
    expect_ids("\xcf\x92\xcc\x81", (int[]){149493}, 1);  // NFC: U+03D2 U+0301 -> U+03D3
    expect_ids("\xcf\x93", (int[]){149493}, 1);
    cr_expect_eq(tok.n_ids, 151669);
    cr_expect_eq(tok.eod_id, 151643);
}

static int hex_val(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

Test(tokenizer, hard_cases_match_tokenizers) {
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer/hard_cases.json", ARBOR_FIXTURES);
    cJSON* root = read_json(path);
    const cJSON* c;
    int n = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char* name = cJSON_GetObjectItem(c, "name")->valuestring;
        const char* hex = cJSON_GetObjectItem(c, "hex")->valuestring;
        size_t len = strlen(hex) / 2;
        char* raw = malloc(len + 1);
        for (size_t i = 0; i < len; i++) raw[i] = (char)(hex_val(hex[2 * i]) << 4 | hex_val(hex[2 * i + 1]));
        const cJSON* ids = cJSON_GetObjectItem(c, "ids");
        IntVec v = {0};
        Err e;
        int rc = tokenizer_encode(&tok, raw, len, &v, &e);
        if (cJSON_IsNull(ids)) {
            cr_expect_eq(rc, -1, "%s: invalid UTF-8 must be refused", name);
            cr_expect(contains(e.msg, "invalid UTF-8 at byte"), "%s: %s", name, e.msg);
        } else {
            cr_assert_eq(rc, 0, "%s: %s", name, e.msg);
            cr_expect_eq((int)v.len, cJSON_GetArraySize(ids), "%s: %zu ids, tokenizers %d", name, v.len,
                         cJSON_GetArraySize(ids));
            for (int i = 0; i < (int)v.len && i < cJSON_GetArraySize(ids); i++)
                cr_expect_eq(v.data[i], cJSON_GetArrayItem(ids, i)->valueint, "%s: id %d", name, i);
        }
        free(v.data);
        free(raw);
        n++;
    }
    cr_expect_gt(n, 25);
    cJSON_Delete(root);
}

Test(tokenizer, every_mmlu_question_and_choice_matches_tokenizers) {
    char mmlu[512], path[1024], fixture[512];
    if (data_path(mmlu, sizeof mmlu, "mmlu") != 0) cr_skip_test("no MMLU data at %s", mmlu);
    snprintf(fixture, sizeof fixture, "%s/tokenizer/mmlu.txt", ARBOR_FIXTURES);
    Err e;
    char* text = file_read_all(fixture, NULL, &e);
    cr_assert_not_null(text, "%s", e.msg);
    int files = 0, records = 0, mismatches = 0;
    for (char* line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char rel[256];
        int n_records, n_tokens, off;
        cr_assert_eq(sscanf(line, "%255s %d %d %n", rel, &n_records, &n_tokens, &off), 3);
        const char* hashes = line + off;
        snprintf(path, sizeof path, "%s/%s", mmlu, rel);
        MmluFile f;
        cr_assert_eq(mmlu_csv_read(path, &f, &e), 0, "%s", e.msg);
        cr_assert_eq(f.n, n_records, "%s: %d records, Python's csv %d", rel, f.n, n_records);
        int tokens = 0;
        for (int r = 0; r < f.n; r++) {
            IntVec g[5] = {encode(f.records[r].question, strlen(f.records[r].question))};
            for (int k = 0; k < 4; k++) g[1 + k] = encode(f.records[r].choices[k], strlen(f.records[r].choices[k]));
            for (int k = 0; k < 5; k++) tokens += (int)g[k].len;
            char got[9];
            snprintf(got, sizeof got, "%08x", id_hash(g, 5));
            if (strncmp(got, hashes + 9 * r, 8) != 0) {
                mismatches++;
                cr_log_error("%s record %d (line %d) differs from tokenizers", rel, r, f.records[r].line);
            }
            for (int k = 0; k < 5; k++) free(g[k].data);
        }
        cr_expect_eq(tokens, n_tokens, "%s: %d tokens, tokenizers %d", rel, tokens, n_tokens);
        records += f.n;
        files++;
        mmlu_csv_free(&f);
    }
    free(text);
    cr_expect_eq(files, 171);
    cr_expect_eq(records, 285 + 1531 + 14042);
    cr_expect_eq(mismatches, 0, "%d MMLU records tokenize differently", mismatches);
}

Test(tokenizer, tinystories_matches_tokenizers_and_round_trips) {
    char path[512], fixture[512];
    if (data_path(path, sizeof path, "corpus/tinystories-valid-slice/tinystories_val.txt") != 0)
        cr_skip_test("no TinyStories slice at %s", path);
    snprintf(fixture, sizeof fixture, "%s/tokenizer/tinystories.txt", ARBOR_FIXTURES);
    Err e;
    size_t len;
    char* text = file_read_all(path, &len, &e);
    char* ref = file_read_all(fixture, NULL, &e);
    cr_assert(text && ref);
    char* saveptr;
    strtok_r(ref, "\n", &saveptr);  // comment line
    int want_total = atoi(strtok_r(NULL, "\n", &saveptr));
    IntVec all = encode(text, len);
    cr_expect_eq((int)all.len, want_total, "%zu tokens, tokenizers %d", all.len, want_total);
    ByteVec back = {0};
    cr_assert_eq(tokenizer_decode(&tok, all.data, all.len, &back, &e), 0, "%s", e.msg);
    cr_expect(back.len == len && memcmp(back.data, text, len) == 0, "decode(encode(text)) == text");
    int line_no = 0, mismatches = 0;
    for (char *p = text, *end = text + len; p <= end; line_no++) {
        char* nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        IntVec v = encode(p, n);
        char got[9];
        snprintf(got, sizeof got, "%08x", id_hash(&v, 1));
        const char* want = strtok_r(NULL, "\n", &saveptr);
        if (!want || strcmp(got, want) != 0) mismatches++;
        free(v.data);
        if (!nl) break;
        p = nl + 1;
    }
    cr_expect_eq(mismatches, 0, "%d of %d lines differ", mismatches, line_no);
    cr_expect_gt(line_no, 8000);
    free(all.data);
    free(back.data);
    free(text);
    free(ref);
}

Test(tokenizer, vocab_and_merges_form_matches_tokenizer_json) {
    // the same files without tokenizer.json: copy vocab.json, merges.txt, tokenizer_config.json
    char dir[256];
    make_temp_dir(dir, sizeof dir);
    const char* files[] = {"vocab.json", "merges.txt", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) {
        char src[1024], dst[512];
        snprintf(src, sizeof src, "%s/%s", tok_dir, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        size_t len;
        Err e;
        char* s = file_read_all(src, &len, &e);
        cr_assert_not_null(s, "%s", e.msg);
        write_bytes(dst, s, len);
        free(s);
    }
    Tokenizer slow;
    Err e;
    cr_assert_eq(tokenizer_load(&slow, dir, &e), 0, "%s", e.msg);
    const char* texts[] = {"Hello world", "Cafe\xcc\x81 <|im_start|>x<|im_end|>", "  123 it's\n\n\tok 我爱北京"};
    for (int i = 0; i < 3; i++) {
        IntVec a = encode(texts[i], strlen(texts[i])), b = {0};
        cr_assert_eq(tokenizer_encode(&slow, texts[i], strlen(texts[i]), &b, &e), 0);
        cr_expect_eq(a.len, b.len);
        cr_expect_arr_eq(a.data, b.data, a.len * sizeof(int));
        free(a.data);
        free(b.data);
    }
    tokenizer_free(&slow);
}

Test(tokenizer, bad_files_are_refused_by_name) {
    char dir[256], path[512];
    make_temp_dir(dir, sizeof dir);
    Tokenizer t;
    Err e;
    cr_expect_eq(tokenizer_load(&t, dir, &e), -1);
    cr_expect(contains(e.msg, "no tokenizer.json"), "%s", e.msg);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_text(path, "{\"model\": {\"type\": \"Unigram\"}}");
    cr_expect_eq(tokenizer_load(&t, dir, &e), -1);
    cr_expect(contains(e.msg, "tokenizer.json: model type 'Unigram' is not supported"), "%s", e.msg);
    write_text(path, "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}, \"unk_token\": \"[UNK]\"},"
                     " \"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"}}");
    cr_expect_eq(tokenizer_load(&t, dir, &e), -1);
    cr_expect(contains(e.msg, "unk_token '[UNK]' is not in the vocabulary"), "%s", e.msg);
    write_text(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a a\"]},"
                     " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}");
    cr_expect_eq(tokenizer_load(&t, dir, &e), -1);
    cr_expect(contains(e.msg, "makes a token not in the vocabulary"), "%s", e.msg);
    write_text(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Metaspace\"}}");
    cr_expect_eq(tokenizer_load(&t, dir, &e), -1);
    cr_expect(contains(e.msg, "pre_tokenizer 'Metaspace' is not supported"), "%s", e.msg);
    write_text(path, "{\"model\": ");
    cr_expect_eq(tokenizer_load(&t, dir, &e), -1);
    cr_expect(contains(e.msg, "malformed JSON"), "%s", e.msg);
}

Test(word_level, whitespace_words_unk_and_added_tokens) {
    char dir[256], path[512];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_text(path, "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"[UNK]\": 0, \"the\": 1, \"color\": 2, \"A\": 3,"
                     " \"Answer:\": 4}, \"unk_token\": \"[UNK]\"}, \"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"},"
                     " \"normalizer\": null, \"added_tokens\": [{\"id\": 5, \"content\": \"<|endoftext|>\", \"special\": true}]}");
    Tokenizer t;
    Err e;
    cr_assert_eq(tokenizer_load(&t, dir, &e), 0, "%s", e.msg);
    cr_expect_eq(t.kind, TOKENIZER_WORD_LEVEL);
    IntVec v = {0};
    const char* text = "the  color\nof Answer: A<|endoftext|>the";
    cr_assert_eq(tokenizer_encode(&t, text, strlen(text), &v, &e), 0);
    int want[] = {1, 2, 0, 4, 3, 5, 1};
    cr_assert_eq(v.len, 7);
    cr_expect_arr_eq(v.data, want, sizeof want);
    ByteVec out = {0};
    cr_assert_eq(tokenizer_decode(&t, v.data, v.len, &out, &e), 0);
    cr_expect_str_eq(out.data, "the color [UNK] Answer: A <|endoftext|> the");
    // lm-eval's continuation rule: the answer letter after "Answer:" is one token
    IntVec ctx = {0}, whole = {0};
    tokenizer_encode(&t, "Answer:", 7, &ctx, &e);
    tokenizer_encode(&t, "Answer: A", 9, &whole, &e);
    cr_expect_eq(whole.len, ctx.len + 1);
    free(v.data), free(out.data), free(ctx.data), free(whole.data);
    tokenizer_free(&t);
}

// hostile or merely unusual tokenizer.json files (issue 13): refused by name, never a use after free or a
// giant allocation
static int load_json_text(const char* json, Tokenizer* t, Err* e) {
    char dir[256], path[512];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_text(path, json);
    int rc = tokenizer_load(t, dir, e);
    unlink(path);
    rmdir(dir);
    return rc;
}

Test(tokenizer, duplicate_entries_and_absurd_ids_are_refused) {
    Tokenizer t;
    Err e;
    cr_expect_eq(load_json_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"a\":0},\"merges\":[]},"
                                "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
                                &t, &e),
                 -1);
    cr_expect(contains(e.msg, "'a'") && contains(e.msg, "tokenizer.json"), "%s", e.msg);
    cr_expect_eq(load_json_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]},"
                                "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
                                &t, &e),
                 -1);
    cr_expect(contains(e.msg, "id 0 is given to both"), "%s", e.msg);
    cr_expect_eq(load_json_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":10000000000},\"merges\":[]},"
                                "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
                                &t, &e),
                 -1);
    cr_expect(contains(e.msg, "not a whole number in [0, 65537)"), "%s", e.msg);
    cr_expect_eq(load_json_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":2000000000},\"merges\":[]},"
                                "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
                                &t, &e),
                 -1, "a 2e9 id is refused at once, not allocated");
    cr_expect_eq(load_json_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1.5},\"merges\":[]},"
                                "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
                                &t, &e),
                 -1);
    cr_expect_eq(load_json_text("{\"model\":{\"type\":\"WordLevel\",\"vocab\":{\"[UNK]\":0},\"unk_token\":\"[UNK]\"},"
                                "\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},\"normalizer\":null,"
                                "\"added_tokens\":[{\"id\":3000000000,\"content\":\"x\"}]}",
                                &t, &e),
                 -1);
}

Test(word_level, tokens_in_both_the_vocab_and_added_tokens_load) {
    // Hugging Face's ordinary WordLevel layout: [UNK] and [PAD] in model.vocab and in added_tokens
    Tokenizer t;
    Err e;
    cr_assert_eq(load_json_text("{\"model\":{\"type\":\"WordLevel\",\"vocab\":{\"[UNK]\":0,\"[PAD]\":1,\"hi\":2},"
                                "\"unk_token\":\"[UNK]\"},\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},\"normalizer\":null,"
                                "\"added_tokens\":[{\"id\":0,\"content\":\"[UNK]\",\"special\":true},"
                                "{\"id\":1,\"content\":\"[PAD]\",\"special\":true}]}",
                                &t, &e),
                 0, "%s", e.msg);
    IntVec v = {0};
    const char* text = "hi [PAD] bye";
    cr_assert_eq(tokenizer_encode(&t, text, strlen(text), &v, &e), 0, "%s", e.msg);
    int want[] = {2, 1, 0};
    cr_assert_eq(v.len, 3);
    cr_expect_arr_eq(v.data, want, sizeof want);
    cr_expect_eq(strmap_get(&t.vocab, "hi", 2), 2, "the vocabulary map still reads its keys");
    free(v.data);
    tokenizer_free(&t);
}

// tokenizers 0.23.3 gives added tokens their ids itself (the file's "id" only warns): these expectations
// are what Tokenizer.from_str(...).token_to_id gave for the same two files
Test(tokenizer, added_token_ids_are_assigned_as_tokenizers_does) {
    static const char* head = "{\"model\":{\"type\":\"BPE\",\"merges\":[],\"vocab\":";
    static const char* pre = ",\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}";
    struct {
        const char* vocab;
        const char* added;
        int want[3];
    } cases[] = {
        {"{\"a\":0,\"b\":1,\"c\":2}}", "[{\"id\":10,\"content\":\"<X>\"},{\"id\":3,\"content\":\"<Y>\"},{\"id\":7,\"content\":\"<Z>\"}]", {3, 4, 5}},
        {"{\"a\":0,\"c\":5}}", "[{\"id\":6,\"content\":\"<X>\"},{\"id\":9,\"content\":\"c\"},{\"id\":1,\"content\":\"<Y>\"}]", {2, 5, 3}},
    };
    for (int c = 0; c < 2; c++) {
        char json[1024];
        snprintf(json, sizeof json, "%s%s,\"added_tokens\":%s%s", head, cases[c].vocab, cases[c].added, pre);
        Tokenizer t;
        Err e;
        cr_assert_eq(load_json_text(json, &t, &e), 0, "%s", e.msg);
        cr_assert_eq(t.n_added, 3);
        for (int k = 0; k < 3; k++) cr_expect_eq(t.added[k].id, cases[c].want[k], "case %d token %d: id %d", c, k, t.added[k].id);
        tokenizer_free(&t);
    }
}

// what tokenizers would do differently, or what arbor cannot run, is refused with the file and the name
Test(tokenizer, unsupported_pipeline_steps_and_options_are_refused_by_name) {
    static const char* bpe = "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]";
    static const char* bl = "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}";
    struct {
        const char* model_extra;
        const char* rest;
        const char* want;
    } cases[] = {
        {"", "\"normalizer\":{\"type\":\"BertNormalizer\"}," , "normalizer 'BertNormalizer' is not supported"},
        {"", "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Precompiled\"}]},",
         "normalizer 'Precompiled' is not supported"},
        {"", "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\"},{\"type\":\"Metaspace\"}]}}",
         "pre_tokenizer 'Metaspace' is not supported"},
        {"", "\"pre_tokenizer\":{\"type\":\"Digits\"}}", "needs a ByteLevel pre-tokenizer"},
        {"", "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\"},{\"type\":\"ByteLevel\"}]}}",
         "two ByteLevel steps"},
        {"", "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
             "\"behavior\":\"Isolated\"},{\"type\":\"ByteLevel\"}]}}",
         "does not compile"},
        {"", "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},"
             "\"behavior\":\"Sideways\"},{\"type\":\"ByteLevel\"}]}}",
         "behavior 'Sideways' is not one of"},
        {"", "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[^\\\\W]\"},"
             "\"behavior\":\"Isolated\"},{\"type\":\"ByteLevel\"}]}}",
         "\\W inside a character class"},
        {",\"dropout\":0.1", "", "dropout is not supported"},
        {",\"continuing_subword_prefix\":\"##\"", "", "continuing_subword_prefix is not supported"},
        {",\"unk_token\":\"<unk>\"", "", "unk_token '<unk>' is not in model.vocab"},
        {"", "\"added_tokens\":[{\"id\":1,\"content\":\"<x>\",\"lstrip\":true}],", "sets lstrip, which is not supported"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char json[2048];
        bool has_pre = strstr(cases[c].rest, "pre_tokenizer") != NULL;
        snprintf(json, sizeof json, "{%s%s},%s%s%s", bpe, cases[c].model_extra, cases[c].rest, has_pre ? "" : bl, has_pre ? "" : "}");
        Tokenizer t;
        Err e;
        int rc = load_json_text(json, &t, &e);
        cr_expect_eq(rc, -1, "case %zu loaded: %s", c, json);
        if (rc == 0) tokenizer_free(&t);
        else cr_expect(contains(e.msg, cases[c].want) && contains(e.msg, "tokenizer.json"), "case %zu: %s", c, e.msg);
    }
}
