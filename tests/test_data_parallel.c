// test_data_parallel.c: data-parallel distillation and training on the CPU over MPI (mpirun, as CI runs
// it): the same global batch split over 1, 2 or 3 ranks gives the same bits (losses and final
// weights), ZeRO-1 changes nothing, a state saved at one world size resumes at another, a killed rank
// ends the run within a bound with the last state intact, and ranks started with different settings
// are refused before step 1. Skips with a message when arbor was built without MPI.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/sweep_store.h"

#include "helpers.h"
#include "models/file_io.h"

#ifndef ARBOR_MPIEXEC  // built without MPI: every test skips in setup
#define ARBOR_MPIEXEC "mpirun"
#endif

static char dir[256], teacher[300], student[300], shard[300];

static void setup(void) {
#ifndef ARBOR_HAVE_MPI
    cr_skip_test("arbor was built without MPI (Debian: libopenmpi-dev openmpi-bin)");
#endif
    make_temp_dir(dir, sizeof dir);
    snprintf(teacher, sizeof teacher, "%s/teacher", dir);
    snprintf(student, sizeof student, "%s/student", dir);
    snprintf(shard, sizeof shard, "%s/d.shard", dir);
    char args[1024];
    snprintf(args, sizeof args, "init --arch tiny --layers 2 --seed 5 --dtype f32 --out %s 2>/dev/null", teacher);
    cr_assert_eq(run_arbor(args, NULL), 0);
    snprintf(args, sizeof args, "init --arch tiny --layers 1 --seed 9 --dtype f32 --out %s 2>/dev/null", student);
    cr_assert_eq(run_arbor(args, NULL), 0);
    write_test_shard(shard, 6000, 512, 3, NULL);
}
TestSuite(data_parallel, .init = setup, .timeout = 240);

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Runs `sh -c cmd` in its own process group, output to `log`; kills the whole group after `limit`
// seconds. Returns the exit code (128 + signal when killed, -1 on the time limit); *took the seconds.
static int run_bounded(const char* cmd, const char* log, double limit, double* took) {
    char full[8192];
    snprintf(full, sizeof full, "exec %s > %s 2>&1", cmd, log);
    pid_t parent = getpid(), pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        execl("/bin/sh", "sh", "-c", full, (char*)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    double t0 = now_s();
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        cr_assert(r == 0 || errno == EINTR);
        if (now_s() - t0 > limit) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            if (took) *took = now_s() - t0;
            return -1;
        }
        usleep(20000);
    }
    kill(-pid, SIGKILL);  // nothing of the group may outlive it
    if (took) *took = now_s() - t0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// one thread per rank, so that every micro-batch's gradient is computed the same way in every run
#define ENV "env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 ARBOR_CPU_POLICY=shared "
#define MPIRUN ARBOR_MPIEXEC " --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1 " \
                             "-x ARBOR_CPU_POLICY=shared "

// the command line of `arbor distill` (or train) into dir/NAME over np ranks (np 0: no mpirun at all),
// extra options appended, env (NAME=VALUE ...) before it
static void dp_command(char* cmd, size_t size, int np, int distill, const char* name, const char* extra, const char* env) {
    char common[2048];
    const char* batch = strstr(extra, "--batch") ? "" : "--batch 2 ";  // an option is given once (arbor refuses repeats)
    if (distill)
        snprintf(common, sizeof common, "distill --teacher %s --student %s --data %s --out %s/%s --seq-len 16 %s"
                 "--warmup 1 --lr 1e-2 --val-every 3 --val-windows 6 --seed 4 %s", teacher, student, shard, dir, name, batch, extra);
    else
        snprintf(common, sizeof common, "train --model %s --data %s --out %s/%s --seq-len 16 %s--warmup 1 --lr 1e-2 "
                 "--seed 4 %s", student, shard, dir, name, batch, extra);
    if (np == 0) snprintf(cmd, size, ENV "%s %s %s", env ? env : "", ARBOR_BIN, common);
    else snprintf(cmd, size, "env %s " MPIRUN "-np %d %s %s", env ? env : "", np, ARBOR_BIN, common);
}

static int run_dp(int np, int distill, const char* name, const char* extra, const char* env) {
    char cmd[4096], log[400];
    dp_command(cmd, sizeof cmd, np, distill, name, extra, env);
    snprintf(log, sizeof log, "%s/%s.out", dir, name);
    double took;
    int rc = run_bounded(cmd, log, 180, &took);
    if (rc != 0) {
        char* text = slurp(log);
        cr_log_info("%s (exit %d):\n%s", cmd, rc, text);
        free(text);
    }
    return rc;
}

