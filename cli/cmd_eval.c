// cmd_eval.c: arbor eval <what> — the evaluations: ppl (perplexity on a token shard).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../evals/perplexity.h"
#include "../mmlu/mmlu_eval.h"
#include "../models/token_shard.h"
#include "../models/tokenizer/tokenizer.h"
#include "commands.h"

static int eval_ppl(int argc, char** argv) {
    Option opts[] = {
        {"model", "DIR", "checkpoint directory", NULL},
        {"data", "SHARD", "token shard (arbor tokenize)", NULL},
        {"seq-len", "L", "window length in tokens", "2048"},
        {"stride", "S", "window step (default: seq-len, disjoint windows)", NULL},
        {"max-tokens", "N", "use only the first N tokens of the shard (0: all)", "0"},
        {"device", "cpu|cuda", "backend: the CPU (fp32) or the GPU (bf16)", "cpu"},
        WEIGHTS_OPTION,
    };
    Command cmd = {"eval ppl", "Mean NLL (nats/token) and perplexity of a token shard, with sliding windows.", opts,
                   sizeof opts / sizeof opts[0]};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    const char *dir, *data;
    long L, S, max_tokens;
    if (arg_required(&cmd, "model", &dir, &e) || arg_required(&cmd, "data", &data, &e) ||
        arg_long(&cmd, "seq-len", 2, 1 << 20, &L, &e) || arg_long(&cmd, "max-tokens", 0, 1L << 40, &max_tokens, &e))
        return fail(&e);
    S = L;
    if (arg_str(&cmd, "stride") && arg_long(&cmd, "stride", 1, L, &S, &e)) return fail(&e);
    Device device;
    WeightType weights;
    if (arg_weights(&cmd, arg_str(&cmd, "device"), &weights, &e) || arg_device(&cmd, &device, &e)) return fail(&e);
    Shard shard;
    if (shard_open(&shard, data, &e)) return fail(&e);
    Model m;
    if (model_load_as(&m, dir, weights, &e)) {
        shard_close(&shard);
        return fail(&e);
    }
    int64_t n;
    int* tokens = shard_read_tokens(&shard, max_tokens > 0 ? (uint64_t)max_tokens : UINT64_MAX, &n);
    PplOptions po = {(int)L, (int)S, 0, 256};
    PplResult r;
    Engine en;
    int rc = engine_open(&en, &m, device, &e);
    if (!rc) {
        rc = perplexity_eval_on(&en, tokens, n, &po, &r, &e);
        engine_close(&en);
    }
    if (rc) err_prefix(&e, "%s", data);
    free(tokens);
    model_free(&m);
    shard_close(&shard);
    if (rc) return fail(&e);
    printf("model=%s\ndata=%s\ndevice=%s\nweights=%s\nseq_len=%ld\nstride=%ld\npredicted_tokens=%lld\nmean_nll=%.6f\n"
           "perplexity=%.4f\n",
           dir, data, device_name(device), device_weights_name(device, weights), L, S,
           (long long)r.n_predicted, r.mean_nll, r.perplexity);
    fprintf(stderr, "ppl: %lld tokens in %.1f s (%.0f tokens/s)\n", (long long)r.n_predicted, r.seconds,
            (double)r.n_predicted / r.seconds);
    return 0;
}

