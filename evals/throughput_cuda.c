// throughput_cuda.c: see throughput_cuda.h.
#include "throughput_cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/clock.h"
#include "../kernels/hash.h"
#include "bench_memory_plan.h"

double prefill_model_flops(const ModelConfig* c, int B, int P) {
    double C = c->hidden, F = c->ffn, HS = c->head_dim, NH = c->n_heads, Q = NH * HS, KV = c->n_kv_heads * HS;
    double per_token = 2.0 * (C * (Q + 2 * KV) + Q * C + 2 * C * F + F * C) * c->n_layers;
    // causal: the token at position p attends p+1 keys; QK^T and PV are 2 FLOPs per (key, dim) each
    double attention = 4.0 * HS * NH * c->n_layers * ((double)P * (P + 1) / 2);
    return B * (P * per_token + attention) + 2.0 * B * C * c->vocab;
}

int cuda_prefill_chunks(const CudaModel* g, CudaRunState* s, const CudaKVCache* cache, const int* tok, int B, int P,
                        size_t first_rows, float* last_logits, Err* e) {
    size_t N = (size_t)B * P, R = (size_t)s->max_rows, V = (size_t)g->cfg.vocab;
    if (first_rows && first_rows < N) N = first_rows;
    int* rows = xmalloc(sizeof(int) * 3 * R);
    int *seq = rows, *pos = rows + R, *out = rows + 2 * R, rc = 0;
    for (size_t r0 = 0; r0 < N && !rc; r0 += R) {
        int n = (int)(N - r0 < R ? N - r0 : R), n_out = 0;
        for (int i = 0; i < n; i++) {  // sequence-major: earlier positions of a prompt came in earlier calls
            size_t row = r0 + (size_t)i;
            seq[i] = (int)(row / (size_t)P);
            pos[i] = (int)(row % (size_t)P);
            if (pos[i] == P - 1) out[n_out++] = i;
        }
        rc = cuda_forward_stage(g, s, cache, tok + r0, seq, pos, n, out, n_out, e);
        if (rc) break;
        cuda_forward_launch(g, s, cache);
        if (last_logits && n_out)
            cuda_download(g->ctx, last_logits + (size_t)seq[out[0]] * V, s->logits, sizeof(float) * (size_t)n_out * V);
    }
    free(rows);
    return rc;
}

int bench_throughput_cuda(const CudaModel* g, const BenchOptions* o, CudaBenchResult* r, Err* e) {
    const ModelConfig* c = &g->cfg;
    CudaContext* ctx = g->ctx;
    int B = o->batch, P = o->prompt_len, G = o->gen_len, V = c->vocab;
    if (B < 1 || P < 1 || G < 1) return err_set(e, "bench: batch, prompt and generation lengths must be positive");
    memset(r, 0, sizeof *r);
    int L = P + G + 2;  // prompt, the warm-up step, the timed steps
    BenchMemoryPlan plan;
    if (!bench_memory_plan(c, B, P, G, cuda_memory_free(), o->max_chunk_rows, &plan)) {
        r->skipped = 1;
        snprintf(r->note, sizeof r->note, "%s", plan.why);
        return 0;
    }
    int R = plan.chunk_rows;
    r->chunk_rows = R;
    CudaKVCache cache;
    CudaRunState s;
    cuda_kvcache_create(&cache, c, B, L);
    cuda_runstate_create(&s, c, R, B);
    r->peak_gb = cuda_memory_used() / 1e9;

    // prefill: B prompts of P pseudo-random tokens in calls of at most R rows (whole prompts when one
    // fits), the logits of each prompt's last token; the warm-up (plans, module load) is the first call
    size_t N = (size_t)B * P;
    int* tok = xmalloc(sizeof(int) * (N > (size_t)B ? N : (size_t)B));
    uint64_t x = o->seed * 2654435761ull + 12345;
    for (size_t i = 0; i < N; i++) tok[i] = (int)(splitmix64_next(&x) % (uint64_t)V);
    int reps = o->repeats > 0 ? o->repeats : 1;
    double* ms = xmalloc(sizeof(double) * (size_t)(reps > G ? reps : G));
    CudaTimer* t = cuda_timer_create();
    int rc = cuda_prefill_chunks(g, &s, &cache, tok, B, P, (size_t)R, NULL, e);
    for (int rep = 0; rep < reps && !rc; rep++) {
        cuda_synchronize(ctx);
        cuda_timer_start(ctx, t);
        rc = cuda_prefill_chunks(g, &s, &cache, tok, B, P, 0, NULL, e);
        ms[rep] = cuda_timer_stop_ms(ctx, t);
    }
    if (!rc) {
        r->prefill_seconds = median_inplace(ms, reps) * 1e-3;
        r->prefill_tokens_per_s = (double)N / r->prefill_seconds;
        r->prefill_tflops = prefill_model_flops(c, B, P) / r->prefill_seconds * 1e-12;
    }

    // decode: rows b at position P-1 (token 0) computed once, for every row's logits, then advanced by
    // their argmax; one warm-up step (creates the decode shapes' GEMM plans), capture, G timed replays
    int* seq = xmalloc(sizeof(int) * 2 * (size_t)B);
    int* pos = seq + B;
    for (int b = 0; b < B && !rc; b++) {
        tok[b] = 0;
        seq[b] = b;
        pos[b] = P - 1;
    }
    if (!rc) rc = cuda_forward_stage(g, &s, &cache, tok, seq, pos, B, NULL, B, e);
    if (!rc) {
        int* dtok = s.ids;
        int* dpos = s.ids + 2 * s.max_rows;
        cuda_forward_launch(g, &s, &cache);
        cuda_decode_advance(ctx, dtok, dpos, s.logits, B, V);
        cuda_forward_launch(g, &s, &cache);
        cuda_decode_advance(ctx, dtok, dpos, s.logits, B, V);
        cuda_synchronize(ctx);
        cuda_graph_begin(ctx);
        cuda_forward_launch(g, &s, &cache);
        cuda_decode_advance(ctx, dtok, dpos, s.logits, B, V);
        CudaGraph* graph = cuda_graph_end(ctx);
        for (int step = 0; step < G; step++) {
            cuda_timer_start(ctx, t);
            cuda_graph_launch(ctx, graph);
            ms[step] = cuda_timer_stop_ms(ctx, t);
        }
        cuda_graph_free(graph);
        double step_s = median_inplace(ms, G) * 1e-3;
        r->decode_ms_per_step = step_s * 1e3;
        r->decode_tokens_per_s = B / step_s;
        // KV read per step: B rows, each reading positions 0..p of every layer's k and v (mean p)
        double mean_ctx = P + 1 + (G + 1) / 2.0;
        double kv_bytes = (double)B * c->n_layers * mean_ctx * 2.0 * c->n_kv_heads * c->head_dim * sizeof(bf16);
        r->decode_bytes_per_step = (double)cuda_model_weight_bytes(g) + kv_bytes;
        r->decode_gbs = r->decode_bytes_per_step / step_s / 1e9;
        float* logits = xmalloc(sizeof(float) * (size_t)B * V);
        cuda_download(ctx, logits, s.logits, sizeof(float) * (size_t)B * V);
        r->logits_hash = fnv1a64(logits, sizeof(float) * (size_t)B * V);
        free(logits);
    }
    cuda_timer_free(t);
    free(ms);
    free(tok);
    free(seq);
    cuda_runstate_free(&s);
    cuda_kvcache_free(&cache);
    return rc;
}
