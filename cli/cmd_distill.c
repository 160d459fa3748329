// cmd_distill.c: arbor distill (student learns from a teacher's logits) and arbor train (the same
// loop without a teacher: cross-entropy; baselines from scratch, teacher correction).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../distill/dist.h"
#include "../distill/trainer.h"
#include "commands.h"

// options only one of the two commands has: anything else given to the other is refused as unknown
static const char* distill_only[] = {"teacher", "student", "loss", "kd-temp", "t2", "kd-scale", "hidden-loss", "hidden-weight"};
static const char* train_only[] = {"model"};

static int listed(const char* name, const char* const* list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name, list[i])) return 1;
    return 0;
}

// e into out; the exit code it calls for (fail's, without printing: a rank of many prints its own line)
static int give(const Err* e, Err* out) {
    *out = *e;
    return e->runtime ? ARBOR_EXIT_RUNTIME : ARBOR_EXIT_BAD_INPUT;
}

static int run_with(const Command* cmd_in, int distill, const Dist* dist, Err* e_out);

static int run(int argc, char** argv, int distill) {
    Option all[] = {
        {"teacher", "DIR", "teacher checkpoint", NULL},
        {"student", "DIR", "student checkpoint to start from", NULL},
        {"model", "DIR", "checkpoint to train", NULL},
        {"data", "SHARD", "token shard (arbor tokenize)", NULL},
        {"out", "DIR", "run directory: log.csv, train_state.bin, model/", NULL},
        {"steps", "N", "optimizer steps", "100"},
        {"seq-len", "L", "tokens per window", "256"},
        {"batch", "B", "windows per micro-batch", "8"},
        {"grad-accum", "K", "micro-batches per step", "1"},
        {"lr", "LR", "peak learning rate", "3e-4"},
        {"min-lr", "LR", "final learning rate", "3e-5"},
        {"warmup", "N", "linear warmup steps", "10"},
        {"schedule", "cosine|linear", "decay after warmup", "cosine"},
        {"weight-decay", "WD", "AdamW decoupled weight decay (not on norms or biases)", "0.1"},
        {"beta1", "B1", "AdamW beta1", "0.9"},
        {"beta2", "B2", "AdamW beta2", "0.95"},
        {"eps", "EPS", "AdamW epsilon", "1e-8"},
        {"clip", "NORM", "clip the global gradient norm (0: off)", "1.0"},
        {"loss", "KIND", "kl | rkl | topk:K | ce | mix:W_CE,KIND", NULL},
        {"kd-temp", "T", "distillation temperature (default 1)", NULL},
        {"t2", NULL, "multiply the KD loss by T^2", NULL},
        {"kd-scale", "none|auto|auto:S", "auto: KD weight = S x (LM loss / KD loss) each micro-batch (NeMo's balancer; needs mix:)", "none"},
        {"hidden-loss", "cosine|mse", "add an intermediate hidden-state loss between mapped layers", NULL},
        {"hidden-weight", "W", "weight of the hidden-state loss (default 1)", NULL},
        {"val-every", "N", "steps between validation passes (0: never)", "0"},
        {"val-fraction", "F", "share of the windows held out for validation", "0.05"},
        {"val-windows", "N", "windows per validation pass (0: all)", "64"},
        {"save-every", "N", "steps between state saves (0: at the end)", "0"},
        {"log-every", "N", "steps between progress lines", "1"},
        {"seed", "S", "data order seed", "0"},
        {"resume", NULL, "continue from OUT/train_state.bin when it exists", NULL},
        {"recompute", NULL, "recompute activations in backward (less memory, ~1 extra forward)", NULL},
        {"device", "cpu|cuda", "where the steps run: the CPU (fp32) or the GPU (bf16, fp32 masters)", "cpu"},
        {"zero1", NULL, "data parallel: shard the AdamW moments and update across the ranks (ZeRO-1)", NULL},
        {"bucket-mb", "MB", "data parallel: gradients reduced in buckets of at most this, as the backward finishes them", "25"},
        {"grad-reduce", "fp32|bf16", "data parallel on GPUs: the type the buckets are summed in", "fp32"},
    };
    Option opts[sizeof all / sizeof all[0]];
    int n_opts = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (distill ? !listed(all[i].name, train_only, sizeof train_only / sizeof *train_only)
                    : !listed(all[i].name, distill_only, sizeof distill_only / sizeof *distill_only))
            opts[n_opts++] = all[i];
    Command cmd = {distill ? "distill" : "train",
                   distill ? "Distill a student from a teacher's logits (KD, optionally with cross-entropy and a hidden-state\n"
                             "loss), saving the student as a HF checkpoint:\n"
                             "  arbor distill --teacher T --student S --data SHARD --out DIR [--loss kl|rkl|topk:K|ce|mix:W,KIND]\n"
                             "Data parallel on the CPU (MPI): start one process per rank with the same options,\n"
                             "  mpirun -np N arbor distill ...      or, under Slurm,   srun --mpi=pmix -n N arbor distill ...\n"
                             "Each step takes batch x grad-accum x N windows; the result does not depend on N for the same\n"
                             "global batch (--grad-accum scales down as N grows). Any N resumes the same --out. A rank\n"
                             "waiting over ARBOR_DIST_TIMEOUT seconds (default 900) for the others ends the run."
                           : "Train a model with cross-entropy on a token shard, no teacher (baselines from scratch, teacher\n"
                             "correction), saving it as a HF checkpoint:\n"
                             "  arbor train --model M --data SHARD --out DIR\n"
                             "Data parallel on the CPU (MPI): mpirun -np N arbor train ... (see arbor distill --help).",
                   opts, n_opts};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    Dist dist;
    if (dist_init(&dist, &e)) {
        dist_finish(&dist);
        return fail(&e);
    }
    code = run_with(&cmd, distill, &dist, &e);
    if (code && dist.world > 1) {  // one line from the rank that failed, then every rank ends
        fflush(stdout);
        fprintf(stderr, "arbor: rank %d of %d: %s\n", dist.rank, dist.world, e.msg);
        dist_abort(&dist, code);
    }
    dist_finish(&dist);
    return code ? (dist.world > 1 ? code : fail(&e)) : 0;
}

