// vec.h: growable arrays of ints and bytes.
#pragma once
#include <stdlib.h>
#include <string.h>

#include "../kernels/check.h"

typedef struct {
    int* data;
    size_t len, cap;
} IntVec;

typedef struct {
    char* data;
    size_t len, cap;
} ByteVec;

static inline void intvec_reserve(IntVec* v, size_t n) {
    if (n <= v->cap) return;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < n) cap *= 2;
    int* d = realloc(v->data, cap * sizeof(int));
    if (!d) FATAL("out of memory growing an int vector to %zu", cap);
    v->data = d;
    v->cap = cap;
}

static inline void intvec_push(IntVec* v, int x) {
    intvec_reserve(v, v->len + 1);
    v->data[v->len++] = x;
}

static inline void bytevec_append(ByteVec* v, const char* s, size_t n) {
    if (v->len + n + 1 > v->cap) {
        size_t cap = v->cap ? v->cap : 256;
        while (cap < v->len + n + 1) cap *= 2;
        char* d = realloc(v->data, cap);
        if (!d) FATAL("out of memory growing a byte vector to %zu", cap);
        v->data = d;
        v->cap = cap;
    }
    memcpy(v->data + v->len, s, n);
    v->len += n;
    v->data[v->len] = 0;
}
