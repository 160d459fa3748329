// fuzz_jsonl.c: a JSONL document's text field (json_object_string_field, what `arbor tokenize` reads),
// against cJSON: whenever cJSON parses the input and finds a string "text", the scanner finds it too, with
// the same bytes up to the first NUL, and without a NUL the same length. Two exceptions, both cJSON's: a \u
// escape whose digits are not hex, which it reads as U+0000 (its parse_hex4 returns 0) and the scanner
// refuses; and a key holding NUL ("text\0..."), which its C-string lookup takes for "text".
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../models/json_text.h"
#include "fuzz_common.h"

// a \u not followed by four hex digits anywhere in s
static int bad_u_escape(const char* s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] == 'u')
            for (size_t k = 2; k < 6; k++)
                if (i + k >= n || !s[i + k] || !strchr("0123456789abcdefABCDEF", s[i + k])) return 1;
        i++;  // the escaped character
    }
    return 0;
}

// a NUL anywhere in s, raw or as \u0000
static int has_nul(const char* s, size_t n) {
    if (memchr(s, 0, n)) return 1;
    for (size_t i = 0; i + 5 < n; i++)
        if (!memcmp(s + i, "\\u0000", 6)) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    const char* s = (const char*)data;
    ByteVec got = {0};
    int found = json_object_string_field(s, n, "text", &got);  // bounded on anything
    cJSON* doc = cJSON_ParseWithLength(s, n);
    const cJSON* field = cJSON_GetObjectItemCaseSensitive(doc, "text");
    int cjson_misreads = (found == -1 && bad_u_escape(s, n)) || (found == 0 && has_nul(s, n));
    if (cJSON_IsObject(doc) && cJSON_IsString(field) && !cjson_misreads) {
        size_t len = strlen(field->valuestring);
        if (found != 1 || got.len < len || (len && memcmp(got.data, field->valuestring, len) != 0)) abort();
        if (!memchr(got.data ? got.data : "", 0, got.len) && got.len != len) abort();
    } else if (cJSON_IsObject(doc) && !cJSON_IsString(field) && found == 1) {
        abort();  // cJSON sees no string field "text" (absent, or another type) in a valid object
    }
    cJSON_Delete(doc);
    free(got.data);
    return 0;
}
