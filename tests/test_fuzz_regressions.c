// test_fuzz_regressions.c: every input under fuzz/regressions/TARGET (each crash a fuzzer or a report
// ever found) and fuzz/corpus/TARGET (the seeds) through that target's entry point, in this build: a
// crash, an abort or (in a sanitizer build) a sanitizer report fails the suite. The libFuzzer binaries
// themselves are built with -DARBOR_FUZZ=ON (scripts/fuzz_smoke.sh).
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "models/file_io.h"

typedef int (*Entry)(const uint8_t*, size_t);
#define ENTRY(name) int fuzz_entry_##name(const uint8_t* data, size_t n);
ENTRY(safetensors)
ENTRY(config)
ENTRY(tokenizer_load)
ENTRY(tokenizer_roundtrip)
ENTRY(tokenizer_kinds)
ENTRY(mmlu_csv)
ENTRY(sweep_ini)
ENTRY(shard)
ENTRY(train_state)
ENTRY(npy)
ENTRY(scores)
ENTRY(jsonl)

static int replay_dir(const char* dir, Entry entry) {
    DIR* d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent* ent; (ent = readdir(d));) {
        if (ent->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        size_t len;
        Err e;
        char* bytes = file_read_all(path, &len, &e);
        cr_assert_not_null(bytes, "%s", e.msg);
        entry((const uint8_t*)bytes, len);
        free(bytes);
        n++;
    }
    closedir(d);
    return n;
}

static void replay(const char* target, Entry entry, int min_regressions) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/regressions/%s", ARBOR_FUZZ_DIR, target);
    int r = replay_dir(dir, entry);
    snprintf(dir, sizeof dir, "%s/corpus/%s", ARBOR_FUZZ_DIR, target);
    int s = replay_dir(dir, entry);
    cr_log_info("%s: %d regression cases, %d seeds replayed", target, r, s);
    cr_expect_geq(r, min_regressions, "%s: the regression cases are there", target);
    cr_expect_gt(r + s, 0, "%s: something to replay", target);
}

Test(fuzz_regressions, safetensors) { replay("safetensors", fuzz_entry_safetensors, 4); }
Test(fuzz_regressions, config) { replay("config", fuzz_entry_config, 1); }
Test(fuzz_regressions, scores) { replay("scores", fuzz_entry_scores, 3); }
Test(fuzz_regressions, jsonl) { replay("jsonl", fuzz_entry_jsonl, 2); }
Test(fuzz_regressions, tokenizer_load) { replay("tokenizer_load", fuzz_entry_tokenizer_load, 4); }
Test(fuzz_regressions, tokenizer_roundtrip) {
    char tok[1024];
    if (data_path(tok, sizeof tok, "qwen3-tokenizer")) cr_skip_test("no Qwen3 tokenizer data (ARBOR_DATA)");
    char root[1024];
    snprintf(root, sizeof root, "%s", tok);
    *strrchr(root, '/') = 0;
    setenv("ARBOR_DATA", root, 1);
    replay("tokenizer_roundtrip", fuzz_entry_tokenizer_roundtrip, 1);
}
Test(fuzz_regressions, tokenizer_kinds) {
    char tok[1024];
    if (data_path(tok, sizeof tok, "qwen3-tokenizer")) cr_skip_test("no Qwen3 tokenizer data (ARBOR_DATA)");
    *strrchr(tok, '/') = 0;
    setenv("ARBOR_DATA", tok, 1);
    replay("tokenizer_kinds", fuzz_entry_tokenizer_kinds, 0);
}
Test(fuzz_regressions, mmlu_csv) { replay("mmlu_csv", fuzz_entry_mmlu_csv, 0); }
Test(fuzz_regressions, sweep_ini) { replay("sweep_ini", fuzz_entry_sweep_ini, 1); }
Test(fuzz_regressions, shard) { replay("shard", fuzz_entry_shard, 1); }
Test(fuzz_regressions, train_state) { replay("train_state", fuzz_entry_train_state, 1); }
Test(fuzz_regressions, npy) { replay("npy", fuzz_entry_npy, 0); }