// the command once its options are read; returns 0 or the exit code, with e saying why
static int run_with(const Command* cmd_in, int distill, const Dist* dist, Err* e_out) {
    Command cmd = *cmd_in;
    Err e;
    const char *sdir, *tdir = NULL, *data, *out, *schedule = arg_str(&cmd, "schedule");
    long steps, seq_len, batch, accum, warmup, val_every, val_windows, save_every, log_every, seed;
    double lr, min_lr, wd, b1, b2, eps, clip, temp, val_fraction, hidden_weight;
    if ((distill ? arg_required(&cmd, "teacher", &tdir, &e) || arg_required(&cmd, "student", &sdir, &e)
                 : arg_required(&cmd, "model", &sdir, &e)) ||
        arg_required(&cmd, "data", &data, &e) || arg_required(&cmd, "out", &out, &e) ||
        arg_long(&cmd, "steps", 1, 1L << 30, &steps, &e) || arg_long(&cmd, "seq-len", 1, 1 << 20, &seq_len, &e) ||
        arg_long(&cmd, "batch", 1, 1 << 16, &batch, &e) || arg_long(&cmd, "grad-accum", 1, 1 << 16, &accum, &e) ||
        arg_long(&cmd, "warmup", 0, 1L << 30, &warmup, &e) || arg_long(&cmd, "val-every", 0, 1L << 30, &val_every, &e) ||
        arg_long(&cmd, "val-windows", 0, 1L << 30, &val_windows, &e) ||
        arg_long(&cmd, "save-every", 0, 1L << 30, &save_every, &e) || arg_long(&cmd, "log-every", 1, 1L << 30, &log_every, &e) ||
        arg_long(&cmd, "seed", 0, 0x7fffffffL, &seed, &e) || arg_double(&cmd, "lr", 0, 10, &lr, &e) ||
        arg_double(&cmd, "min-lr", 0, 10, &min_lr, &e) || arg_double(&cmd, "weight-decay", 0, 10, &wd, &e) ||
        arg_double(&cmd, "beta1", 0, 0.999999, &b1, &e) || arg_double(&cmd, "beta2", 0, 0.999999, &b2, &e) ||
        arg_double(&cmd, "eps", 0, 1, &eps, &e) || arg_double(&cmd, "clip", 0, 1e9, &clip, &e) ||
        arg_double(&cmd, "val-fraction", 0, 0.5, &val_fraction, &e) ||
        (distill && arg_str(&cmd, "kd-temp") && arg_double(&cmd, "kd-temp", 1e-3, 1e3, &temp, &e)) ||
        (distill && arg_str(&cmd, "hidden-weight") && arg_double(&cmd, "hidden-weight", 0, 1e6, &hidden_weight, &e)))
        return give(&e, e_out);
    if (!distill || !arg_str(&cmd, "kd-temp")) temp = 1.0;
    if (!distill || !arg_str(&cmd, "hidden-weight")) hidden_weight = distill ? 1.0 : 0;
    const char* hidden = distill ? arg_str(&cmd, "hidden-loss") : NULL;
    static const char* const hidden_only[] = {"hidden-weight"};
    if (distill && !hidden && arg_refuse(&cmd, hidden_only, 1, "without --hidden-loss", &e)) return give(&e, e_out);
    if (hidden && strcmp(hidden, "cosine") && strcmp(hidden, "mse")) {
        err_set(&e, "%s: --hidden-loss must be cosine or mse", cmd.name);
        return give(&e, e_out);
    }
    Device device;
    if (arg_device(&cmd, &device, &e)) return give(&e, e_out);
    if (strcmp(schedule, "cosine") && strcmp(schedule, "linear")) {
        err_set(&e, "%s: --schedule must be cosine or linear, not '%s'", cmd.name, schedule);
        return give(&e, e_out);
    }
    TrainConfig cfg = {0};
    const char* loss = distill && arg_str(&cmd, "loss") ? arg_str(&cmd, "loss") : distill ? "kl" : "ce";
    if (loss_parse(loss, distill, &cfg.loss, &e)) return err_prefix(&e, "%s", cmd.name), give(&e, e_out);
    static const char* const kd_only[] = {"kd-temp", "t2"};
    if (distill && cfg.loss.kd == KD_NONE && arg_refuse(&cmd, kd_only, 2, "with a loss without a KD term (--loss ce)", &e))
        return give(&e, e_out);
    cfg.loss.temperature = (float)temp;
    cfg.loss.t2_scaling = distill && arg_flag(&cmd, "t2");
    if (distill && kd_scale_parse(arg_str(&cmd, "kd-scale"), &cfg.loss, &e)) return err_prefix(&e, "%s", cmd.name), give(&e, e_out);
    cfg.steps = (int)steps, cfg.batch = (int)batch, cfg.grad_accum = (int)accum, cfg.seq_len = (int)seq_len;
    cfg.optim = (OptimConfig){(float)lr, (float)min_lr, (int)warmup, (int)steps, !strcmp(schedule, "cosine"),
                              (float)b1, (float)b2, (float)eps, (float)wd, (float)clip};
    cfg.val_every = (int)val_every, cfg.val_windows = (int)val_windows, cfg.save_every = (int)save_every;
    cfg.log_every = (int)log_every, cfg.val_fraction = val_fraction, cfg.seed = (uint64_t)seed;
    cfg.out_dir = out;
    cfg.resume = arg_flag(&cmd, "resume");
    cfg.recompute = arg_flag(&cmd, "recompute");
    cfg.gpu = device == DEVICE_CUDA;
    // ARBOR_TEST_STOP_AT=N: end after step N with the state saved, as a killed run would leave it (tests)
    if (getenv("ARBOR_TEST_STOP_AT")) cfg.stop_at = atoi(getenv("ARBOR_TEST_STOP_AT"));
    cfg.hidden_kind = !hidden ? HIDDEN_NONE : !strcmp(hidden, "cosine") ? HIDDEN_COSINE : HIDDEN_MSE;
    cfg.hidden_weight = (float)hidden_weight;
    cfg.dist = dist;
    cfg.zero1 = arg_flag(&cmd, "zero1");
    double bucket_mb;
    if (arg_double(&cmd, "bucket-mb", 0.001, 65536, &bucket_mb, &e)) return give(&e, e_out);
    cfg.bucket_bytes = (size_t)(bucket_mb * (1 << 20));
    const char* reduce = arg_str(&cmd, "grad-reduce");
    if (strcmp(reduce, "fp32") && strcmp(reduce, "bf16")) {
        err_set(&e, "%s: --grad-reduce '%s': fp32 or bf16", cmd.name, reduce);
        return give(&e, e_out);
    }
    cfg.reduce_bf16 = !strcmp(reduce, "bf16");
    if (cfg.reduce_bf16 && device != DEVICE_CUDA) {
        err_set(&e, "%s: --grad-reduce bf16 is the GPU path's (the CPU sums gradients in fp64, exactly)", cmd.name);
        return give(&e, e_out);
    }
    if (cfg.zero1 && dist->world == 1) {
        err_set(&e, "%s: --zero1 shards across ranks, and this run has one (start it with mpirun -np N or srun)", cmd.name);
        return give(&e, e_out);
    }
    Shard shard;
    if (shard_open(&shard, data, &e)) return give(&e, e_out);
    Model student, teacher;
    int rc = model_load(&student, sdir, &e);
    if (!rc && tdir && model_load(&teacher, tdir, &e)) {
        model_free(&student);
        rc = -1;
    }
    if (!rc && cfg.loss.kd == KD_TOPK && cfg.loss.topk >= student.cfg.vocab) {
        rc = err_set(&e, "%s: --loss %s: top-%d of a %d-token vocabulary is the whole of it (use kl)", cmd.name, loss, cfg.loss.topk,
                     student.cfg.vocab);
        model_free(&student), model_free(&teacher);
    }
    int* layer_map = NULL;
    if (!rc && cfg.hidden_kind != HIDDEN_NONE) {  // from the student's lineage (depth pruning), else even
        layer_map = xmalloc(sizeof(int) * (size_t)student.cfg.n_layers);
        rc = hidden_layer_map(sdir, student.cfg.n_layers, teacher.cfg.n_layers, layer_map, &e);
        cfg.layer_map = layer_map;
        if (rc) model_free(&student), model_free(&teacher);
    }
    if (!rc) {
        rc = train_run(&student, tdir ? &teacher : NULL, &shard, &cfg, NULL, &e);
        model_free(&student);
        if (tdir) model_free(&teacher);
    }
    free(layer_map);
    shard_close(&shard);
    return rc ? give(&e, e_out) : 0;
}

int cmd_distill(int argc, char** argv) { return run(argc, argv, 1); }
int cmd_train(int argc, char** argv) { return run(argc, argv, 0); }
