// test_device_check.c: scripts/device_check.sh's own plumbing, dry, on a machine without a GPU: a fake
// nvidia-smi, the CUDA suites skipping, the benchmarks failing for want of a device, a part killed
// mid-step. GPU time is scarce, so paths, the archives, the per-step summary, the grid the GPU's memory
// picks and the time limits are known to work first.
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
#include "models/file_io.h"

static int remove_dir(const char* dir) {
    Err e;
    return remove_tree(dir, &e);
}

// Runs `device_check.sh PART` dry (binaries from bin_dir, a fake nvidia-smi reporting `gpu_line`);
// returns its exit status, the printed log in *text and the archive's file list in *list (malloc'd).
static int dry_run(const char* dir, const char* bin_dir, const char* part, const char* gpu_line, char** text, char** list) {
    char src[1024], cmd[6000], path[700], out[700];
    snprintf(src, sizeof src, "%s/../..", ARBOR_FIXTURES);
    snprintf(path, sizeof path, "%s/nvidia-smi", dir);
    snprintf(cmd, sizeof cmd, "#!/bin/sh\necho '%s'\n", gpu_line);
    write_text(path, cmd);
    cr_assert_eq(chmod(path, 0755), 0);
    snprintf(out, sizeof out, "%s/out-%s", dir, part);
    // (BXFI_MAP, Criterion's own sandbox handle, would make the nested Criterion suites abort: unset)
    snprintf(cmd, sizeof cmd,
             "cd %s && unset BXFI_MAP && PATH=%s:$PATH OUT=%s ARBOR_DEVICE_BIN=%s timeout -k 5 100 bash scripts/device_check.sh %s "
             "> %s/log-%s.txt 2>&1",
             src, dir, out, bin_dir, part, dir, part);
    int st = system(cmd);
    cr_assert(WIFEXITED(st));
    // one file comes back: the part's archive
    DIR* d = opendir(out);
    cr_assert_not_null(d);
    int files = 0;
    for (struct dirent* e; (e = readdir(d));) files += e->d_name[0] != '.';
    closedir(d);
    cr_expect_eq(files, 1, "only results-%s.tgz under $OUT", part);
    snprintf(cmd, sizeof cmd, "tar tzf %s/results-%s.tgz > %s/list-%s.txt", out, part, dir, part);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/list-%s.txt", dir, part);
    *list = slurp(path);
    snprintf(path, sizeof path, "%s/log-%s.txt", dir, part);
    *text = slurp(path);
    return WEXITSTATUS(st);
}

// the summary comes last, under 3,000 characters
static const char* summary_of(const char* text, const char* part) {
    char head[64];
    snprintf(head, sizeof head, "===== device_check %s summary", part);
    const char* sum = strstr(text, head);
    cr_assert_not_null(sum, "%s", text);
    cr_expect_lt(strlen(sum), 3200, "the summary fits the tool's view: %zu chars", strlen(sum));
    return sum;
}

static void build_dir(char* out, size_t n) {
    char bin[1024];
    snprintf(bin, sizeof bin, "%s", ARBOR_BIN);
    snprintf(out, n, "%s", dirname(bin));  // the build folder: the test binaries beside arbor
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/test_cuda", out);
    if (access(probe, X_OK) != 0) cr_skip_test("no CUDA build here (test_cuda missing): the device check has nothing to run");
}

Test(device_check, correctness_part_packs_its_archive_and_prints_a_short_summary_last, .timeout = 120) {
    char build[1024], dir[256];
    build_dir(build, sizeof build);
    make_temp_dir(dir, sizeof dir);
    char *text, *list;
    int rc = dry_run(dir, build, "correctness", "Fake GPU, 1 MiB, 0.0", &text, &list);
    cr_expect_eq(rc, 0, "the suites skip without a device: status 0");
    cr_expect(contains(list, "results/summary.txt") && contains(list, "results/test_cuda_parity.log") &&
                  contains(list, "results/test_cuda_train_parity.log"), "%s", list);
    const char* sum = summary_of(text, "correctness");
    cr_expect(contains(sum, "test_cuda_parity: rc 0") && contains(sum, "skipped") && contains(sum, "test_cuda_train_parity: rc 0") &&
                  contains(sum, "overall status 0") && !contains(sum, "bench "),
              "%s", sum);
    free(text), free(list);
    cr_expect_eq(remove_dir(dir), 0);
}

Test(device_check, bench_part_picks_the_grid_by_memory_and_summarises, .timeout = 120) {
    char build[1024], dir[256];
    build_dir(build, sizeof build);
    make_temp_dir(dir, sizeof dir);
    char *text, *list;
    // an H100's 81,559 MiB: batch 128 at most (Qwen3-4B's KV cache at 256 x 2,048 is 78.6 GB)
    int rc = dry_run(dir, build, "bench", "NVIDIA H100 80GB HBM3, 81559 MiB, 570.00", &text, &list);
    cr_expect_eq(rc, 1, "the benchmarks fail without a device, and the script says so with status 1 (not 2: plumbing)");
    cr_expect(contains(list, "results/summary.txt") && contains(list, "results/bench.log"), "%s", list);
    const char* sum = summary_of(text, "bench");
    cr_expect(contains(sum, "grid: batch 1,64,128") && contains(sum, "bench qwen3-4b-long") && contains(sum, "--batch 1,64,128") &&
                  contains(sum, "bench_distill_cuda") && contains(sum, "overall status 1") && !contains(sum, "test_cuda_parity"),
              "%s", sum);
    // GEMV and cuBLASLt are measured with the same settings
    cr_expect(contains(sum, "bench qwen3-8b --arch qwen3-8b --batch 1 --prompt-len 2048 --gen-len 64 --repeats 3:") &&
                  contains(sum, "bench qwen3-8b-cublas --arch qwen3-8b --batch 1 --prompt-len 2048 --gen-len 64 --repeats 3 --cublas-only:"),
              "%s", sum);
    free(text), free(list);
    // an H200's 143,771 MiB: batch 256
    rc = dry_run(dir, build, "bench", "NVIDIA H200, 143771 MiB, 570.00", &text, &list);
    sum = summary_of(text, "bench");
    cr_expect(contains(sum, "grid: batch 1,64,256") && contains(sum, "--batch 1,64,256"), "%s", sum);
    free(text), free(list);
    cr_expect_eq(remove_dir(dir), 0);
}

