// json_text.h: the string value of one field of a JSON object with its length. A JSONL document's text
// may hold NUL ("\u0000"), which cJSON's NUL-terminated strings would cut; this decodes the field's raw
// bytes into a ByteVec instead (escapes, surrogate pairs to UTF-8). Callers validate the object with cJSON
// first; this scanner is bounded on any input all the same, takes raw bytes as cJSON does, and refuses a
// \u escape without four hex digits (which cJSON reads as U+0000).
#pragma once
#include <stddef.h>

#include "../kernels/check.h"
#include "vec.h"

// 1: `field` (the first one of that name, as cJSON finds it) holds a string, its bytes appended to out;
// 0: the object has no such field, or it is not a string; -1: json is not an object this scanner can read.
int json_object_string_field(const char* json, size_t n, const char* field, ByteVec* out);
