// cmd_demo.c: arbor demo — the built-in, self-contained run: a tiny Qwen3 checkpoint written in
// Hugging Face format, loaded back, run batched and token by token, and benchmarked. (The sweep
// issue grows this into the demo study: prune, distill, evaluate, plot.)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../evals/throughput.h"
#include "../models/generate.h"
#include "commands.h"

int cmd_demo(int argc, char** argv) {
    Option opts[] = {
        {"out", "DIR", "working directory", "runs/demo"},
        {"seed", "S", "random seed", "0"},
    };
    Command cmd = {"demo", "The built-in run on a tiny model (no downloads).", opts, 2};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    long seed;
    if (arg_long(&cmd, "seed", 0, 0x7fffffffL, &seed, &e)) return fail(&e);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tiny", arg_str(&cmd, "out"));
    ModelConfig cfg;
    if (config_preset("tiny", &cfg, &e) || checkpoint_write_random(&cfg, (uint64_t)seed, dir, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, &e))
        return fail(&e);
    fprintf(stderr, "demo: wrote %s (%lld parameters)\n", dir, config_param_count(&cfg));
    Model m;
    if (model_load(&m, dir, &e)) return fail(&e);

    // the same prompts batched and one token at a time must agree: the KV cache at work
    int p0[] = {1, 5, 9, 42, 7, 300, 11}, p1[] = {100, 200, 17};
    const int* prompts[2] = {p0, p1};
    int lens[2] = {7, 3};
    int V = cfg.vocab, rc = 0;
    float* batched = xmalloc(sizeof(float) * 10 * V);
    float* stepped = xmalloc(sizeof(float) * (size_t)V);
    KVCache cache;
    RunState s;
    kvcache_create(&cache, &cfg, 2, 64);
    runstate_create(&s, &cfg, 10, 64);
    rc = model_prefill(&m, &s, &cache, prompts, lens, 2, true, batched, &e);
    double max_diff = 0;
    for (int t = 0; t < lens[0] && !rc; t++) {
        int seq = 0;
        rc = model_forward(&m, &s, &cache, &p0[t], &seq, &t, 1, NULL, 1, stepped, &e);
        for (int v = 0; v < V; v++) max_diff = fmax(max_diff, fabs(stepped[v] - batched[(size_t)t * V + v]));
    }
    runstate_free(&s);
    kvcache_free(&cache);
    free(batched);
    free(stepped);
    if (rc) return fail(&e);
    printf("batched prefill vs token-by-token decode: max |diff| = %.3g\n", max_diff);

    int out[2 * 16], got[2];
    SampleOptions greedy = {.greedy = true, .stop_at_eos = false};
    if (generate(&m, prompts, lens, 2, 16, &greedy, out, got, &e)) return fail(&e);
    for (int i = 0; i < 2; i++) {
        printf("greedy continuation of prompt %d:", i);
        for (int j = 0; j < got[i]; j++) printf(" %d", out[i * 16 + j]);
        printf("\n");
    }
    BenchOptions bo = {4, 64, 32, 3, (uint64_t)seed};
    BenchResult r;
    if (bench_throughput(&m, &bo, &r, &e)) return fail(&e);
    printf("throughput (batch 4, prompt 64): prefill %.0f tokens/s, decode %.0f tokens/s\n", r.prefill_tokens_per_s,
           r.decode_tokens_per_s);
    model_free(&m);
    return max_diff < 1e-4 ? 0 : ARBOR_EXIT_RUNTIME;
}
