// hash.h: the two small integer functions the project uses everywhere: FNV-1a (ids, canaries,
// hash maps) and splitmix64 (seeded random streams).
#pragma once
#include <stddef.h>
#include <stdint.h>

static inline uint64_t fnv1a64(const void* data, size_t n) {
    const uint8_t* p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

// splitmix64 of x: a well-mixed 64-bit value; consecutive x give independent outputs
static inline uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// the next value of the stream whose state is *s
static inline uint64_t splitmix64_next(uint64_t* s) {
    uint64_t r = splitmix64(*s);
    *s += 0x9e3779b97f4a7c15ull;
    return r;
}
