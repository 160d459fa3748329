// test_token_shard.c: token shards: round trips in both token widths, documents and EOD, and bad
// files refused by name.
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "models/token_shard.h"

static char dir[256];
static void setup(void) { make_temp_dir(dir, sizeof dir); }
TestSuite(token_shard, .init = setup);

static void round_trip(int vocab, int expect_bytes) {
    char path[512];
    snprintf(path, sizeof path, "%s/s.bin", dir);
    ShardWriter w;
    Err e;
    int doc1[] = {0, 5, vocab - 1}, doc2[] = {7};
    cr_assert_eq(shard_writer_open(&w, path, vocab, 3, &e), 0, "%s", e.msg);
    cr_assert_eq(shard_writer_append(&w, doc1, 3, &e), 0);
    cr_assert_eq(shard_writer_end_doc(&w, true, &e), 0);
    cr_assert_eq(shard_writer_append(&w, doc2, 1, &e), 0);
    cr_assert_eq(shard_writer_end_doc(&w, false, &e), 0);
    cr_assert_eq(shard_writer_close(&w, &e), 0, "%s", e.msg);
    Shard s;
    cr_assert_eq(shard_open(&s, path, &e), 0, "%s", e.msg);
    cr_expect_eq(s.token_bytes, expect_bytes);
    cr_expect_eq(s.n_tokens, 5);
    cr_expect_eq(s.n_docs, 2);
    cr_expect_eq(s.vocab_size, vocab);
    cr_expect_eq(s.eod_id, 3);
    int want[] = {0, 5, vocab - 1, 3, 7};
    for (int i = 0; i < 5; i++) cr_expect_eq(shard_token(&s, (uint64_t)i), want[i], "token %d", i);
    shard_close(&s);
}

Test(token_shard, uint16_when_the_vocabulary_fits) { round_trip(65536, 2); }
Test(token_shard, uint32_for_large_vocabularies) { round_trip(151669, 4); }

Test(token_shard, refuses_ids_outside_the_vocabulary) {
    char path[512];
    snprintf(path, sizeof path, "%s/s.bin", dir);
    ShardWriter w;
    Err e;
    cr_assert_eq(shard_writer_open(&w, path, 10, -1, &e), 0);
    int bad = 10;
    cr_expect_eq(shard_writer_append(&w, &bad, 1, &e), -1);
    cr_expect(contains(e.msg, "token id 10 outside the vocabulary of 10"), "%s", e.msg);
    cr_expect_neq(access(path, F_OK), 0, "nothing left behind under the final name");
}

static void expect_refused(const void* bytes, size_t n, const char* phrase) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.bin", dir);
    write_bytes(path, bytes, n);
    Shard s;
    Err e = {{0}, 0};
    cr_assert_eq(shard_open(&s, path, &e), -1);
    cr_expect(contains(e.msg, path) && contains(e.msg, phrase), "says '%s': %s", phrase, e.msg);
}

Test(token_shard, refuses_bad_files) {
    uint8_t h[64 + 4] = "ARBORTOK";
    h[8] = 1;        // version
    h[12] = 2;       // bytes per token
    h[16] = 2;       // two tokens
    h[24] = 100;     // vocab 100
    h[64] = 5;       // token 0 = 5
    h[66] = 200;     // token 1 = 200 >= vocab
    expect_refused(h, 20, "shorter than the header");
    expect_refused(h, sizeof h, "token 1 is 200, outside the vocabulary of 100");
    h[66] = 7;
    expect_refused(h, sizeof h - 2, "header says 2 tokens");
    h[12] = 3;
    expect_refused(h, sizeof h, "3 bytes per token");
    h[8] = 9;
    expect_refused(h, sizeof h, "version 9");
    memcpy(h, "NOTTOKEN", 8);
    expect_refused(h, sizeof h, "bad magic");
    // 4-byte ids of 2^31 and more are not negative ids that pass the vocabulary check
    uint8_t w[64 + 8] = "ARBORTOK";
    w[8] = 1, w[12] = 4, w[16] = 2, w[24] = 0x70, w[25] = 0x11, w[26] = 0x01;  // vocab 70000
    w[28] = 0xff, w[29] = 0xff, w[30] = 0xff, w[31] = 0xff;                      // no end-of-document id
    w[64] = 5;
    w[68 + 3] = 0x80;  // token 1 = 2^31
    expect_refused(w, sizeof w, "token 1 is 2147483648, outside the vocabulary of 70000");
    w[68 + 3] = 0;
    w[28] = 0x80, w[29] = 0x11, w[30] = 0x01, w[31] = 0;  // end-of-document id 70016
    expect_refused(w, sizeof w, "end-of-document id 70016 is outside the vocabulary");
    w[24] = 0, w[25] = 0, w[26] = 0, w[27] = 0x80;  // vocab 2^31
    expect_refused(w, sizeof w, "vocabulary size 2147483648 in the header");
}
