// test_text_pipeline.c: each normalizer and pre-tokenizer of models/text_pipeline.c alone against
// Hugging Face tokenizers (tools/make_pretokenizer_fixtures.py): the same normalised text and the same
// pieces, byte for byte, on every valid hard case. Needs no data.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "models/tokenizer/text_pipeline.h"
#include "models/tokenizer/tokenizer.h"
#include "models/tokenizer/utf8_repair.h"

static cJSON* fixture;

static void load(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer/pipeline_steps.json", ARBOR_FIXTURES);
    fixture = read_json(path);
}
static void unload(void) { cJSON_Delete(fixture); }
TestSuite(text_pipeline, .init = load, .fini = unload);

static int hex_val(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

// hex -> bytes (malloc'd), length in *n
static char* unhex(const char* hex, size_t* n) {
    *n = strlen(hex) / 2;
    char* out = malloc(*n + 1);
    for (size_t i = 0; i < *n; i++) out[i] = (char)(hex_val(hex[2 * i]) << 4 | hex_val(hex[2 * i + 1]));
    out[*n] = 0;
    return out;
}

static const char* case_hex(int i) { return cJSON_GetArrayItem(cJSON_GetObjectItem(fixture, "cases"), i)->valuestring; }

Test(text_pipeline, every_normalizer_matches_tokenizers) {
    const cJSON* steps = cJSON_GetObjectItem(fixture, "normalizers");
    const cJSON* step;
    int checked = 0, bad = 0;
    cJSON_ArrayForEach(step, steps) {
        char* spec = cJSON_PrintUnformatted(cJSON_GetObjectItem(step, "spec"));
        TextPipeline p;
        Err e;
        cr_assert_eq(text_pipeline_parse(&p, cJSON_GetObjectItem(step, "spec"), NULL, "fixture", &e), 0, "%s: %s", spec, e.msg);
        const cJSON* want;
        int i = 0;
        cJSON_ArrayForEach(want, cJSON_GetObjectItem(step, "out")) {
            size_t n, m;
            char* text = unhex(case_hex(i), &n);
            char* expect = unhex(want->valuestring, &m);
            ByteVec out = {0};
            cr_assert_eq(text_normalize(&p, text, n, &out, &e), 0, "%s", e.msg);
            if (out.len != m || memcmp(out.data, expect, m) != 0) {
                bad++;
                cr_log_error("%s on case %d: %zu bytes '%.*s', tokenizers %zu '%s'", spec, i, out.len, (int)out.len, out.data, m, expect);
            }
            free(out.data);
            free(text);
            free(expect);
            i++, checked++;
        }
        text_pipeline_free(&p);
        free(spec);
    }
    cr_expect_eq(bad, 0, "%d of %d normalised texts differ", bad, checked);
    cr_expect_gt(checked, 300);
}

Test(text_pipeline, every_pre_tokenizer_cuts_the_same_pieces) {
    const cJSON* steps = cJSON_GetObjectItem(fixture, "pre_tokenizers");
    const cJSON* step;
    int checked = 0, bad = 0;
    cJSON_ArrayForEach(step, steps) {
        char* spec = cJSON_PrintUnformatted(cJSON_GetObjectItem(step, "spec"));
        TextPipeline p;
        Err e;
        cr_assert_eq(text_pipeline_parse(&p, NULL, cJSON_GetObjectItem(step, "spec"), "fixture", &e), 0, "%s: %s", spec, e.msg);
        const cJSON* want;
        int i = 0;
        cJSON_ArrayForEach(want, cJSON_GetObjectItem(step, "out")) {
            size_t n;
            char* text = unhex(case_hex(i), &n);
            Pieces ps = {0};
            text_pre_tokenize(&p, text, n, &ps);
            int same = (int)ps.spans.len / 2 == cJSON_GetArraySize(want);
            for (int k = 0; same && k < (int)ps.spans.len / 2; k++) {
                size_t m;
                char* piece = unhex(cJSON_GetArrayItem(want, k)->valuestring, &m);
                same = (size_t)ps.spans.data[2 * k + 1] == m && memcmp(ps.arena.data + ps.spans.data[2 * k], piece, m) == 0;
                free(piece);
            }
            if (!same) {
                bad++;
                cr_log_error("%s on case %d ('%.40s'): %zu pieces, tokenizers %d", spec, i, text, ps.spans.len / 2,
                             cJSON_GetArraySize(want));
            }
            pieces_free(&ps);
            free(text);
            i++, checked++;
        }
        text_pipeline_free(&p);
        free(spec);
    }
    cr_expect_eq(bad, 0, "%d of %d piece lists differ", bad, checked);
    cr_expect_gt(checked, 1000);
}

// --invalid-utf8 replace: one U+FFFD per maximal ill-formed subpart, as Python's decoder (the fixture's
// cases are Python's output: tools/make_utf8_fixture.py)
Test(text_pipeline, invalid_utf8_is_replaced_as_python_replaces_it) {
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer/utf8_replace.json", fixtures_root());
    cJSON* j = read_json(path);
    const cJSON* c;
    int n = 0, bad = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "cases")) {
        size_t n_in, n_want;
        char* in = unhex(cJSON_GetArrayItem(c, 0)->valuestring, &n_in);
        char* want = unhex(cJSON_GetArrayItem(c, 1)->valuestring, &n_want);
        ByteVec got = {0};
        long replaced = utf8_replace_invalid(in, n_in, &got);
        int same = got.len == n_want && (!n_want || memcmp(got.data, want, n_want) == 0);
        if (!same && bad++ < 5) cr_log_error("case %d (%s): differs from Python", n, cJSON_GetArrayItem(c, 0)->valuestring);
        cr_expect((replaced > 0) == (utf8_invalid_offset(in, n_in) >= 0), "case %d: replaced only what is invalid", n);
        cr_expect(utf8_invalid_offset(got.data ? got.data : "", got.len) < 0, "case %d: the output is UTF-8", n);
        free(got.data), free(in), free(want);
        n++;
    }
    cr_expect_eq(bad, 0, "%d of %d cases differ from Python's decoder", bad, n);
    cr_expect_gt(n, 1000);
    cJSON_Delete(j);
}