static int eval_mmlu(int argc, char** argv) {
    Option opts[] = {
        {"model", "DIR", "checkpoint directory", NULL},
        {"data", "MMLU_DIR", "the original MMLU CSVs (dev/, val/, test/)", NULL},
        {"out", "DIR", "where predictions.csv and summary.csv go", NULL},
        {"tokenizer", "DIR", "tokenizer directory (default: the model directory)", NULL},
        {"shots", "K", "few-shot examples from the dev split, 0..5", "5"},
        {"subjects", "LIST", "comma-separated subjects (default: all 57)", NULL},
        {"limit", "N", "questions per subject (0: all)", "0"},
        {"split", "NAME", "test, val or dev", "test"},
        {"batch", "B", "questions per forward call", "4"},
        {"max-len", "N", "context limit in tokens (default: the model's max_position_embeddings)", "0"},
        {"truncate", "tokens|shots", "a longer context: keep its last N tokens (lm-eval), or drop whole shots first", "tokens"},
        {"dry-run", NULL, "tokenize every prompt and count tokens, without running the model", NULL},
        {"device", "cpu|cuda", "backend: the CPU (fp32) or the GPU (bf16)", "cpu"},
        WEIGHTS_OPTION,
    };
    Command cmd = {"eval mmlu", "MMLU accuracy, prompts and scoring as lm-evaluation-harness's mmlu task.", opts,
                   sizeof opts / sizeof opts[0]};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    const char *dir, *data, *out, *split = arg_str(&cmd, "split");
    long shots, limit, batch, max_len;
    if (arg_required(&cmd, "model", &dir, &e) || arg_required(&cmd, "data", &data, &e) ||
        arg_required(&cmd, "out", &out, &e) || arg_long(&cmd, "shots", 0, 5, &shots, &e) ||
        arg_long(&cmd, "limit", 0, 1 << 30, &limit, &e) || arg_long(&cmd, "batch", 1, 64, &batch, &e) ||
        arg_long(&cmd, "max-len", 0, 1 << 30, &max_len, &e))
        return fail(&e);
    Device device;
    WeightType weights;
    if (arg_weights(&cmd, arg_str(&cmd, "device"), &weights, &e) || arg_device(&cmd, &device, &e)) return fail(&e);
    if (strcmp(split, "test") && strcmp(split, "val") && strcmp(split, "dev")) {
        err_set(&e, "eval mmlu: --split must be test, val or dev, not '%s'", split);
        return fail(&e);
    }
    MmluTruncation truncation;
    if (mmlu_truncation_parse(arg_str(&cmd, "truncate"), &truncation)) {
        err_set(&e, "eval mmlu: --truncate must be tokens or shots, not '%s'", arg_str(&cmd, "truncate"));
        return fail(&e);
    }
    Tokenizer tok;
    if (tokenizer_load(&tok, arg_str(&cmd, "tokenizer") ? arg_str(&cmd, "tokenizer") : dir, &e)) return fail(&e);
    Model m;
    if (model_load_as(&m, dir, weights, &e)) {
        tokenizer_free(&tok);
        return fail(&e);
    }
    MmluOptions o = {(int)shots, (int)limit, (int)batch, (int)max_len, split, arg_str(&cmd, "subjects"),
                     arg_flag(&cmd, "dry-run"), truncation};
    MmluResult r;
    Engine en;
    int rc = engine_open(&en, &m, device, &e);
    if (!rc) {
        rc = mmlu_evaluate_on(&en, &tok, data, &o, &r, &e) || (!o.dry_run && mmlu_write_results(&r, out, &e));
        engine_close(&en);
    }
    model_free(&m);
    tokenizer_free(&tok);
    if (rc) return fail(&e);
    if (o.dry_run) {
        printf("questions=%d\ntruncated=%d\nfewer_shots=%d\nprompt_tokens=%lld\ncomputed_tokens=%lld\n", r.n,
               r.n_truncated, r.n_fewer_shots, (long long)r.prompt_tokens, (long long)r.computed_tokens);
        mmlu_result_free(&r);
        return 0;
    }
    MmluSummary sum;
    mmlu_summarize(&r, &sum);
    printf("device=%s\nweights=%s\nquestions=%d\ncorrect=%d\naccuracy=%.6f\ntruncated=%d\nfewer_shots=%d\n"
           "prompt_tokens=%lld\ncomputed_tokens=%lld\nseconds=%.2f\n",
           device_name(device), device_weights_name(device, weights), r.n, sum.total_correct, sum.micro,
           r.n_truncated, r.n_fewer_shots, (long long)r.prompt_tokens, (long long)r.computed_tokens, r.seconds);
    if (r.n_truncated || r.n_fewer_shots)
        fprintf(stderr, "mmlu: %d questions cut from the left and %d with fewer shots to fit %d tokens (predictions.csv: "
                        "cut_tokens, shots)\n", r.n_truncated, r.n_fewer_shots, r.max_len);
    fprintf(stderr, "mmlu: %d questions, accuracy %.4f, %.1f s, %.0f prompt tokens/s (%.0f computed tokens/s); %s\n", r.n,
            sum.micro, r.seconds, (double)r.prompt_tokens / r.seconds, (double)r.computed_tokens / r.seconds, out);
    mmlu_result_free(&r);
    return 0;
}

int cmd_eval(int argc, char** argv) {
    if (argc >= 1 && strcmp(argv[0], "ppl") == 0) return eval_ppl(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "mmlu") == 0) return eval_mmlu(argc - 1, argv + 1);
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        printf("usage: arbor eval <what> [options]\n\n  mmlu   MMLU accuracy (lm-evaluation-harness prompts)\n"
               "  ppl    perplexity of a token shard\n");
        return 0;
    }
    fprintf(stderr, "arbor: eval: say what to evaluate: mmlu or ppl (arbor eval --help)\n");
    return ARBOR_EXIT_BAD_INPUT;
}