// log.csv without its tokens/s column (timing), for comparing runs
static char* log_losses(const char* name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/log.csv", dir, name);
    char* text = slurp(path);
    char* out = calloc(strlen(text) + 1, 1);
    for (char *line = text, *o = out; *line;) {
        char* nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        int field = 0;
        for (size_t i = 0; i < n; i++) {
            if (line[i] == ',') field++;
            if (field != 6 || line[i] == ',') *o++ = line[i];  // field 6 is tokens_per_s
        }
        *o++ = '\n';
        line += n + (nl ? 1 : 0);
    }
    free(text);
    return out;
}

static void expect_same_run(const char* a, const char* b) {
    char *la = log_losses(a), *lb = log_losses(b);
    cr_expect_str_eq(la, lb, "%s and %s logged different losses", a, b);
    free(la);
    free(lb);
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/%s/model/model.safetensors", dir, a);
    snprintf(pb, sizeof pb, "%s/%s/model/model.safetensors", dir, b);
    size_t na, nb;
    Err e;
    char* A = file_read_all(pa, &na, &e);
    cr_assert_not_null(A, "%s", e.msg);
    char* B = file_read_all(pb, &nb, &e);
    cr_assert_not_null(B, "%s", e.msg);
    cr_expect(na == nb && memcmp(A, B, na) == 0, "%s and %s ended with different weights", a, b);
    free(A);
    free(B);
}

Test(data_parallel, two_ranks_equal_one_rank_with_twice_the_accumulation) {
    cr_assert_eq(run_dp(0, 1, "kd_np1_k2", "--steps 5 --grad-accum 2", NULL), 0);
    cr_assert_eq(run_dp(2, 1, "kd_np2_k1", "--steps 5 --grad-accum 1", NULL), 0);
    cr_assert_eq(run_dp(1, 1, "kd_mpi1_k2", "--steps 5 --grad-accum 2", NULL), 0);
    expect_same_run("kd_np1_k2", "kd_np2_k1");
    expect_same_run("kd_np1_k2", "kd_mpi1_k2");
    char* out = slurp(strcat(strcpy((char[512]){0}, dir), "/kd_np2_k1.out"));
    cr_expect(contains(out, "data parallel: 2 ranks (openmpi) x 1 micro-batch x 2 windows = 4 windows (64 tokens) per step"), "%s", out);
    free(out);
    char path[512];
    snprintf(path, sizeof path, "%s/kd_np2_k1/run.json", dir);
    cJSON* run = read_json(path);
    cr_expect_eq(cJSON_GetObjectItem(run, "ranks")->valueint, 2);
    cr_expect_eq(cJSON_GetObjectItem(run, "global_batch_windows")->valueint, 4);
    cJSON_Delete(run);
    // plain training (cross-entropy, no teacher) too
    cr_assert_eq(run_dp(0, 0, "ce_np1_k2", "--steps 4 --grad-accum 2", NULL), 0);
    cr_assert_eq(run_dp(2, 0, "ce_np2_k1", "--steps 4 --grad-accum 1", NULL), 0);
    expect_same_run("ce_np1_k2", "ce_np2_k1");
}

Test(data_parallel, zero1_gives_the_same_bits) {
    cr_assert_eq(run_dp(2, 1, "plain", "--steps 4", NULL), 0);
    cr_assert_eq(run_dp(2, 1, "zero1", "--steps 4 --zero1", NULL), 0);
    expect_same_run("plain", "zero1");
    cr_assert_eq(run_dp(3, 1, "zero1_np3", "--steps 4 --zero1 --batch 2 --grad-accum 1", NULL), 0);
}

