// cmd_forward.c: arbor forward — logits (T, vocab) for one sequence of token ids, as float32 .npy.
#include <stdio.h>
#include <stdlib.h>

#include "../models/generate.h"
#include "../models/npy.h"
#include "commands.h"

int cmd_forward(int argc, char** argv) {
    Option opts[] = {
        {"model", "DIR", "checkpoint directory", NULL},
        {"tokens", "IDS", "token ids, space- or comma-separated", NULL},
        {"out", "FILE.npy", "where to write the float32 logits (T, vocab)", NULL},
        WEIGHTS_OPTION,
    };
    Command cmd = {"forward", "Run token ids through a model and save all positions' logits.", opts, 4};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    const char *dir, *tokens_text, *out;
    int *ids, T;
    WeightType weights;
    if (arg_weights(&cmd, NULL, &weights, &e) || arg_required(&cmd, "model", &dir, &e) ||
        arg_required(&cmd, "tokens", &tokens_text, &e) ||
        arg_required(&cmd, "out", &out, &e) || parse_token_list(tokens_text, &ids, &T, &e))
        return fail(&e);
    Model m;
    if (model_load_as(&m, dir, weights, &e)) {
        free(ids);
        return fail(&e);
    }
    positions_note("forward", T, &m.cfg);
    KVCache cache;
    RunState s;
    kvcache_create(&cache, &m.cfg, 1, T);
    runstate_create(&s, &m.cfg, T, T);
    int V = m.cfg.vocab;
    float* logits = xmalloc(sizeof(float) * (size_t)T * V);
    const int* prompts[1] = {ids};
    int rc = model_prefill(&m, &s, &cache, prompts, &T, 1, true, logits, &e) ||
             npy_write_f32(out, logits, T, V, &e);
    free(logits);
    runstate_free(&s);
    kvcache_free(&cache);
    model_free(&m);
    free(ids);
    if (rc) return fail(&e);
    fprintf(stderr, "forward: %d tokens -> %s (%d x %d float32)\n", T, out, T, V);
    return 0;
}
