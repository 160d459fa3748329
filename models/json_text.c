// json_text.c: see json_text.h.
#include "json_text.h"

#include <stdlib.h>
#include <string.h>

// as cJSON (which validated the line first), every byte up to 0x20 counts as a space between tokens
static size_t skip_ws(const char* s, size_t n, size_t i) {
    while (i < n && (unsigned char)s[i] <= 0x20) i++;
    return i;
}

static int hex4(const char* s, size_t n, size_t i, unsigned* v) {
    if (i + 4 > n) return -1;
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[i + (size_t)k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v << 4 | (unsigned)d;
    }
    return 0;
}

static void put_utf8(ByteVec* out, unsigned cp) {
    char b[4];
    int len;
    if (cp < 0x80) b[0] = (char)cp, len = 1;
    else if (cp < 0x800) b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F)), len = 2;
    else if (cp < 0x10000)
        b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | (cp >> 6 & 0x3F)), b[2] = (char)(0x80 | (cp & 0x3F)), len = 3;
    else
        b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | (cp >> 12 & 0x3F)), b[2] = (char)(0x80 | (cp >> 6 & 0x3F)),
        b[3] = (char)(0x80 | (cp & 0x3F)), len = 4;
    bytevec_append(out, b, (size_t)len);
}

// the string whose opening quote is s[i], decoded onto out (when out is not NULL); the index past its
// closing quote, or 0 when it is not a well-formed string
static size_t string_at(const char* s, size_t n, size_t i, ByteVec* out) {
    static const char plain[] = "\"\\/bfnrt", decoded[] = "\"\\/\b\f\n\r\t";
    for (i++; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') return i + 1;
        if (c != '\\') {  // raw bytes as they are, control bytes too (as cJSON takes them)
            if (out) bytevec_append(out, s + i, 1);
            continue;
        }
        if (++i >= n) return 0;
        const char* at = strchr(plain, s[i]);
        if (s[i] && at) {
            if (out) bytevec_append(out, &decoded[at - plain], 1);
            continue;
        }
        unsigned cp, lo;
        if (s[i] != 'u' || hex4(s, n, i + 1, &cp)) return 0;
        i += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return 0;  // a lone low surrogate
        if (cp >= 0xD800 && cp <= 0xDBFF) {          // a pair
            if (i + 2 >= n || s[i + 1] != '\\' || s[i + 2] != 'u' || hex4(s, n, i + 3, &lo) || lo < 0xDC00 || lo > 0xDFFF) return 0;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        }
        if (out) put_utf8(out, cp);
    }
    return 0;
}

// the index past the value at s[i], or 0 when there is none
static size_t skip_value(const char* s, size_t n, size_t i) {
    if (i >= n) return 0;
    if (s[i] == '"') return string_at(s, n, i, NULL);
    if (s[i] == '{' || s[i] == '[') {
        long depth = 0;
        while (i < n) {
            if (s[i] == '"') {
                i = string_at(s, n, i, NULL);
                if (!i) return 0;
                continue;
            }
            if (s[i] == '{' || s[i] == '[') depth++;
            else if (s[i] == '}' || s[i] == ']') depth--;
            i++;
            if (depth == 0) return i;
        }
        return 0;
    }
    size_t start = i;  // a number or a literal
    while (i < n && !strchr(",}]", s[i]) && (unsigned char)s[i] > 0x20) i++;
    return i > start ? i : 0;
}

int json_object_string_field(const char* s, size_t n, const char* field, ByteVec* out) {
    size_t i = skip_ws(s, n, 0), field_len = strlen(field);
    if (i >= n || s[i] != '{') return -1;
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == '}') return 0;
    ByteVec key = {0};
    int rc = -1;
    while (i < n && s[i] == '"') {
        key.len = 0;
        size_t after = string_at(s, n, i, &key);
        if (!after) break;
        i = skip_ws(s, n, after);
        if (i >= n || s[i] != ':') break;
        i = skip_ws(s, n, i + 1);
        if (key.len == field_len && (!field_len || !memcmp(key.data, field, field_len))) {
            rc = i < n && s[i] == '"' ? (string_at(s, n, i, out) ? 1 : -1) : 0;
            break;
        }
        i = skip_value(s, n, i);
        if (!i) break;
        i = skip_ws(s, n, i);
        if (i < n && s[i] == '}') {
            rc = 0;
            break;
        }
        if (i >= n || s[i] != ',') break;
        i = skip_ws(s, n, i + 1);
    }
    free(key.data);
    return rc;
}