// the reduction runs bucket by bucket in the backward's order (the GPU path's schedule): with buckets of
// 1 KB (hundreds of reductions a step) the bits are those of one rank, plain and with ZeRO-1
Test(data_parallel, many_small_buckets_give_the_same_bits) {
    cr_assert_eq(run_dp(0, 1, "one", "--steps 3 --grad-accum 2", NULL), 0);
    cr_assert_eq(run_dp(2, 1, "small_buckets", "--steps 3 --grad-accum 1 --bucket-mb 0.001", NULL), 0);
    cr_assert_eq(run_dp(2, 1, "small_buckets_zero1", "--steps 3 --grad-accum 1 --bucket-mb 0.001 --zero1", NULL), 0);
    expect_same_run("one", "small_buckets");
    expect_same_run("one", "small_buckets_zero1");
    char path[512];
    snprintf(path, sizeof path, "%s/small_buckets/run.json", dir);
    cJSON* run = read_json(path);
    cr_expect_str_eq(cJSON_GetObjectItem(run, "collectives")->valuestring, "mpi");
    cr_expect_gt(cJSON_GetObjectItem(run, "gradient_buckets")->valueint, 100, "1 KB buckets over the tiny model's arena");
    cJSON_Delete(run);
    snprintf(path, sizeof path, "%s/one/run.json", dir);
    run = read_json(path);
    cr_expect_eq(cJSON_GetObjectItem(run, "gradient_buckets")->valueint, 0, "one process reduces nothing");
    cJSON_Delete(run);
}

Test(data_parallel, a_state_resumes_at_another_world_size) {
    // 6 windows a step: 1 rank x 3, 2 ranks x ... (batch 1: K = 6, 3, 2)
    cr_assert_eq(run_dp(0, 1, "ref", "--steps 6 --batch 1 --grad-accum 6", NULL), 0);
    cr_assert_eq(run_dp(2, 1, "to1", "--steps 6 --batch 1 --grad-accum 3", "ARBOR_TEST_STOP_AT=3"), 0);
    cr_assert_eq(run_dp(0, 1, "to1", "--steps 6 --batch 1 --grad-accum 6 --resume", NULL), 0);
    expect_same_run("ref", "to1");
    cr_assert_eq(run_dp(2, 1, "to3", "--steps 6 --batch 1 --grad-accum 3 --zero1", "ARBOR_TEST_STOP_AT=2"), 0);
    cr_assert_eq(run_dp(3, 1, "to3", "--steps 6 --batch 1 --grad-accum 2 --resume", NULL), 0);
    expect_same_run("ref", "to3");
    // another global batch would change the steps' meaning: refused
    cr_assert_eq(run_dp(2, 1, "to3", "--steps 8 --batch 1 --grad-accum 1 --resume", NULL) != 0, 1);
    char* out = slurp(strcat(strcpy((char[512]){0}, dir), "/to3.out"));
    cr_expect(contains(out, "was written with 6 windows per step over all ranks, this run takes 2"), "%s", out);
    free(out);
}

Test(data_parallel, a_killed_rank_ends_the_run_and_the_last_state_is_intact) {
    char cmd[4096], log[400];
    dp_command(cmd, sizeof cmd, 2, 1, "killed", "--steps 40 --save-every 2", "ARBOR_TEST_KILL_RANK_AT=1:5");
    snprintf(log, sizeof log, "%s/killed.out", dir);
    double took;
    int rc = run_bounded(cmd, log, 90, &took);
    char* out = slurp(log);
    cr_expect(rc != 0 && rc != -1, "the run ended %s (exit %d) after %.1f s:\n%s", rc == -1 ? "only at the time limit" : "", rc, took, out);
    cr_expect_lt(took, 60, "the surviving rank took %.1f s to end", took);
    cr_expect(contains(out, "rank 1: killed at step 5"), "%s", out);
    free(out);
    // the state is the one of step 4, whole: a one-process run resumes from it
    cr_assert_eq(run_dp(0, 1, "killed", "--steps 6 --grad-accum 2 --resume", NULL), 0);
    out = slurp(log);
    cr_expect(contains(out, "at step 4"), "%s", out);
    free(out);
}

Test(data_parallel, a_stalled_rank_is_outwaited_within_the_bound) {
    // rank 1 stops answering (SIGSTOP) after step 2: rank 0's next collective gives up after
    // ARBOR_DIST_TIMEOUT seconds with a message, and mpirun ends the stopped rank
    char cmd[4096], log[400];
    dp_command(cmd, sizeof cmd, 2, 1, "stalled", "--steps 40", "ARBOR_TEST_STALL_RANK_AT=1:2 ARBOR_DIST_TIMEOUT=4");
    snprintf(log, sizeof log, "%s/stalled.out", dir);
    double took;
    int rc = run_bounded(cmd, log, 90, &took);
    char* out = slurp(log);
    cr_expect(rc != 0 && rc != -1, "exit %d after %.1f s:\n%s", rc, took, out);
    cr_expect_lt(took, 45, "ended after %.1f s", took);
    cr_expect(contains(out, "rank 0 of 2: no answer from the other ranks within 4 s"), "%s", out);
    free(out);
}

