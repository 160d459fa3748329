// fuzz_shard.c: a token shard: the header-only reader (shard_peek, the sweep's config check), then the
// full open (header, sizes, every id) and a read of its first tokens.
#include <stdlib.h>

#include "../models/token_shard.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    Shard s;
    Err e;
    const char* path = fuzz_file("data.shard", data, n);
    shard_peek(path, &s, &e);
    if (shard_open(&s, path, &e) == 0) {
        int64_t got;
        free(shard_read_tokens(&s, 4096, &got));
        shard_close(&s);
    }
    return 0;
}
