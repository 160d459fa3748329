// data.c: see data.h.
#include "data.h"

#include <stdlib.h>
#include <string.h>

#include "../kernels/hash.h"

static void shuffle(DataLoader* d) {
    for (uint64_t i = 0; i < d->n_train; i++) d->order[i] = i;
    uint64_t state = d->seed * 0x9e3779b97f4a7c15ull + d->epoch + 1;
    for (uint64_t i = d->n_train; i > 1; i--) {  // Fisher-Yates
        uint64_t j = splitmix64_next(&state) % i;
        uint64_t t = d->order[i - 1];
        d->order[i - 1] = d->order[j];
        d->order[j] = t;
    }
}

int data_open(DataLoader* d, const Shard* s, int seq_len, double val_fraction, uint64_t seed, Err* e) {
    memset(d, 0, sizeof *d);
    if (seq_len < 1) return err_set(e, "%s: seq_len must be positive", s->path);
    uint64_t windows = s->n_tokens > 0 ? (s->n_tokens - 1) / (uint64_t)seq_len : 0;
    if (windows < 2)
        return err_set(e, "%s: %llu tokens hold fewer than two windows of seq_len + 1 = %d tokens", s->path,
                       (unsigned long long)s->n_tokens, seq_len + 1);
    d->shard = s;
    d->seq_len = seq_len;
    d->n_val = (uint64_t)(val_fraction * (double)windows);
    if (val_fraction > 0 && d->n_val == 0) d->n_val = 1;
    if (d->n_val >= windows) d->n_val = windows - 1;
    d->n_train = windows - d->n_val;
    d->seed = seed;
    d->order = xmalloc(sizeof(uint64_t) * d->n_train);
    shuffle(d);
    return 0;
}

void data_close(DataLoader* d) {
    free(d->order);
    memset(d, 0, sizeof *d);
}

void data_seek(DataLoader* d, uint64_t epoch, uint64_t cursor) {
    d->epoch = epoch;
    d->cursor = cursor;
    shuffle(d);
}

static void read_window(const DataLoader* d, uint64_t w, int* out) {
    uint64_t start = w * (uint64_t)d->seq_len;
    for (int t = 0; t <= d->seq_len; t++) out[t] = shard_token(d->shard, start + (uint64_t)t);
}

void data_next_train(DataLoader* d, int B, int* out) {
    for (int b = 0; b < B; b++) {
        if (d->cursor == d->n_train) data_seek(d, d->epoch + 1, 0);
        uint64_t w = d->order[d->cursor++];
        if (out) read_window(d, w, out + (size_t)b * (d->seq_len + 1));
    }
}

void data_val_window(const DataLoader* d, uint64_t k, int* out) { read_window(d, d->n_train + k, out); }
