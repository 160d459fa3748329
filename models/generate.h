// generate.h: batched prefill and autoregressive generation over the KV cache.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "forward.h"

// Packs n prompts (prompts[i] of lens[i] tokens) as rows of sequences 0..n-1 from position 0 and
// runs them in one forward call. logits: (sum lens, V) for every row when all_rows, else (n, V) for
// each prompt's last token.
int model_prefill(const Model* m, RunState* s, KVCache* cache, const int* const* prompts, const int* lens, int n,
                  bool all_rows, float* logits, Err* e);

typedef struct {
    bool greedy;
    float temperature;  // sampling only
    float top_p;        // sampling only; 1 = off
    uint64_t seed;
    bool stop_at_eos;   // stop a sequence after it emits one of the config's eos ids
} SampleOptions;

// Generates up to max_new tokens for each of n prompts, all sequences decoding together.
// out (n, max_new) token ids; out_lens (n) how many each produced.
int generate(const Model* m, const int* const* prompts, const int* lens, int n, int max_new,
             const SampleOptions* opt, int* out, int* out_lens, Err* e);
// The same on any backend (engine.h): `arbor generate --device cuda`.
int generate_on(const Engine* en, const int* const* prompts, const int* lens, int n, int max_new,
                const SampleOptions* opt, int* out, int* out_lens, Err* e);

int argmax(const float* x, int n);
