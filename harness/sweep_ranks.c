// sweep_ranks.c: see sweep_ranks.h.
#define _GNU_SOURCE
#include "sweep_ranks.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../models/file_io.h"

typedef struct {
    char* v[128];
    int n;
    char store[16384];
    size_t used;
} Argv;

static void add(Argv* a, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(Argv* a, const char* fmt, ...) {
    if (a->n >= 126) return;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(a->store + a->used, sizeof a->store - a->used, fmt, ap);
    va_end(ap);
    if (len < 0 || a->used + (size_t)len + 1 > sizeof a->store) return;
    a->v[a->n++] = a->store + a->used;
    a->used += (size_t)len + 1;
}

// "--NAME" then its value, formatted
static void opt(Argv* a, const char* name, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
static void opt(Argv* a, const char* name, const char* fmt, ...) {
    char value[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    add(a, "--%s", name);
    add(a, "%s", value);
}

// the words of an environment variable, split on spaces
static void add_words(Argv* a, const char* text) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", text ? text : "");
    for (char* w = strtok(buf, " \t"); w; w = strtok(NULL, " \t")) add(a, "%s", w);
}

int sweep_train_argv(const SweepConfig* c, const TrainConfig* tc, int ranks, const char* teacher, const char* student,
                     char*** out, int* argc, Err* e) {
    static Argv a;
    memset(&a, 0, sizeof a);
    char arbor[PATH_MAX];
    ssize_t got = readlink("/proc/self/exe", arbor, sizeof arbor - 1);
    if (got <= 0) return err_set(e, "cannot find the arbor binary's path to start its ranks");
    arbor[got] = 0;
    const char* launcher;
    if (getenv("SLURM_JOB_ID")) {  // inside an allocation: srun places the ranks on its nodes
        add(&a, "srun");
        add(&a, "--ntasks=%d", ranks);
        if (c->nodes > 0) add(&a, "--nodes=%d", c->nodes);
        if (c->device == DEVICE_CPU) add(&a, "--mpi=pmix");
        launcher = "srun";
    } else {
        add(&a, "%s", getenv("ARBOR_MPIRUN") ? getenv("ARBOR_MPIRUN") : "mpirun");
        add_words(&a, getenv("ARBOR_MPIRUN_ARGS"));
        add(&a, "-np");
        add(&a, "%d", ranks);
        launcher = "mpirun";
    }
    add(&a, "%s", arbor);
    add(&a, "%s", teacher ? "distill" : "train");
    if (teacher) {
        opt(&a, "teacher", "%s", teacher);
        opt(&a, "student", "%s", student);
        opt(&a, "loss", "%s", c->loss[0] ? c->loss : "kl");
        if (tc->loss.kd != KD_NONE) {  // a loss without a KD term takes neither (distill refuses them)
            opt(&a, "kd-temp", "%.9g", tc->loss.temperature);
            if (tc->loss.t2_scaling) add(&a, "--t2");
        }
        if (c->kd_scale[0]) opt(&a, "kd-scale", "%s", c->kd_scale);
    } else {
        opt(&a, "model", "%s", student);
    }
    opt(&a, "data", "%s", c->distill_data);
    opt(&a, "out", "%s", tc->out_dir);
    opt(&a, "steps", "%d", tc->steps);
    opt(&a, "seq-len", "%d", tc->seq_len);
    opt(&a, "batch", "%d", tc->batch);
    opt(&a, "grad-accum", "%d", tc->grad_accum / ranks);  // per rank: the global batch stays the sweep's
    opt(&a, "lr", "%.9g", tc->optim.lr);
    opt(&a, "min-lr", "%.9g", tc->optim.min_lr);
    opt(&a, "warmup", "%d", tc->optim.warmup);
    opt(&a, "schedule", "%s", tc->optim.cosine ? "cosine" : "linear");
    opt(&a, "weight-decay", "%.9g", tc->optim.weight_decay);
    opt(&a, "beta1", "%.9g", tc->optim.beta1);
    opt(&a, "beta2", "%.9g", tc->optim.beta2);
    opt(&a, "eps", "%.9g", tc->optim.eps);
    opt(&a, "clip", "%.9g", tc->optim.clip);
    opt(&a, "val-every", "%d", tc->val_every);
    opt(&a, "val-fraction", "%.17g", tc->val_fraction);
    opt(&a, "val-windows", "%d", tc->val_windows);
    opt(&a, "save-every", "%d", tc->save_every);
    opt(&a, "log-every", "%d", tc->log_every);
    opt(&a, "seed", "%llu", (unsigned long long)tc->seed);
    opt(&a, "device", "%s", tc->gpu ? "cuda" : "cpu");
    if (tc->bucket_bytes) opt(&a, "bucket-mb", "%.9g", tc->bucket_bytes / (double)(1 << 20));
    if (tc->zero1) add(&a, "--zero1");
    if (tc->reduce_bf16) opt(&a, "grad-reduce", "bf16");
    if (tc->resume) add(&a, "--resume");
    if (a.n >= 126) return err_set(e, "the %s command line for the ranks is too long", launcher);
    a.v[a.n] = NULL;
    *out = a.v;
    *argc = a.n;
    return 0;
}

int sweep_train_ranks(const SweepConfig* c, const TrainConfig* tc, const char* teacher, const char* student, TrainSummary* sum,
                      Err* e) {
    int ranks = sweep_distill_ranks(c), argc, distill = teacher != NULL;
    char** argv;
    if (sweep_train_argv(c, tc, ranks, teacher, student, &argv, &argc, e)) return -1;
    fprintf(stderr, "  %s over %d ranks: %s -np/--ntasks %d ...\n", distill ? "distill" : "train", ranks, argv[0], ranks);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return err_runtime(e, "cannot start the ranks: %s", strerror(errno));
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "arbor: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return err_runtime(e, "waiting for the ranks: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return err_runtime(e, "the %s stage's %d ranks failed (%s %d; their messages are above)", distill ? "distill" : "train",
                           ranks, WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return train_log_read(tc->out_dir, sum, NULL, e);
}
