// generate.c: see generate.h.
#include "generate.h"
#include "progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int argmax(const float* x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

// Rows of n prompts packed as sequences 0..n-1 from position 0: tokens, seq, pos (N) and the last
// row of each prompt, last (n). Returns N, or -1 with e set on an empty prompt; *buf (malloc'd)
// holds the four arrays.
static int pack_prompts(const int* const* prompts, const int* lens, int n, int** buf, Err* e) {
    int N = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1) return err_set(e, "prompt %d is empty", i);
        N += lens[i];
    }
    int* tokens = xmalloc(sizeof(int) * (size_t)N * 3 + sizeof(int) * (size_t)n);
    int *seq = tokens + N, *pos = seq + N, *last = pos + N;
    for (int i = 0, r = 0; i < n; i++) {
        for (int t = 0; t < lens[i]; t++, r++) {
            tokens[r] = prompts[i][t];
            seq[r] = i;
            pos[r] = t;
        }
        last[i] = r - 1;
    }
    *buf = tokens;
    return N;
}

int model_prefill(const Model* m, RunState* s, KVCache* cache, const int* const* prompts, const int* lens, int n,
                  bool all_rows, float* logits, Err* e) {
    int* b;
    int N = pack_prompts(prompts, lens, n, &b, e);
    if (N < 0) return -1;
    int rc = model_forward(m, s, cache, b, b + N, b + 2 * N, N, all_rows ? NULL : b + 3 * N, all_rows ? N : n, logits, e);
    free(b);
    return rc;
}

static uint64_t rng_next(uint64_t* state) {  // xorshift64*
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ull;
}

static int cmp_desc(const void* a, const void* b) {
    float x = *(const float*)a, y = *(const float*)b;
    return (x < y) - (x > y);
}

// Samples from softmax(logits / T), restricted to the smallest set of top tokens whose mass >= top_p.
static int sample(float* logits, int V, const SampleOptions* opt, uint64_t* rng, float* sorted) {
    float maxv = logits[argmax(logits, V)];
    double sum = 0;
    for (int i = 0; i < V; i++) {
        logits[i] = expf((logits[i] - maxv) / opt->temperature);
        sum += logits[i];
    }
    float cutoff = 0.0f;
    if (opt->top_p < 1.0f) {
        memcpy(sorted, logits, sizeof(float) * (size_t)V);
        qsort(sorted, (size_t)V, sizeof(float), cmp_desc);
        double mass = 0;
        for (int i = 0; i < V; i++) {
            mass += sorted[i] / sum;
            cutoff = sorted[i];
            if (mass >= opt->top_p) break;
        }
        sum = 0;
        for (int i = 0; i < V; i++) sum += logits[i] >= cutoff ? logits[i] : 0.0f;
    }
    double u = (double)(rng_next(rng) >> 11) / 9007199254740992.0 * sum, acc = 0;
    int chosen = -1;
    for (int i = 0; i < V; i++) {
        if (logits[i] < cutoff) continue;
        acc += logits[i];
        chosen = i;
        if (acc > u) break;
    }
    return chosen;
}

static bool is_eos(const ModelConfig* c, int tok) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_token_ids[i] == tok) return true;
    return false;
}

int generate(const Model* m, const int* const* prompts, const int* lens, int n, int max_new,
             const SampleOptions* opt, int* out, int* out_lens, Err* e) {
    Engine en;
    if (engine_open(&en, m, DEVICE_CPU, e)) return -1;
    int rc = generate_on(&en, prompts, lens, n, max_new, opt, out, out_lens, e);
    engine_close(&en);
    return rc;
}

int generate_on(const Engine* en, const int* const* prompts, const int* lens, int n, int max_new,
                const SampleOptions* opt, int* out, int* out_lens, Err* e) {
    const ModelConfig* c = &en->m->cfg;
    int V = c->vocab, max_prompt = 0, total = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] > max_prompt) max_prompt = lens[i];
        total += lens[i];
    }
    int max_len = max_prompt + max_new;  // past max_position_embeddings is computed, as transformers does (positions_note)
    EngineRun run;
    engine_run_create(&run, en, n, max_len, total > n ? total : n, n);
    float* logits = xmalloc(sizeof(float) * (size_t)n * V);
    float* sorted = xmalloc(sizeof(float) * (size_t)V);
    int* rows = xmalloc(sizeof(int) * (size_t)n * 4);
    int *tok = rows, *seq = rows + n, *pos = rows + 2 * n, *active = rows + 3 * n;
    uint64_t rng = opt->seed * 0x9e3779b97f4a7c15ull + 1;
    int* b = NULL;
    int N = pack_prompts(prompts, lens, n, &b, e);
    int rc = N < 0 ? -1 : engine_run_forward(&run, b, b + N, b + 2 * N, N, b + 3 * N, n, logits, e);
    free(b);
    for (int i = 0; i < n; i++) {
        out_lens[i] = 0;
        active[i] = 1;
    }
    Progress prog;
    progress_begin(&prog, "generate", "tokens", 1, (double)max_new * n, 4096);  // long runs only
    for (int step = 0; step < max_new && !rc; step++) {
        progress_update(&prog, (double)step * n);
        // logits holds one row per still-active sequence, in sequence order
        int row = 0, n_rows = 0;
        for (int i = 0; i < n; i++) {
            if (!active[i]) continue;
            float* lg = logits + (size_t)row++ * V;
            int next = opt->greedy ? argmax(lg, V) : sample(lg, V, opt, &rng, sorted);
            out[(size_t)i * max_new + out_lens[i]++] = next;
            if ((opt->stop_at_eos && is_eos(c, next)) || step == max_new - 1) {
                active[i] = 0;
                continue;
            }
            tok[n_rows] = next;
            seq[n_rows] = i;
            pos[n_rows] = lens[i] + step;
            n_rows++;
        }
        if (n_rows == 0) break;
        rc = engine_run_forward(&run, tok, seq, pos, n_rows, NULL, n_rows, logits, e);
    }
    progress_end(&prog);
    free(rows);
    free(sorted);
    free(logits);
    engine_run_free(&run);
    return rc;
}
