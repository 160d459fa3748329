// cmd_generate.c: arbor generate — continue a sequence of token ids; prints the new ids on one line.
#include <stdio.h>
#include <stdlib.h>

#include "../models/generate.h"
#include "commands.h"

int cmd_generate(int argc, char** argv) {
    Option opts[] = {
        {"model", "DIR", "checkpoint directory", NULL},
        {"tokens", "IDS", "prompt token ids, space- or comma-separated", NULL},
        {"n", "N", "tokens to generate", "32"},
        {"greedy", NULL, "pick the most likely token (otherwise sample)", NULL},
        {"temperature", "T", "sampling temperature", "1.0"},
        {"top-p", "P", "nucleus sampling mass (1 = off)", "1.0"},
        {"seed", "S", "sampling seed", "0"},
        {"ignore-eos", NULL, "keep going past the config's eos token", NULL},
    };
    Command cmd = {"generate", "Continue token ids; prints the generated ids, space-separated, on one line.", opts,
                   sizeof opts / sizeof opts[0]};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    const char *dir, *tokens_text;
    long n, seed;
    double temperature, top_p;
    int *ids, T;
    if (arg_required(&cmd, "model", &dir, &e) || arg_required(&cmd, "tokens", &tokens_text, &e) ||
        arg_long(&cmd, "n", 1, 1 << 20, &n, &e) || arg_long(&cmd, "seed", 0, 0x7fffffffL, &seed, &e) ||
        arg_double(&cmd, "temperature", 1e-4, 100, &temperature, &e) || arg_double(&cmd, "top-p", 1e-6, 1, &top_p, &e) ||
        parse_token_list(tokens_text, &ids, &T, &e))
        return fail(&e);
    Model m;
    if (model_load(&m, dir, &e)) {
        free(ids);
        return fail(&e);
    }
    SampleOptions so = {arg_flag(&cmd, "greedy"), (float)temperature, (float)top_p, (uint64_t)seed,
                        !arg_flag(&cmd, "ignore-eos")};
    int* out = xmalloc(sizeof(int) * (size_t)n);
    int got = 0;
    const int* prompts[1] = {ids};
    int rc = generate(&m, prompts, &T, 1, (int)n, &so, out, &got, &e);
    if (!rc) {
        for (int i = 0; i < got; i++) printf("%s%d", i ? " " : "", out[i]);
        printf("\n");
    }
    free(out);
    free(ids);
    model_free(&m);
    return rc ? fail(&e) : 0;
}
