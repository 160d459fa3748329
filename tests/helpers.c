// helpers.c: see helpers.h.
#include "helpers.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "models/file_io.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "models/token_shard.h"

double rel_l2(const float* a, const float* b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1e-30));
}

// ARBOR_FIXTURES in the environment overrides the source tree's (a test binary run on another machine)
const char* fixtures_root(void) {
    const char* env = getenv("ARBOR_FIXTURES");
    return env && *env ? env : ARBOR_FIXTURES;
}

void load_model_at(Model* m, const char* dir, const char* sub) {
    char path[4096];
    snprintf(path, sizeof path, sub ? "%s/%s" : "%s", dir, sub);
    Err e;
    cr_assert_eq(model_load(m, path, &e), 0, "%s", e.msg);
}

void fixture_dir(char* out, size_t n, const char* name) { snprintf(out, n, "%s/hf/%s", fixtures_root(), name); }

// every folder a test made, removed when the test's process exits (Criterion runs each test in its own)
static char made_dirs[64][256];
static int n_made;

static void remove_made_dirs(void) {
    for (int i = 0; i < n_made; i++) remove_tree(made_dirs[i], NULL);
}

void make_temp_dir(char* out, size_t n) {
    snprintf(out, n, "/tmp/arbor-test-XXXXXX");
    if (!mkdtemp(out)) cr_assert_fail("mkdtemp failed");
    if (n_made == 0) atexit(remove_made_dirs);
    if (n_made < 64) snprintf(made_dirs[n_made++], sizeof made_dirs[0], "%s", out);
}

void write_bytes(const char* path, const void* data, size_t n) {
    FILE* f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

void write_text(const char* path, const char* text) { write_bytes(path, text, strlen(text)); }

cJSON* read_json(const char* path) {
    Err e;
    char* text = file_read_all(path, NULL, &e);
    cr_assert_not_null(text, "%s", e.msg);
    cJSON* j = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(j, "%s: bad JSON", path);
    return j;
}

int run_arbor(const char* args, const char* out_path) {
    char cmd[8192];
    // exec: the shell becomes arbor, which keeps the death signal below: a test killed at its timeout
    // takes its arbor with it instead of leaving it running
    snprintf(cmd, sizeof cmd, "exec %s %s%s%s", ARBOR_BIN, args, out_path ? " > " : "", out_path ? out_path : "");
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);  // the test died before the signal was armed
        execl("/bin/sh", "sh", "-c", cmd, (char*)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) cr_assert(errno == EINTR, "waitpid failed");
    cr_assert(WIFEXITED(st), "could not run (signal %d): %s", WIFSIGNALED(st) ? WTERMSIG(st) : 0, cmd);
    return WEXITSTATUS(st);
}

int data_path(char* out, size_t n, const char* sub) {
    const char* root = getenv("ARBOR_DATA");
    snprintf(out, n, "%s/%s", root && *root ? root : ARBOR_DEFAULT_DATA, sub);
    return access(out, F_OK) == 0 ? 0 : -1;
}

int contains(const char* haystack, const char* needle) { return strstr(haystack, needle) != NULL; }

void write_test_shard(const char* path, int n, int vocab, uint64_t seed, const int* ids) {
    ShardWriter w;
    Err e;
    cr_assert_eq(shard_writer_open(&w, path, vocab, -1, &e), 0, "%s", e.msg);
    uint64_t x = seed;
    for (int i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int id = ids ? ids[i] : (int)((x >> 33) % (uint64_t)vocab);
        cr_assert_eq(shard_writer_append(&w, &id, 1, &e), 0, "%s", e.msg);
    }
    cr_assert_eq(shard_writer_end_doc(&w, false, &e), 0);
    cr_assert_eq(shard_writer_close(&w, &e), 0, "%s", e.msg);
}

char* slurp(const char* path) {
    Err e;
    char* text = file_read_all(path, NULL, &e);
    cr_assert_not_null(text, "%s", e.msg);
    return text;
}

static uint64_t fnv_u32(uint64_t h, uint32_t x) {
    for (int b = 0; b < 4; b++) h = (h ^ ((x >> (8 * b)) & 0xff)) * 1099511628211ull;
    return h;
}

void id_hash_add(IdHash* h, const int* ids, size_t n) {
    if (h->groups == 0) h->h = 1469598103934665603ull;
    else h->h = fnv_u32(h->h, 0xffffffffu);
    for (size_t i = 0; i < n; i++) h->h = fnv_u32(h->h, (uint32_t)ids[i]);
    h->groups++;
}

uint32_t id_hash_value(const IdHash* h) { return (uint32_t)(h->groups ? h->h : 1469598103934665603ull); }
