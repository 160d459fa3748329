// byte_level.c: see byte_level.h.
#include "byte_level.h"

// Printable Latin-1 bytes stand for themselves; the other 68 get U+0100.. in byte order: 0-32 are
// U+0100-U+0120, 127-160 are U+0121-U+0142, 173 is U+0143.
uint32_t byte_level_code_point(int b) {
    if (b <= 32) return 256u + (uint32_t)b;
    if (b >= 127 && b <= 160) return 256u + 33u + (uint32_t)(b - 127);
    if (b == 173) return 256u + 67u;
    return (uint32_t)b;
}

int byte_level_utf8(int b, char out[2]) {
    uint32_t cp = byte_level_code_point(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

int byte_level_byte(int32_t cp) {
    if (cp >= 256 && cp <= 256 + 32) return cp - 256;
    if (cp >= 256 + 33 && cp <= 256 + 66) return cp - 256 - 33 + 127;
    if (cp == 256 + 67) return 173;
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return cp;
    return -1;
}

long utf8_invalid_offset(const char* str, size_t len) {
    const uint8_t* s = (const uint8_t*)str;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) n = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) n = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) n = 3, cp = c & 0x07, min = 0x10000;
        else return (long)i;
        for (int k = 1; k <= n; k++) {
            if (i + (size_t)k >= len || (s[i + k] & 0xc0) != 0x80) return (long)i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return (long)i;
        i += (size_t)n + 1;
    }
    return -1;
}
