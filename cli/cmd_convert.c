// cmd_convert.c: arbor convert — load a checkpoint and write it back in arbor's canonical form
// (F32 or BF16, sharded past a size, config.json in the dialect both transformers 4 and 5 read).
#include <stdio.h>
#include <string.h>

#include "../models/model.h"
#include "../models/file_io.h"
#include "commands.h"

int cmd_convert(int argc, char** argv) {
    Option opts[] = {
        {"model", "DIR", "checkpoint to read", NULL},
        {"out", "DIR", "checkpoint to write", NULL},
        {"dtype", "bf16|f32", "storage dtype", "bf16"},
        FORCE_OPTION,
        {"max-shard-bytes", "N", "shard the safetensors past this size", "5000000000"},
    };
    Command cmd = {"convert", "Rewrite a checkpoint as F32 or BF16 safetensors.", opts, sizeof opts / sizeof opts[0]};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    const char *in, *out, *dtype = arg_str(&cmd, "dtype");
    long shard;
    if (arg_required(&cmd, "model", &in, &e) || arg_required(&cmd, "out", &out, &e) ||
        arg_long(&cmd, "max-shard-bytes", 1, 0x7fffffffffffL, &shard, &e))
        return fail(&e);
    if (strcmp(dtype, "bf16") != 0 && strcmp(dtype, "f32") != 0) {
        err_set(&e, "convert: --dtype must be bf16 or f32, not '%s'", dtype);
        return fail(&e);
    }
    if (strcmp(in, out) == 0) {
        err_set(&e, "convert: --out must differ from --model");
        return fail(&e);
    }
    if (check_output_dir(&cmd, out, in, &e)) return fail(&e);
    Model m;
    if (model_load(&m, in, &e)) return fail(&e);
    char write_to[4200];
    int staged = output_stage_path(out, write_to, sizeof write_to);
    int rc = model_save(&m, write_to, strcmp(dtype, "f32") == 0 ? ST_F32 : ST_BF16, (size_t)shard, &e);
    model_free(&m);
    if (rc && staged) remove_tree(write_to, NULL);
    if (!rc && staged) rc = output_swap_in(out, write_to, &e);
    return rc ? fail(&e) : 0;
}
