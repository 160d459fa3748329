// throughput_cuda.c: see throughput_cuda.h.
#include "throughput_cuda.h"

#include <stdlib.h>
#include <string.h>

#include "../kernels/clock.h"
#include "../kernels/hash.h"

double prefill_model_flops(const ModelConfig* c, int B, int P) {
    double C = c->hidden, F = c->ffn, HS = c->head_dim, NH = c->n_heads, Q = NH * HS, KV = c->n_kv_heads * HS;
    double per_token = 2.0 * (C * (Q + 2 * KV) + Q * C + 2 * C * F + F * C) * c->n_layers;
    // causal: the token at position p attends p+1 keys; QK^T and PV are 2 FLOPs per (key, dim) each
    double attention = 4.0 * HS * NH * c->n_layers * ((double)P * (P + 1) / 2);
    return B * (P * per_token + attention) + 2.0 * B * C * c->vocab;
}

int bench_throughput_cuda(const CudaModel* g, const BenchOptions* o, CudaBenchResult* r, Err* e) {
    const ModelConfig* c = &g->cfg;
    CudaContext* ctx = g->ctx;
    int B = o->batch, P = o->prompt_len, G = o->gen_len, V = c->vocab;
    if (B < 1 || P < 1 || G < 1) return err_set(e, "bench: batch, prompt and generation lengths must be positive");
    memset(r, 0, sizeof *r);
    int L = P + G + 2;  // prompt, the warm-up step, the timed steps
    CudaKVCache cache;
    CudaRunState s;
    cuda_kvcache_create(&cache, c, B, L);
    cuda_runstate_create(&s, c, B * P, B);
    r->peak_gb = cuda_memory_used() / 1e9;

    // prefill: B prompts of P pseudo-random tokens packed into one call; logits of each last token
    size_t N = (size_t)B * P;
    int* ids = xmalloc(sizeof(int) * (4 * N + B));
    int *tok = ids, *seq = ids + N, *pos = ids + 2 * N, *last = ids + 3 * N;
    uint64_t x = o->seed * 2654435761ull + 12345;
    for (size_t i = 0; i < N; i++) {
        tok[i] = (int)(splitmix64_next(&x) % (uint64_t)V);
        seq[i] = (int)(i / P);
        pos[i] = (int)(i % P);
    }
    for (int b = 0; b < B; b++) last[b] = b * P + P - 1;
    int reps = o->repeats > 0 ? o->repeats : 1;
    double* ms = xmalloc(sizeof(double) * (size_t)(reps > G ? reps : G));
    CudaTimer* t = cuda_timer_create();
    int rc = cuda_forward_stage(g, &s, &cache, tok, seq, pos, (int)N, last, B, e);
    for (int rep = -1; rep < reps && !rc; rep++) {  // one warm-up: plans, module load
        cuda_timer_start(ctx, t);
        cuda_forward_launch(g, &s, &cache);
        double elapsed = cuda_timer_stop_ms(ctx, t);
        if (rep >= 0) ms[rep] = elapsed;
    }
    if (!rc) {
        r->prefill_seconds = median_inplace(ms, reps) * 1e-3;
        r->prefill_tokens_per_s = (double)N / r->prefill_seconds;
        r->prefill_tflops = prefill_model_flops(c, B, P) / r->prefill_seconds * 1e-12;
    }

    // decode: rows b at position P-1 advanced by the prefill's argmax, then one warm-up step
    // (creates the decode shapes' GEMM plans), capture, and G timed replays
    for (int b = 0; b < B && !rc; b++) {
        tok[b] = 0;
        seq[b] = b;
        pos[b] = P - 1;
    }
    if (!rc) rc = cuda_forward_stage(g, &s, &cache, tok, seq, pos, B, NULL, B, e);
    if (!rc) {
        int* dtok = s.ids;
        int* dpos = s.ids + 2 * s.max_rows;
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
    free(ids);
    cuda_runstate_free(&s);
    cuda_kvcache_free(&cache);
    return rc;
}
