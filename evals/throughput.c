// throughput.c: see throughput.h. Prefill computes logits for each prompt's last token only, as
// generation does; decode steps are greedy, all sequences together.
#include "throughput.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/hash.h"
#include "../models/generate.h"
#include "../kernels/clock.h"
#include "../kernels/ops.h"
#include "cpu_usage.h"
#ifdef ARBOR_HAVE_CUDA
#include "throughput_cuda.h"
#endif

int bench_throughput(const Model* m, const BenchOptions* o, BenchResult* r, Err* e) {
    const ModelConfig* c = &m->cfg;
    int B = o->batch, P = o->prompt_len, G = o->gen_len, V = c->vocab;
    if (B < 1 || P < 1 || G < 0) return err_set(e, "bench: batch and prompt length must be positive");
    memset(r, 0, sizeof *r);
    KVCache cache;
    RunState s;
    kvcache_create(&cache, c, B, P + G);
    runstate_create(&s, c, B * P, P + G);
    int* ids = xmalloc(sizeof(int) * (size_t)B * P);
    const int** prompts = xmalloc(sizeof(int*) * (size_t)B);
    int* lens = xmalloc(sizeof(int) * (size_t)B);
    uint64_t x = o->seed * 2654435761ull + 12345;
    for (int i = 0; i < B * P; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int)((x >> 33) % (uint64_t)V);
    }
    for (int b = 0; b < B; b++) {
        prompts[b] = ids + (size_t)b * P;
        lens[b] = P;
    }
    float* logits = xmalloc(sizeof(float) * (size_t)B * V);
    int reps = o->repeats > 0 ? o->repeats : 1;
    double* pre = xcalloc((size_t)reps * 5, sizeof(double));  // per repeat: prefill s, matmul s, matmul flops, decode s
    double *mm_s = pre + reps, *mm_f = pre + 2 * reps, *dec = pre + 3 * reps, *work = pre + 4 * reps;
    int* tok = xmalloc(sizeof(int) * (size_t)B * 3);
    int *seq = tok + B, *pos = tok + 2 * B;
    int rc = model_prefill(m, &s, &cache, prompts, lens, B, false, logits, e);  // warm-up: page faults, caches
    CpuSample c0, c1;
    cpu_sample(&c0);
    for (int rep = 0; rep < reps && !rc; rep++) {
        s.matmul_seconds = s.matmul_flops = 0;
        double t0 = now_seconds();
        rc = model_prefill(m, &s, &cache, prompts, lens, B, false, logits, e);
        pre[rep] = now_seconds() - t0;
        mm_s[rep] = s.matmul_seconds, mm_f[rep] = s.matmul_flops;
        t0 = now_seconds();
        for (int step = 0; step < G && !rc; step++) {  // greedy, every sequence together
            for (int b = 0; b < B; b++) {
                tok[b] = argmax(logits + (size_t)b * V, V);
                seq[b] = b;
                pos[b] = P + step;
            }
            rc = model_forward(m, &s, &cache, tok, seq, pos, B, NULL, B, logits, e);
        }
        dec[rep] = now_seconds() - t0;
    }
    cpu_sample(&c1);
    if (!rc) {
        // the median repeat by prefill time gives the matmul figures
        int med = 0;
        for (int i = 0; i < reps; i++) work[i] = pre[i];
        double mid = median_inplace(work, reps);
        for (int i = 0; i < reps; i++)
            if (fabs(pre[i] - mid) < fabs(pre[med] - mid)) med = i;
        r->prefill_seconds = mid;
        r->prefill_matmul_gflops = mm_s[med] > 0 ? mm_f[med] / mm_s[med] * 1e-9 : 0;
        r->prefill_matmul_share = mm_s[med] / pre[med];
        r->prefill_tokens_per_s = (double)B * P / mid;
        r->prefill_tps_min = (double)B * P / work[reps - 1], r->prefill_tps_max = (double)B * P / work[0];
        if (G > 0) {
            for (int i = 0; i < reps; i++) work[i] = dec[i];
            r->decode_seconds = median_inplace(work, reps);
            r->decode_tokens_per_s = (double)B * G / r->decode_seconds;
            r->decode_ms_per_step = 1e3 * r->decode_seconds / G;
            r->decode_tps_min = (double)B * G / work[reps - 1], r->decode_tps_max = (double)B * G / work[0];
        }
        r->repeats = reps;
        r->cpu_per_wall = cpu_per_wall(&c0, &c1);
        r->wait_share = cpu_wait_share(&c0, &c1, kernels_cpu_threads());
    }
    r->logits_hash = fnv1a64(logits, sizeof(float) * (size_t)B * V);
    free(pre);
    free(tok);
    free(logits);
    free(lens);
    free(prompts);
    free(ids);
    runstate_free(&s);
    kvcache_free(&cache);
    return rc;
}

int bench_throughput_on(const Engine* en, const BenchOptions* o, BenchResult* r, Err* e) {
    if (en->device == DEVICE_CPU) return bench_throughput(en->m, o, r, e);
#ifndef ARBOR_HAVE_CUDA
    return err_set(e, "bench: this arbor was built without CUDA");
#else
    CudaBenchResult g;
    if (bench_throughput_cuda(en->gpu, o, &g, e)) return -1;
    memset(r, 0, sizeof *r);
    r->prefill_seconds = g.prefill_seconds;
    r->prefill_tokens_per_s = g.prefill_tokens_per_s;
    r->decode_ms_per_step = g.decode_ms_per_step;
    r->decode_seconds = g.decode_ms_per_step * 1e-3 * o->gen_len;
    r->decode_tokens_per_s = g.decode_tokens_per_s;
    r->prefill_tps_min = r->prefill_tps_max = r->prefill_tokens_per_s;  // one figure per call: spread comes from rounds
    r->decode_tps_min = r->decode_tps_max = r->decode_tokens_per_s;
    r->repeats = 1;
    r->logits_hash = g.logits_hash;
    r->device_peak_gb = g.peak_gb;
    return 0;
#endif
}
