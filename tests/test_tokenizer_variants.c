// test_tokenizer_variants.c: the normalizers, pre-tokenizers and byte handling of other byte-level BPE
// checkpoints (Llama 3, SmolLM2, GPT-2 layouts; vocabularies without every byte) against Hugging Face
// tokenizers: each variant of the real Qwen3 tokenizer.json (tools/make_tokenizer_variant_fixtures.py,
// patched here by the same edit) gives the library's ids on every hard case, every MMLU question and
// choice, and the TinyStories slice. Needs ARBOR_DATA (../shared/data); skips with a message when absent.
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "mmlu/mmlu_csv.h"
#include "models/file_io.h"
#include "models/tokenizer/tokenizer.h"
#include "fuzz/tokenizer_variant.h"

static cJSON* read_fixture(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer/variants.json", ARBOR_FIXTURES);
    return read_json(path);
}

ParameterizedTestParameters(variants, match_tokenizers) {
    static int index[128];
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer/variants.json", ARBOR_FIXTURES);
    Err e;
    char* text = file_read_all(path, NULL, &e);
    cJSON* root = text ? cJSON_Parse(text) : NULL;
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "variants"));
    cJSON_Delete(root);
    free(text);
    if (n > 128) n = 128;
    for (int i = 0; i < n; i++) index[i] = i;
    return cr_make_param_array(int, index, (size_t)n);
}

