// commands.h: the subcommands of the arbor binary. Each returns the process exit code
// (0 ok, 1 runtime failure, 2 bad usage or bad input).
#pragma once
#include "../models/config.h"
#include "../models/engine.h"
#include "args.h"

int cmd_init(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_convert(int argc, char** argv);
int cmd_forward(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_distill(int argc, char** argv);
int cmd_prune(int argc, char** argv);
int cmd_hetero(int argc, char** argv);
int cmd_sweep(int argc, char** argv);
int cmd_collect(int argc, char** argv);
int cmd_plot(int argc, char** argv);
int cmd_paper(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_demo(int argc, char** argv);

// Parses argv into cmd. After --help (exit code 0) or a usage error (printed, exit code 2) it sets
// *exit_code and returns 1: the command should stop. Returns 0 to go on.
int command_start(Command* cmd, int argc, char** argv, int* exit_code);
// For commands whose first argument is a path (arbor sweep CONFIG ...): parses the options after it
// into cmd. Missing path, --help or a usage error: sets *exit_code and returns 1. Else *path is set.
int command_start_path(Command* cmd, int argc, char** argv, const char* what, const char** path, int* exit_code);
// Prints "arbor: <msg>" and returns ARBOR_EXIT_BAD_INPUT, or ARBOR_EXIT_RUNTIME for a failure of the
// machine (err_runtime: a full disk, an I/O error).
int fail(const Err* e);

// Shape options shared by init and bench: --arch and the overrides of its preset.
#define ARCH_OPTIONS                                                                     \
    {"arch", "NAME", "preset: tiny, qwen3-0.6b, qwen3-1.7b, qwen3-4b, qwen3-8b", NULL},  \
        {"layers", "N", "override num_hidden_layers", NULL},                             \
        {"hidden", "N", "override hidden_size", NULL},                                   \
        {"ffn", "N", "override intermediate_size", NULL},                                \
        {"heads", "N", "override num_attention_heads", NULL},                            \
        {"kv-heads", "N", "override num_key_value_heads", NULL},                         \
        {"head-dim", "N", "override head_dim", NULL},                                    \
        {"vocab", "N", "override vocab_size", NULL},                                     \
        {"untied", NULL, "separate lm_head from the embedding", NULL}
// --device cpu|cuda, parsed and checked before anything loads: a missing GPU or a build without
// CUDA is one line (exit 2), never a crash halfway through.
int arg_device(const Command* cmd, Device* d, Err* e);
// --weights fp32|bf16|f16: how the CPU holds a model's matrices for inference; 16-bit ones are widened
// in the kernels (half the bytes a decoded token reads). Refused beside --device cuda (device: the
// option's text, or NULL), which uploads its own bf16 copy from fp32; ask before arg_device, so the
// combination is refused on any machine.
#define WEIGHTS_OPTION \
    {"weights", "fp32|bf16|f16", "CPU matrices in memory: fp32, or 16-bit widened in the kernels (default fp32)", NULL}
int arg_weights(const Command* cmd, const char* device, WeightType* t, Err* e);

// An output checkpoint folder: refused when it is the input (same file, by device and inode), or when
// it already holds a checkpoint and the command (which must declare --force) was not given --force.
// input may be NULL.
int check_output_dir(const Command* cmd, const char* out, const char* input, Err* e);
// Replacing a checkpoint (--force) never destroys it before the new one is complete (a full disk once
// left neither): output_stage_path gives where to write (out itself when no checkpoint is there, else
// OUT.new.PID; returns 1 then), and output_swap_in moves the old one aside, the new one in, and removes
// the old.
int output_stage_path(const char* out, char* write_to, size_t n);
int output_swap_in(const char* out, const char* staged, Err* e);
#define FORCE_OPTION {"force", NULL, "replace a checkpoint already in --out", NULL}

// An option given where the command's mode does not read it is refused, never ignored: -1 with e =
// "NAME: --OPTION has no effect WHERE" for the first of names[0..n) given.
int arg_refuse(const Command* cmd, const char* const* names, int n, const char* where, Err* e);
// One rule for generate and forward past max_position_embeddings: computed, as transformers does, with a
// warning on stderr naming the count.
void positions_note(const char* command, int positions, const ModelConfig* c);

// The preset named by --arch with the overrides applied, validated.
int arch_from_options(const Command* cmd, ModelConfig* cfg, Err* e);
