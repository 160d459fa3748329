// utf8_repair.h: text that is not valid UTF-8, made so as Python's bytes.decode('utf-8', errors='replace')
// makes it: each maximal ill-formed subpart (a lead byte and the continuation bytes valid after it, or one
// byte that can start nothing) becomes U+FFFD (Unicode 15, section 3.9, "U+FFFD Substitution of Maximal
// Subparts"). What `arbor tokenize --invalid-utf8 replace` tokenizes.
#pragma once
#include <stddef.h>

#include "../vec.h"

// s (n bytes) onto out with every maximal ill-formed subpart replaced; returns how many were replaced.
long utf8_replace_invalid(const char* s, size_t n, ByteVec* out);
