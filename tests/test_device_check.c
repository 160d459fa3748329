// test_device_check.c: scripts/device_check.sh's own plumbing, dry, on a machine without a GPU: a fake
// nvidia-smi, the CUDA suites skipping, the benchmarks failing for want of a device. GPU time is
// scarce, so paths, the archive, the per-step summary and the size limits are known to work first.
#include <criterion/criterion.h>
#include <dirent.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

Test(device_check, dry_run_packs_one_archive_and_prints_a_short_summary_last, .timeout = 120) {
    char bin[1024], build[1024], src[1024], dir[256], cmd[6000], out[600], log[600];
    snprintf(bin, sizeof bin, "%s", ARBOR_BIN);
    snprintf(build, sizeof build, "%s", dirname(bin));  // the build folder: the test binaries beside arbor
    snprintf(src, sizeof src, "%s/../..", ARBOR_FIXTURES);
    snprintf(cmd, sizeof cmd, "%s/test_cuda", build);
    if (access(cmd, X_OK) != 0) cr_skip_test("no CUDA build here (test_cuda missing): the device check has nothing to run");
    make_temp_dir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd, "%s/nvidia-smi", dir);
    write_text(cmd, "#!/bin/sh\necho 'Fake GPU, 1 MiB, 0.0'\n");
    cr_assert_eq(chmod(cmd, 0755), 0);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    // (BXFI_MAP, Criterion's own sandbox handle, would make the nested Criterion suites abort: unset)
    snprintf(cmd, sizeof cmd,
             "cd %s && unset BXFI_MAP && PATH=%s:$PATH OUT=%s ARBOR_DEVICE_BIN=%s timeout 100 bash scripts/device_check.sh > %s 2>&1",
             src, dir, out, build, log);
    int st = system(cmd);
    cr_assert(WIFEXITED(st));
    int rc = WEXITSTATUS(st);
    cr_expect_eq(rc, 1, "the benchmarks fail without a device, and the script says so with status 1 (not 2: plumbing)");
    // one file comes back: the archive
    DIR* d = opendir(out);
    cr_assert_not_null(d);
    int files = 0;
    for (struct dirent* e; (e = readdir(d));) files += e->d_name[0] != '.';
    closedir(d);
    cr_expect_eq(files, 1, "only results.tgz under $OUT");
    snprintf(cmd, sizeof cmd, "tar tzf %s/results.tgz > %s/list.txt", out, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/list.txt", dir);
    char* list = slurp(cmd);
    cr_expect(contains(list, "results/summary.txt") && contains(list, "results/test_cuda_parity.log") &&
                  contains(list, "results/test_cuda_train_parity.log") && contains(list, "results/bench.log"),
              "%s", list);
    free(list);
    // the summary comes last, under 3,000 characters, one line per step
    char* text = slurp(log);
    const char* sum = strstr(text, "===== device_check summary");
    cr_assert_not_null(sum, "%s", text);
    cr_expect_lt(strlen(sum), 3200, "the summary fits the tool's view: %zu chars", strlen(sum));
    cr_expect(contains(sum, "test_cuda_parity: rc 0") && contains(sum, "skipped") && contains(sum, "test_cuda_train_parity: rc 0") &&
                  contains(sum, "bench qwen3-4b-long") && contains(sum, "bench_distill_cuda") && contains(sum, "overall status 1"),
              "%s", sum);
    free(text);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

Test(device_check, per_step_limits_leave_room_for_a_rerun) {
    // the sum of every step's timeout must stay within 420 s (the device tool allows 600 a call)
    char path[1200];
    snprintf(path, sizeof path, "%s/../../scripts/device_check.sh", ARBOR_FIXTURES);
    char* script = slurp(path);
    int total = 0;
    for (const char* p = script; (p = strstr(p, "\nsuite ")); p++) {
        int limit;
        char name[64];
        if (sscanf(p, "\nsuite %63s %d", name, &limit) == 2) total += limit;
    }
    for (const char* p = script; (p = strstr(p, "\nbench ")); p++) {
        int limit;
        if (sscanf(p, "\nbench %d", &limit) == 1) total += limit;
    }
    for (const char* p = script; (p = strstr(p, "\ntimeout ")); p++) {
        int limit;
        if (sscanf(p, "\ntimeout %d", &limit) == 1) total += limit;
    }
    for (const char* p = script; (p = strstr(p, "if ! suite ")); p++) {
        int limit;
        char name[64];
        if (sscanf(p, "if ! suite %63s %d", name, &limit) == 2) total += limit;
    }
    cr_expect(total > 300 && total <= 420, "per-step limits sum to %d s", total);
    free(script);
}
