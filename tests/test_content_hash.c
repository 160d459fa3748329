// test_content_hash.c: inputs named by content: an in-place rewrite of equal size changes the hash, the
// memo spares re-reading unchanged files (also across runs), folders hash their files and names.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/content_hash.h"
#include "helpers.h"
#include "models/file_io.h"

Test(content_hash, files_folders_and_the_memo) {
    char dir[256], file[512], sub[512], memo_path[512];
    make_temp_dir(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/ckpt", dir);
    Err e;
    cr_assert_eq(make_dirs(sub, &e), 0);
    snprintf(file, sizeof file, "%s/ckpt/model.safetensors", dir);
    write_text(file, "weights version one");
    char path[600];
    snprintf(path, sizeof path, "%s/ckpt/config.json", dir);
    write_text(path, "{}");
    snprintf(memo_path, sizeof memo_path, "%s/memo.tsv", dir);

    HashMemo m;
    hash_memo_open(&m, memo_path);
    char a[CONTENT_HASH_HEX], b[CONTENT_HASH_HEX], d1[CONTENT_HASH_HEX], d2[CONTENT_HASH_HEX];
    cr_assert_eq(content_hash(&m, file, a, &e), 0, "%s", e.msg);
    cr_expect_eq(strlen(a), 32);
    cr_expect_eq(m.bytes_hashed, 19);
    cr_assert_eq(content_hash(&m, file, b, &e), 0);
    cr_expect_str_eq(a, b);
    cr_expect_eq(m.bytes_hashed, 19, "the second look is answered by the memo");
    cr_assert_eq(content_hash(&m, sub, d1, &e), 0, "%s", e.msg);
    cr_expect_str_neq(d1, a, "a folder's hash is not its file's");
    cr_assert_eq(hash_memo_save(&m, &e), 0, "%s", e.msg);
    hash_memo_free(&m);

    // a later run: the memo file answers for unchanged files
    hash_memo_open(&m, memo_path);
    cr_assert_eq(content_hash(&m, sub, d2, &e), 0);
    cr_expect_str_eq(d1, d2);
    cr_expect_eq(m.bytes_hashed, 0, "nothing re-read: %llu bytes", (unsigned long long)m.bytes_hashed);
    // rewritten in place, same size, mtime put back: ctime still tells, and the content differs
    struct stat st;
    cr_assert_eq(stat(file, &st), 0);
    FILE* f = fopen(file, "r+");
    cr_assert_not_null(f);
    fputs("weights version two", f);
    fclose(f);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    cr_assert_eq(utimensat(AT_FDCWD, file, times, 0), 0);
    cr_assert_eq(content_hash(&m, file, b, &e), 0);
    cr_expect_str_neq(a, b, "an in-place rewrite of equal size and mtime is seen");
    cr_assert_eq(content_hash(&m, sub, d2, &e), 0);
    cr_expect_str_neq(d1, d2, "and changes the folder's hash");
    // a renamed file changes the folder's hash though no bytes changed
    char renamed[600];
    snprintf(renamed, sizeof renamed, "%s/ckpt/other.json", dir);
    cr_assert_eq(rename(path, renamed), 0);
    char d3[CONTENT_HASH_HEX];
    cr_assert_eq(content_hash(&m, sub, d3, &e), 0);
    cr_expect_str_neq(d2, d3);
    // hidden files (caches, locks) do not count
    snprintf(path, sizeof path, "%s/ckpt/.lock", dir);
    write_text(path, "123");
    char d4[CONTENT_HASH_HEX];
    cr_assert_eq(content_hash(&m, sub, d4, &e), 0);
    cr_expect_str_eq(d3, d4);
    // a missing input is an error naming it
    snprintf(path, sizeof path, "%s/nope.shard", dir);
    cr_expect_eq(content_hash(&m, path, a, &e), -1);
    cr_expect(contains(e.msg, "nope.shard"), "%s", e.msg);
    hash_memo_free(&m);
    // a malformed memo is only a cache: ignored line by line
    write_text(memo_path, "garbage\nzz 1 2\n");
    hash_memo_open(&m, memo_path);
    cr_expect_eq(m.n, 0);
    cr_assert_eq(content_hash(&m, file, a, &e), 0);
    cr_expect_str_eq(a, b);
    hash_memo_free(&m);
    char rm[600];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    cr_expect_eq(system(rm), 0);
}