Test(data_parallel, ranks_with_other_settings_are_refused_before_step_one) {
    char cmd[8192], log[400], common[2048];
    snprintf(common, sizeof common, "%s distill --teacher %s --student %s --data %s --out %s/mismatch --seq-len 16 --batch 2 "
             "--steps 3", ARBOR_BIN, teacher, student, shard, dir);  // lr differs below
    snprintf(cmd, sizeof cmd, MPIRUN "-np 1 %s --lr 1e-3 : -np 1 %s --lr 2e-3", common, common);
    snprintf(log, sizeof log, "%s/mismatch.out", dir);
    int rc = run_bounded(cmd, log, 90, NULL);
    char* out = slurp(log);
    cr_expect(rc != 0 && rc != -1, "exit %d:\n%s", rc, out);
    cr_expect(contains(out, "rank 1 of 2 has other settings, data or weights than rank 0"), "%s", out);
    cr_expect(!contains(out, "step 1/"), "no step ran:\n%s", out);
    free(out);
    char path[512];
    snprintf(path, sizeof path, "%s/mismatch/log.csv", dir);
    cr_expect_neq(access(path, F_OK), 0, "no log was started");
    // --zero1 needs ranks
    cr_expect_eq(run_dp(0, 1, "alone", "--steps 1 --zero1", NULL), 2);
    // bf16 gradient sums are the GPU path's; the CPU's are fp64
    cr_expect_eq(run_dp(2, 1, "bf16_cpu", "--steps 1 --grad-reduce bf16", NULL), 2);
}

// a sweep's distill stage over 2 MPI ranks (ranks_per_node) gives the bits of the same stage in one process
Test(data_parallel, a_sweep_distills_over_ranks_with_the_same_result) {
    char cfg[512], text[4096], cmd[4096], log[400];
    const char* ranks[2] = {"", "ranks_per_node = 2\n"};
    for (int r = 0; r < 2; r++) {
        snprintf(cfg, sizeof cfg, "%s/sweep%d.ini", dir, r);
        snprintf(text, sizeof text,
                 "[sweep]\nname = s\nout = %s/sweep%d\n\n[teacher]\nmodel = %s\n\n[data]\ncalib = %s\ndistill = %s\n\n"
                 "[distill]\nsteps = 3\nseq_len = 16\nbatch = 2\ngrad_accum = 2\n%s\n[prune]\ncalib_windows = 2\nseq_len = 16\n\n"
                 "[matrix]\nstrategies = last\nlayers = 1\n\n[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n",
                 dir, r, teacher, shard, shard, ranks[r]);
        write_text(cfg, text);
        snprintf(cmd, sizeof cmd, ENV "ARBOR_MPIRUN=" ARBOR_MPIEXEC " ARBOR_MPIRUN_ARGS='--oversubscribe --allow-run-as-root "
                 "-x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1' %s sweep %s", ARBOR_BIN, cfg);
        snprintf(log, sizeof log, "%s/sweep%d.out", dir, r);
        int rc = run_bounded(cmd, log, 180, NULL);
        char* out = slurp(log);
        cr_assert_eq(rc, 0, "%s", out);
        if (r == 1) cr_expect(contains(out, "distill over 2 ranks") && contains(out, "data parallel: 2 ranks"), "%s", out);
        free(out);
    }
    // the ranks are not in the stage's key (they do not change its result): the two stores name the
    // distillation alike, and hold the same student
    char pattern[512], stage[2][2600];
    for (int r = 0; r < 2; r++) {
        char sweep_dir[600];
        Err e;
        snprintf(sweep_dir, sizeof sweep_dir, "%s/sweep%d/s", dir, r);
        cr_assert_eq(sweep_stage_dir(sweep_dir, "last-L1", "distill", stage[r], sizeof stage[r], &e), 0, "%s", e.msg);
    }
    cr_expect_str_eq(strrchr(stage[0], '/'), strrchr(stage[1], '/'));
    snprintf(cmd, sizeof cmd, "cmp %.1000s/model/model.safetensors %.1000s/model/model.safetensors", stage[0], stage[1]);
    snprintf(pattern, sizeof pattern, "%s/cmp.out", dir);
    cr_expect_eq(run_bounded(cmd, pattern, 30, NULL), 0, "the distilled students differ");
}
