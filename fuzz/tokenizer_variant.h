// tokenizer_variant.h: a tokenizer.json derived from a base one by a patch, the same edit
// tools/make_tokenizer_variant_fixtures.py makes (see its docstring): "normalizer" / "pre_tokenizer"
// replaced, "decoder" replaced, "model" fields set, "drop_bytes" (every vocab entry and merge holding
// those bytes' byte-level symbols removed), "add_tokens" (those absent appended to model.vocab); when the
// vocabulary changes it is renumbered 0..V-1 (old order, new tokens last) and the added tokens follow.
// Used by the variant tests and the tokenizer fuzz target.
#pragma once
#include <cJSON.h>

// The variant's tokenizer.json text (malloc'd). base is left as it was.
char* tokenizer_variant_json(const cJSON* base, const cJSON* patch);
