// hashmap.h: two open-addressing hash maps the tokenizer needs: byte strings -> int (vocabulary) and
// 64-bit keys -> int (BPE merges keyed by a pair of token ids). Keys of StrMap are not copied: they
// must outlive the map.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char** keys;
    int* key_lens;
    int* values;
    size_t cap;  // power of two
    size_t count;
} StrMap;

void strmap_init(StrMap* m, size_t expected);
void strmap_free(StrMap* m);
// Inserts or overwrites.
void strmap_put(StrMap* m, const char* key, int len, int value);
// Returns the value or -1.
int strmap_get(const StrMap* m, const char* key, int len);

typedef struct {
    uint64_t* keys;   // 0 marks an empty slot: callers never use key 0
    int64_t* values;
    size_t cap;
    size_t count;
} U64Map;

void u64map_init(U64Map* m, size_t expected);
void u64map_free(U64Map* m);
void u64map_put(U64Map* m, uint64_t key, int64_t value);
// Returns 1 and the value when found.
int u64map_get(const U64Map* m, uint64_t key, int64_t* value);
