// fuzz_tokenizer_roundtrip.c: any bytes through the real Qwen3 tokenizer ($ARBOR_DATA/qwen3-tokenizer):
// encoding never fails on valid UTF-8 that needs no normalisation change, and decoding gives the bytes
// back exactly (byte-level BPE loses nothing); invalid UTF-8 is refused, never a crash.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/tokenizer/tokenizer.h"
#include "fuzz_common.h"

static Tokenizer tok;
static int loaded = -1;

static int ascii_plain(const uint8_t* d, size_t n) {  // printable ASCII and whitespace: NFC changes nothing
    for (size_t i = 0; i < n; i++)
        if (d[i] >= 0x80 || (d[i] < 0x20 && d[i] != '\n' && d[i] != '\t' && d[i] != '\r')) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    if (loaded < 0) {
        const char* root = getenv("ARBOR_DATA");
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/qwen3-tokenizer", root ? root : "../shared/data");
        Err e;
        loaded = tokenizer_load(&tok, dir, &e) == 0;
        if (!loaded) fprintf(stderr, "fuzz_tokenizer_roundtrip: %s (set ARBOR_DATA); nothing to fuzz\n", e.msg);
    }
    if (!loaded) return 0;
    IntVec ids = {0};
    ByteVec back = {0};
    Err e;
    int rc = tokenizer_encode(&tok, (const char*)data, n, &ids, &e);
    if (rc == 0) {
        if (tokenizer_decode(&tok, ids.data, ids.len, &back, &e) != 0) abort();
        // special-token text ("<|endoftext|>") decodes to itself too, so plain ASCII comes back exactly
        if (ascii_plain(data, n) && (back.len != n || (n && memcmp(back.data, data, n) != 0))) abort();
    } else if (ascii_plain(data, n)) {
        abort();  // plain ASCII must always encode
    }
    free(ids.data);
    free(back.data);
    return 0;
}