Test(device_check, a_killed_part_still_leaves_its_archive, .timeout = 120) {
    char dir[256], path[700], cmd[3000], src[1024];
    make_temp_dir(dir, sizeof dir);
    // fake binaries: test_cuda hangs past the kill; the trap packs what there is
    snprintf(path, sizeof path, "%s/bin", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/bin/test_cuda", dir);
    write_text(path, "#!/bin/sh\necho started\nexec sleep 30\n");
    cr_assert_eq(chmod(path, 0755), 0);
    snprintf(path, sizeof path, "%s/nvidia-smi", dir);
    write_text(path, "#!/bin/sh\necho 'Fake GPU, 1 MiB, 0.0'\n");
    cr_assert_eq(chmod(path, 0755), 0);
    snprintf(src, sizeof src, "%s/../..", ARBOR_FIXTURES);
    // the script's whole process group gets TERM after 2 s, as a tool's time limit would send it
    snprintf(cmd, sizeof cmd,
             "cd %s && PATH=%s:$PATH OUT=%s/out ARBOR_DEVICE_BIN=%s/bin timeout -k 10 60 bash -c "
             "'setsid bash scripts/device_check.sh correctness > %s/log.txt 2>&1 & p=$!; sleep 2; kill -TERM -$p; wait $p' ; true",
             src, dir, dir, dir, dir);
    int st = system(cmd);
    cr_assert(WIFEXITED(st));
    snprintf(path, sizeof path, "%s/out/results-correctness.tgz", dir);
    cr_expect_eq(access(path, F_OK), 0, "the trap packed the archive");
    snprintf(path, sizeof path, "%s/log.txt", dir);
    char* text = slurp(path);
    cr_expect(contains(text, "killed (signal) during: test_cuda") && contains(text, "===== device_check correctness summary"), "%s",
              text);
    free(text);
    cr_expect_eq(remove_dir(dir), 0);
}

// The per-step limits sum (a step's `timeout` covers a stuck driver call too) for the part starting at
// `from` up to `to` (NULL: the end).
static int limits(const char* script, const char* from, const char* to) {
    const char* a = strstr(script, from);
    cr_assert_not_null(a, "%s", from);
    const char* b = to ? strstr(a, to) : a + strlen(a);
    cr_assert_not_null(b, "%s", to);
    int total = 0, limit;
    char name[64];
    for (const char* p = a; (p = strstr(p, "suite test_")) && p < b; p++)
        if (sscanf(p, "suite %63s %d", name, &limit) == 2) total += limit;
    for (const char* p = a; (p = strstr(p, "\nbench ")) && p < b; p++)
        if (sscanf(p, "\nbench %d", &limit) == 1) total += limit;
    for (const char* p = a; (p = strstr(p, "timeout -k 5 ")) && p < b; p++)
        if (sscanf(p, "timeout -k 5 %d", &limit) == 1) total += limit;
    return total;
}

Test(device_check, each_part_leaves_room_for_a_rerun_of_the_other) {
    char path[1200];
    snprintf(path, sizeof path, "%s/../../scripts/device_check.sh", ARBOR_FIXTURES);
    char* script = slurp(path);
    int correctness = limits(script, "if [ \"$part\" = correctness ]; then", "finish \"$status\"\nfi\n");
    int bench = limits(script, "\nfi\n\n# bench:", NULL);
    // a machine start (~240 s), both parts, and a rerun of the longer one within the 900 s lent
    cr_expect(correctness > 100 && correctness <= 180, "correctness limits sum to %d s", correctness);
    cr_expect(bench > 150 && bench <= 250, "bench limits sum to %d s", bench);
    int worst = 240 + correctness + bench + (bench > correctness ? bench : correctness);
    cr_expect_leq(worst, 900, "start + both parts + a rerun: %d s", worst);
    // every command under `timeout -k` (a process stuck in the driver ignores TERM), nvidia-smi included;
    // the bundle's libraries reach arbor's binaries only, never the whole script's environment
    int plain = 0, with_kill = 0;
    for (char* line = strtok(script, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ') line++;
        if (*line == '#') continue;
        for (const char* p = line; (p = strstr(p, "timeout ")); p++) {
            if (p > line && p[-1] != ' ' && p[-1] != '(') continue;  // e.g. "--timeout", "TIMED OUT"
            if (!strncmp(p, "timeout -k ", 11)) with_kill++;
            else plain++;
        }
        cr_expect(!strstr(line, "export LD_LIBRARY_PATH"), "the bundle's libraries are exported to every process: %s", line);
    }
    cr_expect(with_kill >= 6 && plain == 0, "%d commands under timeout -k, %d under a plain timeout", with_kill, plain);
    free(script);
}
