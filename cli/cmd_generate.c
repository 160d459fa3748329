// cmd_generate.c: arbor generate — continue a sequence of token ids; prints the new ids on one line.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/generate.h"
#include "../models/tokenizer/tokenizer.h"
#include "commands.h"

int cmd_generate(int argc, char** argv) {
    Option opts[] = {
        {"model", "DIR", "checkpoint directory", NULL},
        {"tokens", "IDS", "prompt token ids, space- or comma-separated (prints ids)", NULL},
        {"prompt", "TEXT", "prompt text (prints the continuation's text)", NULL},
        {"tokenizer", "DIR", "tokenizer directory for --prompt (default: the model directory)", NULL},
        {"n", "N", "tokens to generate", "32"},
        {"greedy", NULL, "pick the most likely token (otherwise sample)", NULL},
        {"temperature", "T", "sampling temperature", "1.0"},
        {"top-p", "P", "nucleus sampling mass (1 = off)", "1.0"},
        {"seed", "S", "sampling seed", "0"},
        {"ignore-eos", NULL, "keep going past the config's eos token", NULL},
        {"device", "cpu|cuda", "backend: the CPU (fp32) or the GPU (bf16)", "cpu"},
        WEIGHTS_OPTION,
    };
    Command cmd = {"generate", "Continue a prompt: --tokens prints the new ids on one line, --prompt their text.", opts,
                   sizeof opts / sizeof opts[0]};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    Device device;
    WeightType weights;
    if (arg_weights(&cmd, arg_str(&cmd, "device"), &weights, &e) || arg_device(&cmd, &device, &e)) return fail(&e);
    const char *dir, *tokens_text = arg_str(&cmd, "tokens"), *prompt = arg_str(&cmd, "prompt");
    long n, seed;
    double temperature, top_p;
    int *ids = NULL, T = 0;
    if (arg_required(&cmd, "model", &dir, &e) || arg_long(&cmd, "n", 1, 1 << 20, &n, &e) ||
        arg_long(&cmd, "seed", 0, 0x7fffffffL, &seed, &e) ||
        arg_double(&cmd, "temperature", 1e-4, 100, &temperature, &e) || arg_double(&cmd, "top-p", 1e-6, 1, &top_p, &e))
        return fail(&e);
    if (!tokens_text == !prompt) {
        err_set(&e, "generate: give exactly one of --tokens and --prompt");
        return fail(&e);
    }
    static const char* const text_only[] = {"tokenizer"};
    if (!prompt && arg_refuse(&cmd, text_only, 1, "with --tokens (ids in, ids out)", &e)) return fail(&e);
    Tokenizer tok = {0};
    if (prompt) {
        const char* tdir = arg_str(&cmd, "tokenizer") ? arg_str(&cmd, "tokenizer") : dir;
        IntVec v = {0};
        if (tokenizer_load(&tok, tdir, &e)) return fail(&e);
        if (tokenizer_encode(&tok, prompt, strlen(prompt), &v, &e)) {
            tokenizer_free(&tok);
            err_prefix(&e, "--prompt");
            return fail(&e);
        }
        if (v.len == 0) {
            tokenizer_free(&tok);
            err_set(&e, "generate: --prompt is empty");
            return fail(&e);
        }
        ids = v.data;
        T = (int)v.len;
    } else if (parse_token_list(tokens_text, &ids, &T, &e)) {
        return fail(&e);
    }
    Model m;
    if (model_load_as(&m, dir, weights, &e)) {
        free(ids);
        if (prompt) tokenizer_free(&tok);
        return fail(&e);
    }
    SampleOptions so = {arg_flag(&cmd, "greedy"), (float)temperature, (float)top_p, (uint64_t)seed,
                        !arg_flag(&cmd, "ignore-eos")};
    int* out = xmalloc(sizeof(int) * (size_t)n);
    int got = 0;
    const int* prompts[1] = {ids};
    positions_note("generate", T + (int)n, &m.cfg);
    Engine en;
    int rc = engine_open(&en, &m, device, &e);
    if (!rc) {
        rc = generate_on(&en, prompts, &T, 1, (int)n, &so, out, &got, &e);
        engine_close(&en);
    }
    if (!rc && prompt) {
        ByteVec text = {0};
        rc = tokenizer_decode(&tok, out, (size_t)got, &text, &e);
        if (!rc) printf("%s\n", text.data ? text.data : "");
        free(text.data);
    } else if (!rc) {
        for (int i = 0; i < got; i++) printf("%s%d", i ? " " : "", out[i]);
        printf("\n");
    }
    if (prompt) tokenizer_free(&tok);
    free(out);
    free(ids);
    model_free(&m);
    return rc ? fail(&e) : 0;
}
