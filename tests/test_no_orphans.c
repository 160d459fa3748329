// test_no_orphans.c: a test that is killed (at Criterion's timeout, or its whole runner by ctest's)
// leaves no arbor process running behind it. Each case re-runs this binary on a probe test that starts
// a long `arbor train` and is then killed; the case looks in /proc for any process still naming the
// probe's folder.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// the probe: runs only when re-invoked by a case below (ARBOR_ORPHAN_PROBE names its folder); a
// training run far longer than the timeout, so Criterion kills this worker while arbor is busy
Test(orphans, probe, .timeout = 4) {
    const char* dir = getenv("ARBOR_ORPHAN_PROBE");
    if (!dir) cr_skip_test("only run by the cases below");
    char args[2048];
    snprintf(args, sizeof args, "init --arch tiny --layers 1 --seed 3 --dtype f32 --out %s/model 2>/dev/null", dir);
    cr_assert_eq(run_arbor(args, NULL), 0);
    char shard[600];
    snprintf(shard, sizeof shard, "%s/d.shard", dir);
    write_test_shard(shard, 2000, 512, 1, NULL);
    snprintf(args, sizeof args, "train --model %s/model --data %s --out %s/run --steps 100000000 --seq-len 16 "
             "--batch 2 2>%s/train.err", dir, shard, dir, dir);
    run_arbor(args, NULL);
    cr_assert_fail("the probe's training run ended before its timeout");
}

// pids of live processes (other than this one) whose command line mentions needle
static int processes_naming(const char* needle, pid_t* out, int cap) {
    DIR* d = opendir("/proc");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent* e;
    while ((e = readdir(d)) != NULL) {
        char* end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == getpid()) continue;
        char path[64], buf[8192];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        FILE* f = fopen(path, "rb");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i++)
            if (buf[i] == 0) buf[i] = ' ';
        buf[len] = 0;
        // a zombie has an empty command line and is not running
        if (len > 0 && strstr(buf, needle) && n < cap) out[n++] = (pid_t)pid;
    }
    closedir(d);
    return n;
}

// starts this binary on the probe with its folder; returns the runner's pid
static pid_t start_probe(const char* dir) {
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setenv("ARBOR_ORPHAN_PROBE", dir, 1);
        unsetenv("BXFI_MAP");  // else the child takes itself for a Criterion worker of this runner
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execl("/proc/self/exe", "test_no_orphans", "--filter", "orphans/probe", "--jobs", "1", (char*)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_bounded(pid_t pid, double seconds) {
    double end = now_s() + seconds;
    int st;
    while (now_s() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        cr_assert(r == 0 || errno == EINTR, "waitpid failed");
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    cr_assert_fail("the probe's runner did not end within %.0f s", seconds);
    return -1;
}

static int path_exists(const char* p) {
    struct stat s;
    return stat(p, &s) == 0;
}

static void expect_no_arbor_left(const char* dir) {
    pid_t left[16];
    int n = 0;
    for (double end = now_s() + 5; now_s() < end; usleep(50000))
        if ((n = processes_naming(dir, left, 16)) == 0) break;
    for (int i = 0; i < n; i++) kill(left[i], SIGKILL);  // do not leave them to the next test either
    cr_expect_eq(n, 0, "%d process(es) still name %s after their test was killed (first pid %d)", n, dir,
                 n ? (int)left[0] : 0);
}

Test(orphans, criterion_timeout_takes_arbor_with_the_test) {
    char dir[256], run[300];
    make_temp_dir(dir, sizeof dir);
    pid_t runner = start_probe(dir);
    int st = wait_bounded(runner, 60);
    cr_expect(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "the probe was expected to fail at its timeout");
    snprintf(run, sizeof run, "%s/run", dir);
    cr_assert(path_exists(run), "the probe never started its training run");
    expect_no_arbor_left(dir);
}

Test(orphans, killing_the_runner_takes_arbor_with_it) {
    // what ctest does at its own timeout: SIGKILL to the test binary it started, not to its children
    char dir[256], run[300];
    make_temp_dir(dir, sizeof dir);
    snprintf(run, sizeof run, "%s/run", dir);
    pid_t runner = start_probe(dir);
    double end = now_s() + 30;
    while (!path_exists(run) && now_s() < end) usleep(20000);
    cr_assert(path_exists(run), "the probe never started its training run");
    pid_t live[16];
    cr_assert_gt(processes_naming(dir, live, 16), 0, "no arbor running for the probe");
    kill(runner, SIGKILL);
    wait_bounded(runner, 10);
    expect_no_arbor_left(dir);
}
