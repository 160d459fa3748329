// test_mmlu_csv.c: MMLU CSV reading: RFC 4180 quoting with embedded newlines, CRLF and LF files,
// fields kept byte for byte, and bad files refused with file:line.
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "mmlu/mmlu_csv.h"

static char dir[256];
static void setup(void) { make_temp_dir(dir, sizeof dir); }
TestSuite(mmlu_csv, .init = setup);

static const char* write_csv(const char* text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/x_test.csv", dir);
    write_text(path, text);
    return path;
}

Test(mmlu_csv, quoting_newlines_crlf_and_spaces) {
    const char* path = write_csv("\"What is \"\"2+2\"\"?\nThink.\", 4 ,five,\"a, b\",\"x\r\ny\",B\r\n"
                                 "Second?,a,b,c,d,D");
    MmluFile f;
    Err e;
    cr_assert_eq(mmlu_csv_read(path, &f, &e), 0, "%s", e.msg);
    cr_assert_eq(f.n, 2);
    cr_expect_str_eq(f.records[0].question, "What is \"2+2\"?\nThink.");
    cr_expect_str_eq(f.records[0].choices[0], " 4 ");
    cr_expect_str_eq(f.records[0].choices[2], "a, b");
    cr_expect_str_eq(f.records[0].choices[3], "x\r\ny");
    cr_expect_eq(f.records[0].answer, 1);
    cr_expect_eq(f.records[1].answer, 3);
    cr_expect_eq(f.records[1].line, 4, "line %d", f.records[1].line);  // record 1 spans lines 1-3
    mmlu_csv_free(&f);
}

static void expect_refused(const char* text, const char* phrase) {
    const char* path = write_csv(text);
    MmluFile f;
    Err e = {{0}, 0};
    cr_assert_eq(mmlu_csv_read(path, &f, &e), -1, "should refuse: %s", text);
    cr_expect(contains(e.msg, path), "names the file: %s", e.msg);
    cr_expect(contains(e.msg, phrase), "says '%s': %s", phrase, e.msg);
}

Test(mmlu_csv, refuses_bad_files_with_line) {
    expect_refused("q,a,b,c,d,A\nq,a,b,c,A\n", ":2: expected 6 fields");
    expect_refused("q,a,b,c,d,E\n", ":1: answer 'E' is not one of A, B, C, D");
    expect_refused("q,a,,c,d,A\n", ":1: a choice is empty");
    expect_refused("q,a,b,c,d,A\n\"open,a,b,c,d,A\n", ":2: expected 6 fields");  // an unclosed quote swallows the rest
    expect_refused("", "no records");
    expect_refused("q\xff,a,b,c,d,A\n", ":1: not valid UTF-8");
}

Test(mmlu_csv, real_files_parse_with_published_counts) {
    char root[512], path[1024];
    if (data_path(root, sizeof root, "mmlu") != 0) cr_skip_test("no MMLU data at %s", root);
    snprintf(path, sizeof path, "%s/test/professional_law_test.csv", root);
    MmluFile f;
    Err e;
    cr_assert_eq(mmlu_csv_read(path, &f, &e), 0, "%s", e.msg);
    cr_expect_eq(f.n, 1534);
    mmlu_csv_free(&f);
}
