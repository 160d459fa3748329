// perplexity.h: mean negative log-likelihood of a token stream under a model, with sliding windows.
//
// Windows of seq_len tokens start every `stride` tokens (begin = 0, stride, 2*stride, ...). A window
// predicts the tokens after the previous window's end, except its own first token (nothing in the
// window precedes it), each from the window's context from `begin`; no token is predicted twice.
// stride == seq_len gives disjoint windows whose first tokens go unscored (as in the Hugging Face
// perplexity guide); stride < seq_len scores every token but the stream's first, with more context.
// The stream is the shard's tokens as they are (documents joined by EOD).
#pragma once
#include <stdint.h>

#include "../models/engine.h"

typedef struct {
    int seq_len;
    int stride;
    int64_t max_tokens;  // evaluate only the first max_tokens of the shard (0: all)
    int chunk;           // rows per forward call inside a window (bounds the logits buffer)
} PplOptions;

typedef struct {
    double nll_sum;      // nats
    int64_t n_predicted;
    double mean_nll;     // nats/token
    double perplexity;   // exp(mean_nll)
    double seconds;
} PplResult;

// log softmax(logits)[id] in double; logits (V)
double log_softmax_at(const float* logits, int V, int id);

// tokens (n) all in [0, vocab)
int perplexity_eval(const Model* m, const int* tokens, int64_t n, const PplOptions* opt, PplResult* r, Err* e);
// The same on any backend (engine.h): `arbor eval ppl --device cuda`.
int perplexity_eval_on(const Engine* en, const int* tokens, int64_t n, const PplOptions* opt, PplResult* r, Err* e);