static int hex_val(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

static IntVec encode_or_fail(const Tokenizer* t, const char* s, size_t n, int* failed) {
    IntVec v = {0};
    Err e;
    *failed = tokenizer_encode(t, s, n, &v, &e) != 0;
    return v;
}

static void check_hard_cases(const Tokenizer* t, const cJSON* cases, const cJSON* want, const char* name) {
    int i = 0, bad = 0;
    const cJSON* c;
    cJSON_ArrayForEach(c, cases) {
        const char* hex = cJSON_GetObjectItemCaseSensitive(c, "hex")->valuestring;
        const cJSON* ids = cJSON_GetArrayItem(want, i++);
        size_t n = strlen(hex) / 2;
        char* bytes = malloc(n + 1);
        for (size_t k = 0; k < n; k++) bytes[k] = (char)(hex_val(hex[2 * k]) << 4 | hex_val(hex[2 * k + 1]));
        int failed;
        IntVec v = encode_or_fail(t, bytes, n, &failed);
        const char* case_name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        if (cJSON_IsNull(ids)) {
            cr_expect(failed, "%s, '%s': invalid UTF-8 was accepted", name, case_name);
        } else {
            int same = !failed && (int)v.len == cJSON_GetArraySize(ids);
            for (int k = 0; same && k < (int)v.len; k++) same = v.data[k] == cJSON_GetArrayItem(ids, k)->valueint;
            if (!same) {
                bad++;
                cr_log_error("%s, hard case '%s': %zu ids, tokenizers %d", name, case_name, v.len, cJSON_GetArraySize(ids));
            }
        }
        free(v.data);
        free(bytes);
    }
    cr_expect_eq(bad, 0, "%s: %d hard cases differ", name, bad);
    cr_expect_gt(i, 40);
}

// every MMLU file of a split, in the order of the Qwen3 fixture's listing (sorted paths, as the script)
static void check_mmlu(const Tokenizer* t, const char* mmlu_dir, const char* listing, const char* split, const cJSON* want,
                       const char* name) {
    IdHash h = {0};
    long records = 0, tokens = 0;
    size_t split_len = strlen(split);
    for (const char* line = listing; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (line[0] == '#' || strncmp(line, split, split_len) != 0 || line[split_len] != '/') continue;
        char rel[256], path[1024];
        cr_assert_eq(sscanf(line, "%255s", rel), 1);
        snprintf(path, sizeof path, "%s/%s", mmlu_dir, rel);
        MmluFile f;
        Err e;
        cr_assert_eq(mmlu_csv_read(path, &f, &e), 0, "%s", e.msg);
        for (int r = 0; r < f.n; r++) {
            for (int k = 0; k < 5; k++) {
                const char* s = k == 0 ? f.records[r].question : f.records[r].choices[k - 1];
                int failed;
                IntVec v = encode_or_fail(t, s, strlen(s), &failed);
                cr_assert(!failed, "%s: %s record %d does not encode", name, rel, r);
                id_hash_add(&h, v.data, v.len);
                tokens += (long)v.len;
                free(v.data);
            }
        }
        records += f.n;
        mmlu_csv_free(&f);
    }
    char got[9];
    snprintf(got, sizeof got, "%08x", id_hash_value(&h));
    cr_expect_eq(records, cJSON_GetObjectItemCaseSensitive(want, "records")->valueint, "%s: MMLU %s records", name, split);
    cr_expect_eq(tokens, (long)cJSON_GetObjectItemCaseSensitive(want, "tokens")->valuedouble, "%s: MMLU %s: %ld tokens, tokenizers %d",
                 name, split, tokens, cJSON_GetObjectItemCaseSensitive(want, "tokens")->valueint);
    cr_expect_str_eq(got, cJSON_GetObjectItemCaseSensitive(want, "hash")->valuestring, "%s: MMLU %s ids differ", name, split);
}

static void check_tinystories(const Tokenizer* t, const char* text, size_t len, const cJSON* want, const char* name) {
    int failed;
    IntVec all = encode_or_fail(t, text, len, &failed);
    cr_expect_eq((long)all.len, (long)cJSON_GetObjectItemCaseSensitive(want, "tokens")->valuedouble, "%s: TinyStories: %zu tokens",
                 name, all.len);
    free(all.data);
    IdHash h = {0};
    for (const char *p = text, *end = text + len; p <= end;) {
        const char* nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        IntVec v = encode_or_fail(t, p, n, &failed);
        id_hash_add(&h, v.data, v.len);
        free(v.data);
        if (!nl) break;
        p = nl + 1;
    }
    char got[9];
    snprintf(got, sizeof got, "%08x", id_hash_value(&h));
    cr_expect_str_eq(got, cJSON_GetObjectItemCaseSensitive(want, "lines_hash")->valuestring, "%s: TinyStories line ids differ", name);
}

ParameterizedTest(int* index, variants, match_tokenizers) {
    char base_path[512], mmlu_dir[512], story_path[512], dir[256], path[512], listing_path[512];
    if (data_path(base_path, sizeof base_path, "qwen3-tokenizer/tokenizer.json") != 0)
        cr_skip_test("no Qwen3 tokenizer at %s (set ARBOR_DATA)", base_path);
    cJSON* fixture = read_fixture();
    const cJSON* variant = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(fixture, "variants"), *index);
    const char* name = cJSON_GetObjectItemCaseSensitive(variant, "name")->valuestring;
    cJSON* base = read_json(base_path);
    char* json = tokenizer_variant_json(base, cJSON_GetObjectItemCaseSensitive(variant, "patch"));
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_text(path, json);
    free(json);
    cJSON_Delete(base);
    Tokenizer t;
    Err e;
    cr_assert_eq(tokenizer_load(&t, dir, &e), 0, "%s: %s", name, e.msg);
    check_hard_cases(&t, cJSON_GetObjectItemCaseSensitive(fixture, "cases"), cJSON_GetObjectItemCaseSensitive(variant, "hard"), name);
    if (data_path(mmlu_dir, sizeof mmlu_dir, "mmlu") == 0) {
        snprintf(listing_path, sizeof listing_path, "%s/tokenizer/mmlu.txt", ARBOR_FIXTURES);
        char* listing = slurp(listing_path);
        const cJSON* want = cJSON_GetObjectItemCaseSensitive(variant, "mmlu");
        static const char* splits[] = {"dev", "val", "test"};
        for (int s = 0; s < 3; s++)
            check_mmlu(&t, mmlu_dir, listing, splits[s], cJSON_GetObjectItemCaseSensitive(want, splits[s]), name);
        free(listing);
    } else {
        cr_log_warn("no MMLU data at %s: the MMLU part is skipped", mmlu_dir);
    }
    if (data_path(story_path, sizeof story_path, "corpus/tinystories-valid-slice/tinystories_val.txt") == 0) {
        size_t len;
        char* text = file_read_all(story_path, &len, &e);
        cr_assert_not_null(text, "%s", e.msg);
        check_tinystories(&t, text, len, cJSON_GetObjectItemCaseSensitive(variant, "tinystories"), name);
        free(text);
    }
    tokenizer_free(&t);
    cJSON_Delete(fixture);
}
