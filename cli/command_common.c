// command_common.c: helpers every subcommand uses (see commands.h).
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "../models/file_io.h"
#include "commands.h"

int command_start(Command* cmd, int argc, char** argv, int* exit_code) {
    Err e;
    int rc = args_parse(cmd, argc, argv, &e);
    if (rc == 1) {
        *exit_code = 0;
        return 1;
    }
    if (rc < 0) {
        *exit_code = fail(&e);
        return 1;
    }
    return 0;
}

int command_start_path(Command* cmd, int argc, char** argv, const char* what, const char** path, int* exit_code) {
    if (argc < 1 || argv[0][0] == '-') {
        if (argc >= 1 && command_start(cmd, argc, argv, exit_code)) return 1;  // --help, or a usage error
        fprintf(stderr, "arbor: %s: give %s first (arbor %s --help)\n", cmd->name, what, cmd->name);
        *exit_code = ARBOR_EXIT_BAD_INPUT;
        return 1;
    }
    *path = argv[0];
    return command_start(cmd, argc - 1, argv + 1, exit_code);
}

int fail(const Err* e) {
    fflush(stdout);
    fprintf(stderr, "arbor: %s\n", e->msg);
    return e->runtime ? ARBOR_EXIT_RUNTIME : ARBOR_EXIT_BAD_INPUT;
}

int arg_device(const Command* cmd, Device* d, Err* e) {
    return device_parse(arg_str(cmd, "device"), d, e) || device_available(*d, e) ? -1 : 0;
}

int arg_weights(const Command* cmd, const char* device, WeightType* t, Err* e) {
    if (weight_type_parse(arg_str(cmd, "weights") ? arg_str(cmd, "weights") : "fp32", t, e)) return -1;
    if (device && !strcmp(device, "cuda") && *t != WEIGHT_F32)
        return err_set(e, "--weights %s is for the CPU; --device cuda uploads its own bf16 copy of fp32 weights",
                       weight_type_name(*t));
    return 0;
}

int arg_refuse(const Command* cmd, const char* const* names, int n, const char* where, Err* e) {
    for (int i = 0; i < n; i++)
        if (arg_str(cmd, names[i])) return err_set(e, "%s: --%s has no effect %s", cmd->name, names[i], where);
    return 0;
}

int arch_from_options(const Command* cmd, ModelConfig* cfg, Err* e) {
    const char* arch;
    if (arg_required(cmd, "arch", &arch, e) || config_preset(arch, cfg, e)) return -1;
    struct {
        const char* name;
        int* field;
    } overrides[] = {
        {"layers", &cfg->n_layers}, {"hidden", &cfg->hidden},      {"ffn", &cfg->ffn},
        {"heads", &cfg->n_heads},   {"kv-heads", &cfg->n_kv_heads}, {"head-dim", &cfg->head_dim},
        {"vocab", &cfg->vocab},
    };
    for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++) {
        if (!arg_str(cmd, overrides[i].name)) continue;
        long v;
        if (arg_long(cmd, overrides[i].name, 1, 1L << 24, &v, e)) return -1;
        *overrides[i].field = (int)v;
    }
    if (arg_flag(cmd, "untied")) cfg->tie_embeddings = false;
    return config_validate(cfg, "--arch options", e);
}

int check_output_dir(const Command* cmd, const char* out, const char* input, Err* e) {
    struct stat so, si;
    if (stat(out, &so) != 0) return 0;  // nothing there yet
    if (input && stat(input, &si) == 0 && so.st_dev == si.st_dev && so.st_ino == si.st_ino)
        return err_set(e, "%s: --out %s is the input checkpoint %s: it would be overwritten while read", cmd->name, out, input);
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    if (stat(cfg, &so) == 0 && !arg_flag(cmd, "force"))
        return err_set(e, "%s: --out %s already holds a checkpoint; give --force to replace it", cmd->name, out);
    return 0;
}

int output_stage_path(const char* out, char* write_to, size_t n) {
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    if (access(cfg, F_OK) != 0) {
        snprintf(write_to, n, "%s", out);
        return 0;
    }
    snprintf(write_to, n, "%s.new.%ld", out, (long)getpid());
    return 1;
}

int output_swap_in(const char* out, const char* staged, Err* e) {
    char old[4200];
    snprintf(old, sizeof old, "%s.old.%ld", out, (long)getpid());
    if (rename(out, old) != 0) return err_set(e, "%s: cannot move the old checkpoint aside (%s); the new one is in %s", out, strerror(errno), staged);
    if (rename(staged, out) != 0) {
        int saved = errno;
        rename(old, out);  // put the old one back
        return err_set(e, "%s: cannot move the new checkpoint into place (%s); it is in %s", out, strerror(saved), staged);
    }
    fsync_parent(out);
    return remove_tree(old, e);
}

void positions_note(const char* command, int positions, const ModelConfig* c) {
    if (c->max_positions > 0 && positions > c->max_positions)
        fprintf(stderr,
                "%s: warning: %d positions, past the model's max_position_embeddings (%d): computed as transformers computes them "
                "(rotary positions extend), but the model was not trained there\n",
                command, positions, c->max_positions);
}
