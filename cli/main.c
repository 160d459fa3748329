// main.c: the arbor command line: git-style subcommands, each in its own cmd_*.c.
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "../harness/cpu_policy.h"

static const struct {
    const char* name;
    int (*run)(int, char**);
    const char* summary;
} commands[] = {
    {"init", cmd_init, "write a random-initialised checkpoint in Hugging Face format"},
    {"info", cmd_info, "show a checkpoint's architecture, parameter count and size"},
    {"convert", cmd_convert, "rewrite a checkpoint as F32 or BF16 safetensors"},
    {"tokenize", cmd_tokenize, "text to a token shard, or text <-> ids on stdin/stdout"},
    {"forward", cmd_forward, "run token ids through a model and save the logits as .npy"},
    {"generate", cmd_generate, "continue token ids (greedy or sampled)"},
    {"prune", cmd_prune, "prune depth and width by importance into a smaller HF checkpoint"},
    {"hetero", cmd_hetero, "plan a heterogeneous pruning: per-layer block variants scored, the best architecture per budget"},
    {"sweep", cmd_sweep, "run a sweep from an INI file (cached stages, results.csv); --dry-run, --emit-slurm"},
    {"plot", cmd_plot, "frontier plots (PNG, PDF) of a sweep's results.csv"},
    {"paper", cmd_paper, "the LaTeX article of a sweep (tables and figures from its results), as PDF"},
    {"collect", cmd_collect, "rebuild a sweep's results.csv from its cell folders"},
    {"train", cmd_train, "train a model with cross-entropy on a token shard"},
    {"distill", cmd_distill, "distill a student from a teacher (logit KD) on a token shard"},
    {"eval", cmd_eval, "evaluate a model: mmlu, ppl"},
    {"bench", cmd_bench, "measure prefill and decode tokens/s"},
    {"demo", cmd_demo, "the built-in self-contained run on a tiny model"},
};

static void usage(FILE* out) {
    fprintf(out, "usage: arbor <command> [options]   (arbor <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char** argv) {
    cpu_policy_apply(argc, argv);  // may re-execute arbor with OMP_WAIT_POLICY=passive
    if (argc < 2) {
        usage(stderr);
        return ARBOR_EXIT_BAD_INPUT;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "arbor: unknown command '%s' (arbor --help lists them)\n", argv[1]);
    return ARBOR_EXIT_BAD_INPUT;
}
