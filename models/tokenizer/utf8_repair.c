// utf8_repair.c: see utf8_repair.h.
#include "utf8_repair.h"

#include <stdint.h>

// the length of the well-formed sequence a lead byte starts (Unicode Table 3-7), or 0; lo..hi: the range
// its second byte must take (the later bytes take 80..BF)
static int lead(uint8_t c, uint8_t* lo, uint8_t* hi) {
    *lo = 0x80, *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c == 0xE0) return *lo = 0xA0, 3;
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return 3;
    if (c == 0xED) return *hi = 0x9F, 3;  // no surrogates
    if (c == 0xF0) return *lo = 0x90, 4;
    if (c >= 0xF1 && c <= 0xF3) return 4;
    if (c == 0xF4) return *hi = 0x8F, 4;  // nothing past U+10FFFF
    return 0;
}

long utf8_replace_invalid(const char* str, size_t n, ByteVec* out) {
    const uint8_t* s = (const uint8_t*)str;
    long replaced = 0;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            size_t j = i;
            while (j < n && s[j] < 0x80) j++;
            bytevec_append(out, str + i, j - i);
            i = j;
            continue;
        }
        uint8_t lo, hi;
        int len = lead(s[i], &lo, &hi), k = 1;
        while (k < len && i + (size_t)k < n && s[i + k] >= lo && s[i + k] <= hi) k++, lo = 0x80, hi = 0xBF;
        if (len && k == len) {
            bytevec_append(out, str + i, (size_t)len);
        } else {  // the lead and the continuation bytes valid so far: one replacement character
            bytevec_append(out, "\xEF\xBF\xBD", 3);
            replaced++;
        }
        i += (size_t)k;
    }
    return replaced;
}
