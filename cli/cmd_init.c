// cmd_init.c: arbor init — a random-initialised checkpoint, streamed to disk tensor by tensor so
// that shapes larger than memory (Qwen3-8B) can be written too.
#include <stdio.h>
#include <string.h>

#include "../models/file_io.h"
#include "../models/model.h"
#include "commands.h"

int cmd_init(int argc, char** argv) {
    Option opts[] = {
        ARCH_OPTIONS,
        {"seed", "S", "random seed", "0"},
        {"out", "DIR", "output checkpoint directory", NULL},
        {"dtype", "bf16|f32", "storage dtype", "bf16"},
        {"max-shard-bytes", "N", "shard the safetensors past this size", "5000000000"},
        FORCE_OPTION,
    };
    Command cmd = {"init", "Write a random-initialised Qwen3 checkpoint (config.json + safetensors).", opts,
                   sizeof opts / sizeof opts[0]};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    ModelConfig cfg;
    const char *out, *dtype = arg_str(&cmd, "dtype");
    long seed, shard;
    if (arch_from_options(&cmd, &cfg, &e) || arg_required(&cmd, "out", &out, &e) ||
        arg_long(&cmd, "seed", 0, 0x7fffffffL, &seed, &e) ||
        arg_long(&cmd, "max-shard-bytes", 1, 0x7fffffffffffL, &shard, &e))
        return fail(&e);
    if (strcmp(dtype, "bf16") != 0 && strcmp(dtype, "f32") != 0) {
        err_set(&e, "init: --dtype must be bf16 or f32, not '%s'", dtype);
        return fail(&e);
    }
    if (check_output_dir(&cmd, out, NULL, &e)) return fail(&e);
    StDtype dt = strcmp(dtype, "f32") == 0 ? ST_F32 : ST_BF16;
    fprintf(stderr, "init: %s, %d layers, %.2f M parameters -> %s (%s)\n", arg_str(&cmd, "arch"), cfg.n_layers,
            (double)config_param_count(&cfg) * 1e-6, out, dtype);
    char write_to[4200];
    int staged = output_stage_path(out, write_to, sizeof write_to);
    if (checkpoint_write_random(&cfg, (uint64_t)seed, write_to, dt, (size_t)shard, &e)) {
        if (staged) remove_tree(write_to, NULL);
        return fail(&e);
    }
    if (staged && output_swap_in(out, write_to, &e)) return fail(&e);
    return 0;
}
