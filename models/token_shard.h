// token_shard.h: tokenized text on disk, the input of distillation, calibration and perplexity.
//
// Layout (little-endian), 64-byte header then the tokens:
//   0  char[8] magic "ARBORTOK"     8  u32 version (1)       12 u32 bytes per token (2 or 4)
//   16 u64 token count              24 u32 vocab size         28 i32 EOD id (-1: none)
//   32 u64 document count           40 reserved (zero) to 64
// Tokens are uint16 when the vocabulary fits, else uint32. Documents are separated by the EOD token
// when the shard was written with one.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "../kernels/check.h"
#include "file_io.h"

#define SHARD_HEADER_BYTES 64

typedef struct {
    AtomicFile f;
    int token_bytes;
    int vocab_size;
    int eod_id;
    uint64_t n_tokens, n_docs;
} ShardWriter;

int shard_writer_open(ShardWriter* w, const char* path, int vocab_size, int eod_id, Err* e);
// ids (n), each in [0, vocab_size)
int shard_writer_append(ShardWriter* w, const int* ids, size_t n, Err* e);
// Ends a document: writes the EOD token when the writer has one and `write_eod`.
int shard_writer_end_doc(ShardWriter* w, bool write_eod, Err* e);
// Writes the final header and renames the file into place.
int shard_writer_close(ShardWriter* w, Err* e);
void shard_writer_abort(ShardWriter* w);

typedef struct {
    char path[4096];
    const uint8_t* map;
    size_t size;
    int token_bytes;
    int vocab_size;
    int eod_id;
    uint64_t n_tokens, n_docs;
} Shard;

// The first min(max, n_tokens) tokens as ints (malloc'd); *n gets the count.
int* shard_read_tokens(const Shard* s, uint64_t max, int64_t* n);

// Opens and validates (magic, version, sizes, every token below the vocab size).
int shard_open(Shard* s, const char* path, Err* e);
void shard_close(Shard* s);
// The header alone, checked as shard_open checks it and against the file's size, without mapping or
// reading the tokens (cheap on a multi-GB shard; shard_open checks every id when a stage reads it).
// s->map stays NULL: nothing to close.
int shard_peek(const char* path, Shard* s, Err* e);
static inline int shard_token(const Shard* s, uint64_t i) {
    const uint8_t* p = s->map + SHARD_HEADER_BYTES + i * (uint64_t)s->token_bytes;
    return s->token_bytes == 2 ? (int)(p[0] | p[1] << 8) : (int)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}
