// token_shard.c: see token_shard.h.
#include "token_shard.h"

#include <sys/stat.h>

#include <stdio.h>
#include <string.h>

static void put_u32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t* p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get_u64(const uint8_t* p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static void header(const ShardWriter* w, uint8_t* h) {
    memset(h, 0, SHARD_HEADER_BYTES);
    memcpy(h, "ARBORTOK", 8);
    put_u32(h + 8, 1);
    put_u32(h + 12, (uint32_t)w->token_bytes);
    put_u64(h + 16, w->n_tokens);
    put_u32(h + 24, (uint32_t)w->vocab_size);
    put_u32(h + 28, (uint32_t)w->eod_id);
    put_u64(h + 32, w->n_docs);
}

int shard_writer_open(ShardWriter* w, const char* path, int vocab_size, int eod_id, Err* e) {
    memset(w, 0, sizeof *w);
    if (vocab_size < 1) return err_set(e, "%s: vocabulary size must be positive", path);
    w->vocab_size = vocab_size;
    w->eod_id = eod_id;
    w->token_bytes = vocab_size <= 65536 ? 2 : 4;
    if (atomic_open(&w->f, path, e)) return -1;
    uint8_t h[SHARD_HEADER_BYTES];
    header(w, h);  // placeholder counts, rewritten on close
    return atomic_write(&w->f, h, sizeof h, e);
}

int shard_writer_append(ShardWriter* w, const int* ids, size_t n, Err* e) {
    uint8_t buf[4096];
    size_t per = sizeof buf / (size_t)w->token_bytes;
    for (size_t at = 0; at < n; at += per) {
        size_t m = n - at < per ? n - at : per;
        for (size_t i = 0; i < m; i++) {
            int id = ids[at + i];
            if (id < 0 || id >= w->vocab_size) {
                shard_writer_abort(w);
                return err_set(e, "%s: token id %d outside the vocabulary of %d", w->f.path, id, w->vocab_size);
            }
            for (int b = 0; b < w->token_bytes; b++) buf[i * (size_t)w->token_bytes + (size_t)b] = (uint8_t)((uint32_t)id >> (8 * b));
        }
        if (atomic_write(&w->f, buf, m * (size_t)w->token_bytes, e)) return -1;
    }
    w->n_tokens += n;
    return 0;
}

int shard_writer_end_doc(ShardWriter* w, bool write_eod, Err* e) {
    w->n_docs++;
    if (write_eod && w->eod_id >= 0) return shard_writer_append(w, &w->eod_id, 1, e);
    return 0;
}

int shard_writer_close(ShardWriter* w, Err* e) {
    uint8_t h[SHARD_HEADER_BYTES];
    header(w, h);
    if (fseek(w->f.fp, 0, SEEK_SET) != 0) {
        shard_writer_abort(w);
        return err_set(e, "%s: cannot rewrite the header", w->f.path);
    }
    if (atomic_write(&w->f, h, sizeof h, e)) return -1;
    return atomic_commit(&w->f, e);
}

void shard_writer_abort(ShardWriter* w) { atomic_abort(&w->f); }

// The header's fields into s, checked against the file's size (everything but the token values)
static int header_check(Shard* s, const uint8_t* h, size_t size, const char* path, Err* e) {
    if (size < SHARD_HEADER_BYTES) return err_set(e, "%s: not a token shard (%zu bytes, shorter than the header)", path, size);
    s->token_bytes = (int)get_u32(h + 12);
    s->n_tokens = get_u64(h + 16);
    s->vocab_size = (int)get_u32(h + 24);
    s->eod_id = (int)get_u32(h + 28);
    s->n_docs = get_u64(h + 32);
    if (memcmp(h, "ARBORTOK", 8) != 0) return err_set(e, "%s: not a token shard (bad magic)", path);
    if (get_u32(h + 8) != 1) return err_set(e, "%s: shard version %u is not supported (1)", path, get_u32(h + 8));
    if (s->token_bytes != 2 && s->token_bytes != 4) return err_set(e, "%s: %d bytes per token (2 or 4)", path, s->token_bytes);
    if (s->n_tokens > (size - SHARD_HEADER_BYTES) / (size_t)s->token_bytes ||
        SHARD_HEADER_BYTES + s->n_tokens * (uint64_t)s->token_bytes != size)
        return err_set(e, "%s: header says %llu tokens but the file holds %zu bytes of them", path,
                       (unsigned long long)s->n_tokens, size - SHARD_HEADER_BYTES);
    if (get_u32(h + 24) < 1 || get_u32(h + 24) > (1u << 30))
        return err_set(e, "%s: vocabulary size %u in the header is not in [1, 2^30]", path, get_u32(h + 24));
    if (s->eod_id != -1 && (s->eod_id < 0 || s->eod_id >= s->vocab_size))
        return err_set(e, "%s: end-of-document id %d is outside the vocabulary of %d", path, s->eod_id, s->vocab_size);
    return 0;
}

int shard_open(Shard* s, const char* path, Err* e) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    if (file_map(path, &s->map, &s->size, e)) return -1;
    int rc = header_check(s, s->map, s->size, path, e);
    // every token, as the unsigned value stored: a 4-byte id of 2^31 or more is not a negative id
    for (uint64_t i = 0; i < s->n_tokens && !rc; i++) {
        const uint8_t* p = s->map + SHARD_HEADER_BYTES + i * (uint64_t)s->token_bytes;
        uint32_t id = s->token_bytes == 2 ? (uint32_t)(p[0] | p[1] << 8) : get_u32(p);
        if (id >= (uint32_t)s->vocab_size)
            rc = err_set(e, "%s: token %llu is %u, outside the vocabulary of %d", path, (unsigned long long)i, id, s->vocab_size);
    }
    if (rc) shard_close(s);
    return rc;
}

int shard_peek(const char* path, Shard* s, Err* e) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    uint8_t h[SHARD_HEADER_BYTES] = {0};
    struct stat st;
    FILE* f = fopen(path, "rb");
    if (!f) return err_set(e, "%s: cannot open", path);
    size_t got = fread(h, 1, sizeof h, f);
    int ok = fstat(fileno(f), &st) == 0;
    fclose(f);
    if (!ok) return err_set(e, "%s: cannot stat", path);
    return header_check(s, h, got < sizeof h ? got : (size_t)st.st_size, path, e);
}

void shard_close(Shard* s) {
    file_unmap(s->map, s->size);
    memset(s, 0, sizeof *s);
}

int* shard_read_tokens(const Shard* s, uint64_t max, int64_t* n) {
    uint64_t count = s->n_tokens < max ? s->n_tokens : max;
    int* tokens = xmalloc(sizeof(int) * (size_t)(count ? count : 1));
    for (uint64_t i = 0; i < count; i++) tokens[i] = shard_token(s, i);
    *n = (int64_t)count;
    return tokens;
}
