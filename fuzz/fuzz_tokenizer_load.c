// fuzz_tokenizer_load.c: tokenizer.json (BPE and WordLevel, added tokens, pre-tokenizers), then an
// encode and decode of a fixed text with whatever loaded.
#include <string.h>

#include "../models/tokenizer/tokenizer.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    fuzz_file("tokenizer.json", data, n);
    Tokenizer t;
    Err e;
    if (tokenizer_load(&t, fuzz_dir(), &e) == 0) {
        const char* text = "Hello world <|endoftext|> caf\\u00e9 123";
        IntVec ids = {0};
        ByteVec back = {0};
        if (tokenizer_encode(&t, text, strlen(text), &ids, &e) == 0) tokenizer_decode(&t, ids.data, ids.len, &back, &e);
        free(ids.data);
        free(back.data);
        tokenizer_free(&t);
    }
    return 0;
}
