// test_dist_bootstrap.c: rank 0's bytes reach every rank without MPI (distill/dist_bootstrap.h), through
// a file and over TCP, with 3 processes; a rank whose peers never come fails within the bound with one
// line; bad specs are refused.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "distill/dist_bootstrap.h"
#include "helpers.h"
#include "models/file_io.h"

static char dir[256];
static void setup(void) { make_temp_dir(dir, sizeof dir); }
TestSuite(dist_bootstrap, .init = setup, .timeout = 60);

enum { BYTES = 128 };  // an NCCL unique id's size

// runs `world` processes of rank r (Dist filled by hand), each sharing with spec; returns the exit codes
// and leaves each rank's result in DIR/got.R
static void run_ranks(int world, const char* spec, int timeout_s, int* codes, int only_rank) {
    pid_t pids[8];
    for (int r = 0; r < world; r++) {
        if (only_rank >= 0 && r != only_rank) {
            pids[r] = 0;
            continue;
        }
        pids[r] = fork();
        cr_assert(pids[r] >= 0);
        if (pids[r] == 0) {
            Dist d = {.rank = r, .world = world, .timeout_s = timeout_s};
            unsigned char blob[BYTES];
            for (int i = 0; i < BYTES; i++) blob[i] = r == 0 ? (unsigned char)(i * 7 + 3) : 0;
            Err e;
            int rc = dist_bootstrap_share(&d, spec, blob, BYTES, &e);
            char path[400];
            snprintf(path, sizeof path, "%s/got.%d", dir, r);
            FILE* f = fopen(path, "wb");
            if (rc) fprintf(f, "%s", e.msg);
            else fwrite(blob, 1, BYTES, f);
            fclose(f);
            _exit(rc ? 1 : 0);
        }
    }
    for (int r = 0; r < world; r++) {
        if (!pids[r]) continue;
        int st;
        waitpid(pids[r], &st, 0);
        codes[r] = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    }
}

static void expect_all_got_rank0(int world) {
    for (int r = 0; r < world; r++) {
        char path[400];
        snprintf(path, sizeof path, "%s/got.%d", dir, r);
        size_t n;
        Err e;
        unsigned char* got = (unsigned char*)file_read_all(path, &n, &e);
        cr_assert_not_null(got, "%s", e.msg);
        int same = n == BYTES;
        for (int i = 0; same && i < BYTES; i++) same = got[i] == (unsigned char)(i * 7 + 3);
        cr_expect(same, "rank %d did not get rank 0's bytes (%zu bytes: %.*s)", r, n, (int)n, got);
        free(got);
    }
}

Test(dist_bootstrap, a_file_carries_rank_0s_bytes) {
    char spec[300];
    snprintf(spec, sizeof spec, "file:%s", dir);
    setenv("ARBOR_DIST_JOB", "test-1", 1);
    int codes[3];
    run_ranks(3, spec, 20, codes, -1);
    for (int r = 0; r < 3; r++) cr_expect_eq(codes[r], 0, "rank %d", r);
    expect_all_got_rank0(3);
    // without a job id an old run's file could be read: refused
    unsetenv("ARBOR_DIST_JOB");
    unsetenv("SLURM_JOB_ID");
    run_ranks(2, spec, 5, codes, 1);
    char* msg = slurp(strcat(strcpy((char[400]){0}, dir), "/got.1"));
    cr_expect(codes[1] != 0 && contains(msg, "needs a job id"), "%s", msg);
    free(msg);
}

Test(dist_bootstrap, tcp_from_rank_0_reaches_every_rank) {
    char spec[64];
    snprintf(spec, sizeof spec, "tcp:127.0.0.1:%d", 20000 + (int)(getpid() % 20000));
    int codes[3];
    run_ranks(3, spec, 20, codes, -1);
    for (int r = 0; r < 3; r++) cr_expect_eq(codes[r], 0, "rank %d", r);
    expect_all_got_rank0(3);
}

Test(dist_bootstrap, a_missing_peer_ends_the_wait_within_the_bound) {
    char spec[300];
    snprintf(spec, sizeof spec, "tcp:127.0.0.1:%d", 20000 + (int)((getpid() + 7) % 20000));
    int codes[2];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_ranks(2, spec, 2, codes, 1);  // rank 1 alone: rank 0 never listens
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    char* msg = slurp(strcat(strcpy((char[400]){0}, dir), "/got.1"));
    cr_expect(codes[1] != 0 && contains(msg, "rank 1 of 2: no answer from rank 0 at 127.0.0.1:"), "%s", msg);
    cr_expect_lt(took, 10, "waited %.1f s with a 2 s bound", took);
    free(msg);
    run_ranks(2, spec, 2, codes, 0);  // rank 0 alone: nobody connects
    msg = slurp(strcat(strcpy((char[400]){0}, dir), "/got.0"));
    cr_expect(codes[0] != 0 && contains(msg, "rank 0: 0 of the 1 other ranks connected"), "%s", msg);
    free(msg);
    Dist d = {.rank = 1, .world = 2, .timeout_s = 1};
    unsigned char blob[BYTES];
    Err e;
    cr_expect_eq(dist_bootstrap_share(&d, "udp:x:1", blob, BYTES, &e), -1);
    cr_expect(contains(e.msg, "expected file:DIR or tcp:HOST:PORT"), "%s", e.msg);
    cr_expect_eq(dist_bootstrap_share(&d, "tcp:host:99999", blob, BYTES, &e), -1);
}
