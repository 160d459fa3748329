// data.h: training windows from a token shard. Window i is tokens [i*L, i*L + L] (L+1 tokens: L
// inputs and their L next-token targets), so every token is a target once per epoch. The last
// val_fraction of the windows (by position) are held out for validation; the training windows are
// visited in a shuffled order drawn from (seed, epoch). The position (epoch, cursor) is all the state
// a resumed run needs.
#pragma once
#include <stdint.h>

#include "../models/token_shard.h"

typedef struct {
    const Shard* shard;
    int seq_len;
    uint64_t n_train, n_val;  // windows
    uint64_t* order;          // (n_train) this epoch's permutation
    uint64_t seed, epoch, cursor;
} DataLoader;

// Fails when the shard holds fewer than two windows of seq_len + 1 tokens.
int data_open(DataLoader* d, const Shard* s, int seq_len, double val_fraction, uint64_t seed, Err* e);
void data_close(DataLoader* d);
// Moves to (epoch, cursor): for resuming.
void data_seek(DataLoader* d, uint64_t epoch, uint64_t cursor);
// out (B, seq_len + 1): the next B training windows (wrapping into the next epoch, reshuffled); with
// out NULL they are passed over (another rank's share of a step).
void data_next_train(DataLoader* d, int B, int* out);
// out (seq_len + 1): validation window k (k < n_val).
void data_val_window(const DataLoader* d, uint64_t k, int* out);
