// prompt.c: see prompt.h.
#include "prompt.h"

#include <string.h>
#include <utf8proc.h>

// str.isspace() in Python 3: Unicode White_Space plus the ASCII separators \x1c-\x1f
static int python_space(utf8proc_int32_t c) {
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

void python_strip(const char* s, size_t len, size_t* start, size_t* end) {
    const utf8proc_uint8_t* u = (const utf8proc_uint8_t*)s;
    size_t a = 0, last_end = 0;
    int leading = 1;
    while (a < len) {
        utf8proc_int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate(u + a, (utf8proc_ssize_t)(len - a), &c);
        if (n <= 0) n = 1, c = -1;  // inputs are validated UTF-8; be safe anyway
        if (!python_space(c)) {
            if (leading) *start = a;
            leading = 0;
            last_end = a + (size_t)n;
        }
        a += (size_t)n;
    }
    if (leading) *start = last_end = 0;
    *end = last_end;
}

void mmlu_example_text(ByteVec* out, const MmluRecord* r) {
    size_t a, b;
    python_strip(r->question, strlen(r->question), &a, &b);
    bytevec_append(out, r->question + a, b - a);
    static const char* labels[4] = {"\nA. ", "\nB. ", "\nC. ", "\nD. "};
    for (int i = 0; i < 4; i++) {
        bytevec_append(out, labels[i], 4);
        bytevec_append(out, r->choices[i], strlen(r->choices[i]));
    }
    bytevec_append(out, "\nAnswer:", 8);
}

void mmlu_prefix(ByteVec* out, const char* subject, const MmluRecord* dev, int first, int k) {
    static const char* head = "The following are multiple choice questions (with answers) about ";
    bytevec_append(out, head, strlen(head));
    for (const char* p = subject; *p; p++) bytevec_append(out, *p == '_' ? " " : p, 1);
    bytevec_append(out, ".\n\n", 3);
    for (int i = first; i < first + k; i++) {
        mmlu_example_text(out, &dev[i]);
        char answer[2] = {' ', (char)('A' + dev[i].answer)};
        bytevec_append(out, answer, 2);
        bytevec_append(out, "\n\n", 2);
    }
}
