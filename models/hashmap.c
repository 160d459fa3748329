// hashmap.c: see hashmap.h. Linear probing, load factor <= 1/2.
#include "hashmap.h"

#include <stdlib.h>
#include <string.h>

#include "../kernels/check.h"
#include "../kernels/hash.h"

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static size_t capacity_for(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    return cap;
}

void strmap_init(StrMap* m, size_t expected) {
    m->cap = capacity_for(expected);
    m->count = 0;
    m->keys = xcalloc(m->cap, sizeof(char*));
    m->key_lens = xcalloc(m->cap, sizeof(int));
    m->values = xcalloc(m->cap, sizeof(int));
}

void strmap_free(StrMap* m) {
    free(m->keys);
    free(m->key_lens);
    free(m->values);
    memset(m, 0, sizeof *m);
}

static void strmap_grow(StrMap* m) {
    StrMap bigger;
    strmap_init(&bigger, m->cap);
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) strmap_put(&bigger, m->keys[i], m->key_lens[i], m->values[i]);
    strmap_free(m);
    *m = bigger;
}

void strmap_put(StrMap* m, const char* key, int len, int value) {
    if ((m->count + 1) * 2 > m->cap) strmap_grow(m);
    size_t i = fnv1a64(key, (size_t)len) & (m->cap - 1);
    while (m->keys[i]) {
        if (m->key_lens[i] == len && memcmp(m->keys[i], key, (size_t)len) == 0) {
            m->values[i] = value;
            return;
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = key;
    m->key_lens[i] = len;
    m->values[i] = value;
    m->count++;
}

int strmap_get(const StrMap* m, const char* key, int len) {
    size_t i = fnv1a64(key, (size_t)len) & (m->cap - 1);
    while (m->keys[i]) {
        if (m->key_lens[i] == len && memcmp(m->keys[i], key, (size_t)len) == 0) return m->values[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

void u64map_init(U64Map* m, size_t expected) {
    m->cap = capacity_for(expected);
    m->count = 0;
    m->keys = xcalloc(m->cap, sizeof(uint64_t));
    m->values = xcalloc(m->cap, sizeof(int64_t));
}

void u64map_free(U64Map* m) {
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

void u64map_put(U64Map* m, uint64_t key, int64_t value) {
    if ((m->count + 1) * 2 > m->cap) {
        U64Map bigger;
        u64map_init(&bigger, m->cap);
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) u64map_put(&bigger, m->keys[i], m->values[i]);
        u64map_free(m);
        *m = bigger;
    }
    size_t i = mix64(key) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) m->count++;
    m->keys[i] = key;
    m->values[i] = value;
}

int u64map_get(const U64Map* m, uint64_t key, int64_t* value) {
    size_t i = mix64(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (m->keys[i] == key) {
            *value = m->values[i];
            return 1;
        }
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}
