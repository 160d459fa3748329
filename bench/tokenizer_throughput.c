// tokenizer_throughput.c: MB/s of arbor's tokenizer encoding one text file (best of a few runs,
// single thread, load time excluded). tools/bench_tokenizer.py runs it beside HF tokenizers.
// Usage: bench_tokenizer_throughput TOKENIZER_DIR FILE [repeats]
#include <stdio.h>
#include <stdlib.h>

#include "kernels/clock.h"
#include "models/file_io.h"
#include "models/tokenizer/tokenizer.h"

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER_DIR FILE [repeats]\n", argv[0]);
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 3;
    Tokenizer t;
    Err e;
    size_t len;
    char* text = file_read_all(argv[2], &len, &e);
    if (!text || tokenizer_load(&t, argv[1], &e)) {
        fprintf(stderr, "arbor: %s\n", e.msg);
        return 2;
    }
    double best = 1e30;
    size_t n_tokens = 0;
    for (int r = 0; r < repeats; r++) {
        IntVec ids = {0};
        double t0 = now_seconds();
        if (tokenizer_encode(&t, text, len, &ids, &e)) {
            fprintf(stderr, "arbor: %s: %s\n", argv[2], e.msg);
            return 2;
        }
        double dt = now_seconds() - t0;
        if (dt < best) best = dt;
        n_tokens = ids.len;
        free(ids.data);
    }
    printf("bytes=%zu\ntokens=%zu\nseconds=%.4f\nmb_per_s=%.2f\n", len, n_tokens, best, len / best / 1e6);
    tokenizer_free(&t);
    free(text);
    return 0;
}
