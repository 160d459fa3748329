// unicode_age.h: characters newer than the Unicode tables the regexes run on. PCRE2 (Debian's 10.42)
// carries Unicode 14.0.0; HF tokenizers' Oniguruma and `regex` crate carry newer ones (15.1 to 17), so a
// character PCRE2 leaves unassigned may be a letter or a digit there (CJK Extension H and I, Egyptian
// Hieroglyphs Extended-A, new digits), which changes how \p{L}, \p{N}, \w and contractions split around
// it. Measured against tokenizers 0.23.3 over every code point PCRE2 leaves unassigned: 9,272 are \p{L}
// there, 120 \p{N}, 9,465 \w, none \s. Every character PCRE2 assigns agrees.
// `arbor tokenize` counts such characters and says so.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "../../kernels/check.h"

typedef struct {
    void* re;          // pcre2_code*: \p{Cn}
    void* match_data;  // pcre2_match_data*
    long count;        // characters unassigned in PCRE2's tables, over every text scanned
    uint32_t first;    // the first of them
    char version[32];  // PCRE2's Unicode version ("14.0.0")
} UnassignedScan;

int unassigned_scan_open(UnassignedScan* u, Err* e);
// Adds the characters of s (UTF-8, n bytes) that PCRE2's tables leave unassigned; invalid UTF-8 ends the scan.
void unassigned_scan(UnassignedScan* u, const char* s, size_t n);
void unassigned_scan_close(UnassignedScan* u);
