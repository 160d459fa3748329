// cmd_info.c: arbor info — what a checkpoint is, from its config and tensor headers (no weights read).
#include <stdio.h>

#include "../models/model.h"
#include "commands.h"

int cmd_info(int argc, char** argv) {
    Option opts[] = {{"model", "DIR", "checkpoint directory", NULL}};
    Command cmd = {"info", "Show a checkpoint's architecture, parameter count and size.", opts, 1};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    const char* dir;
    ModelConfig c;
    CheckpointSummary s;
    if (arg_required(&cmd, "model", &dir, &e) || checkpoint_inspect(dir, &c, &s, &e)) return fail(&e);
    long long emb = (long long)c.vocab * c.hidden;
    printf("model            %s\n", dir);
    printf("architecture     %s\n", arch_hf_class(c.arch));
    printf("layers           %d\n", c.n_layers);
    printf("hidden           %d\n", c.hidden);
    printf("ffn              %d\n", c.ffn);
    printf("heads            %d (kv %d, head_dim %d)\n", c.n_heads, c.n_kv_heads, c.head_dim);
    printf("vocab            %d\n", c.vocab);
    printf("tied embeddings  %s\n", c.tie_embeddings ? "yes" : "no");
    printf("qk norm          %s\n", c.qk_norm ? "yes" : "no");
    printf("biases           %s%s\n", c.qkv_bias ? "qkv" : "none", c.o_bias ? "+o" : "");
    printf("rope_theta       %g\n", c.rope_theta);
    printf("rms_norm_eps     %g\n", (double)c.rms_eps);
    printf("parameters       %lld (%.2f M; %.2f M without embeddings)\n", s.n_params, (double)s.n_params * 1e-6,
           (double)(s.n_params - emb * (c.tie_embeddings ? 1 : 2)) * 1e-6);
    printf("on disk          %zu bytes in %d file%s (%s)\n", s.disk_bytes, s.n_files, s.n_files > 1 ? "s" : "", s.dtypes);
    printf("in memory        %.3f GB fp32, %.3f GB bf16\n", (double)s.n_params * 4e-9, (double)s.n_params * 2e-9);
    return 0;
}
