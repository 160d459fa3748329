// byte_level.h: GPT-2's byte-level alphabet (each byte stands for a printable code point) and the strict
// UTF-8 check: what the tokenizer and the text pipeline both need, with no dependence on either.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Offset of the first byte that is not valid UTF-8 (overlongs, surrogates and > U+10FFFF are
// invalid, as in Python's strict decoder), or -1 when all of it is valid.
long utf8_invalid_offset(const char* s, size_t len);
// GPT-2's bytes_to_unicode: the code point that stands for byte b.
uint32_t byte_level_code_point(int b);
// ... that code point's UTF-8 (1 or 2 bytes) into out; returns the length.
int byte_level_utf8(int b, char out[2]);
// The byte a byte-level symbol stands for, or -1 when cp is not one.
int byte_level_byte(int32_t cp);
