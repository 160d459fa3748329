// perplexity.c: see perplexity.h. A window is prefilled in chunks of rows through the KV cache
// (identical to one call; it bounds the logits buffer at chunk x vocab), asking for logits only at the
// rows that predict a target.
#include "perplexity.h"

#include <math.h>
#include <stdlib.h>

#include "../kernels/clock.h"
#include "../models/progress.h"

double log_softmax_at(const float* logits, int V, int id) {
    float maxv = logits[0];
    for (int i = 1; i < V; i++)
        if (logits[i] > maxv) maxv = logits[i];
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)logits[i] - maxv);
    return (double)logits[id] - maxv - log(sum);
}

int perplexity_eval(const Model* m, const int* tokens, int64_t n, const PplOptions* o, PplResult* r, Err* e) {
    Engine en;
    if (engine_open(&en, m, DEVICE_CPU, e)) return -1;
    int rc = perplexity_eval_on(&en, tokens, n, o, r, e);
    engine_close(&en);
    return rc;
}

int perplexity_eval_on(const Engine* en, const int* tokens, int64_t n, const PplOptions* o, PplResult* r, Err* e) {
    const ModelConfig* c = &en->m->cfg;
    int L = o->seq_len, S = o->stride, chunk = o->chunk > 0 ? o->chunk : 256, V = c->vocab;
    if (o->max_tokens > 0 && o->max_tokens < n) n = o->max_tokens;
    if (L < 2) return err_set(e, "ppl: --seq-len must be at least 2");
    if (S < 1 || S > L) return err_set(e, "ppl: --stride must be in [1, seq-len]");
    if (n < 2) return err_set(e, "ppl: needs at least 2 tokens, the data has %lld", (long long)n);
    if (chunk > L) chunk = L;
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return err_set(e, "ppl: token %lld is %d, outside the model's vocabulary of %d", (long long)i, tokens[i], V);
    EngineRun run;
    engine_run_create(&run, en, 1, L, chunk, chunk);
    float* logits = xmalloc(sizeof(float) * (size_t)chunk * V);
    int* rows = xmalloc(sizeof(int) * (size_t)chunk * 3);
    int *seq = rows + chunk, *pos = rows + 2 * chunk;
    Progress prog;
    progress_begin(&prog, "ppl", "tokens", 1.0, (double)(n - 1), 4096);
    double t0 = now_seconds();
    r->nll_sum = 0;
    r->n_predicted = 0;
    int rc = 0;
    int64_t prev_end = 1;  // tokens before this are done (token 0 never is predicted)
    for (int64_t begin = 0; begin < n - 1 && !rc; begin += S) {
        int64_t end = begin + L < n ? begin + L : n;
        if (end <= prev_end) continue;
        // targets are positions [prev_end, end); the logits of position p-1 predict token p
        for (int64_t at = begin; at < end && !rc; at += chunk) {
            int N = (int)(end - at < chunk ? end - at : chunk);
            int n_out = 0;
            for (int i = 0; i < N; i++) {
                seq[i] = 0;
                pos[i] = (int)(at + i - begin);
                int64_t target = at + i + 1;  // > begin always: a window never scores its first token
                if (target >= prev_end && target < end) rows[n_out++] = i;
            }
            rc = engine_run_forward(&run, tokens + at, seq, pos, N, rows, n_out, logits, e);
            for (int k = 0; k < n_out && !rc; k++) r->nll_sum -= log_softmax_at(logits + (size_t)k * V, V, tokens[at + rows[k] + 1]);
            r->n_predicted += rc ? 0 : n_out;
        }
        prev_end = end;
        progress_update(&prog, (double)r->n_predicted);
        if (end == n) break;
    }
    r->seconds = now_seconds() - t0;
    if (!rc) {
        progress_end(&prog);
        r->mean_nll = r->nll_sum / (double)r->n_predicted;
        r->perplexity = exp(r->mean_nll);
    }
    free(rows);
    free(logits);
    engine_run_free(&run);
    return rc;
}
