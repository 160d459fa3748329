// helpers.h: shared test utilities: fixture paths, temporary directories, comparisons, running the
// arbor binary.
#pragma once
#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/check.h"
#include "models/model.h"

// ||a - b|| / ||b|| over n values
double rel_l2(const float* a, const float* b, size_t n);
// the fixtures directory: $ARBOR_FIXTURES, else the source tree's tests/fixtures
const char* fixtures_root(void);
// "<fixtures_root()>/hf/<name>"
void fixture_dir(char* out, size_t n, const char* name);
// Loads "<dir>/<sub>" (sub may be NULL: dir itself) into m; the test fails with the reason otherwise.
void load_model_at(Model* m, const char* dir, const char* sub);
// A fresh directory under /tmp; path written to out.
void make_temp_dir(char* out, size_t n);
void write_bytes(const char* path, const void* data, size_t n);
void write_text(const char* path, const char* text);
cJSON* read_json(const char* path);  // aborts the test on failure
char* slurp(const char* path);       // the whole file, malloc'd; aborts the test on failure
// Runs `arbor <args>` through the shell; returns its exit code. stdout goes to out_path when given.
int run_arbor(const char* args, const char* out_path);
// "<ARBOR_DATA or ../shared/data>/<sub>" into out; 0 when it exists, -1 (tests then skip) when not.
int data_path(char* out, size_t n, const char* sub);
// A one-document token shard of n pseudo-random ids below vocab (a fixed function of seed), or, when
// ids is not NULL, of those n ids.
void write_test_shard(const char* path, int n, int vocab, uint64_t seed, const int* ids);
// The fixtures' hash of token ids (tools/make_tokenizer_fixtures.py id_hash): FNV-1a 64 over the ids as
// little-endian u32, 0xFFFFFFFF between groups; the low 32 bits. Start with {0}, add each group in order.
typedef struct {
    uint64_t h;
    long groups;
} IdHash;
void id_hash_add(IdHash* h, const int* ids, size_t n);
uint32_t id_hash_value(const IdHash* h);
// true when needle occurs in haystack
int contains(const char* haystack, const char* needle);
