// unicode_age.c: see unicode_age.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "unicode_age.h"

#include <pcre2.h>
#include <string.h>

int unassigned_scan_open(UnassignedScan* u, Err* e) {
    memset(u, 0, sizeof *u);
    int code;
    PCRE2_SIZE off;
    pcre2_code* re = pcre2_compile((PCRE2_SPTR) "\\p{Cn}", PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    if (!re) return err_set(e, "pcre2: cannot compile \\p{Cn} (error %d)", code);
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // best effort: the interpreter gives the same matches
    u->re = re;
    u->match_data = pcre2_match_data_create_from_pattern(re, NULL);
    pcre2_config(PCRE2_CONFIG_UNICODE_VERSION, u->version);
    return 0;
}

void unassigned_scan(UnassignedScan* u, const char* s, size_t n) {
    for (PCRE2_SIZE at = 0; at < n;) {
        int rc = pcre2_match(u->re, (PCRE2_SPTR)s, n, at, 0, u->match_data, NULL);
        if (rc < 0) return;  // no more, or not UTF-8
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(u->match_data);
        if (!u->count) {
            const unsigned char* p = (const unsigned char*)s + ov[0];
            u->first = p[0] < 0xE0 ? (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F)
                       : p[0] < 0xF0 ? (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F)
                                     : (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 | (uint32_t)(p[2] & 0x3F) << 6 |
                                           (p[3] & 0x3F);
        }
        u->count++;
        at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
}

void unassigned_scan_close(UnassignedScan* u) {
    pcre2_match_data_free(u->match_data);
    pcre2_code_free(u->re);
    memset(u, 0, sizeof *u);
}
