// cpu_policy.c: see cpu_policy.h.
#include "cpu_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int procs_running(void) {  // runnable tasks on the machine right now, from /proc/stat
    FILE* f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "procs_running ", 14)) n = atoi(line + 14);
    fclose(f);
    return n;
}

static double others_now(void) {  // mean over a few samples 2 ms apart, arbor itself not counted
    int sum = 0, got = 0;
    for (int i = 0; i < 5; i++) {
        int n = procs_running();
        if (n > 0) sum += n - 1, got++;
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    return got ? (double)sum / got : 0;
}

void cpu_policy_apply(int argc, char** argv) {
    (void)argc;
    if (getenv("OMP_WAIT_POLICY")) return;  // the user's choice (or ours, after the re-exec)
    const char* p = getenv("ARBOR_CPU_POLICY");
    if (p && !strcmp(p, "dedicated")) return;
    double others = p && !strcmp(p, "shared") ? -1 : others_now();
    if (others >= 0 && others < 0.5) return;
    char seen[32];
    snprintf(seen, sizeof seen, "%.2f", others < 0 ? 0 : others);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv("ARBOR_OTHER_RUNNABLE", seen, 1);
    execv("/proc/self/exe", argv);
    // exec failed: go on spinning, as before
    unsetenv("OMP_WAIT_POLICY");
}

const char* cpu_wait_policy(void) {
    const char* w = getenv("OMP_WAIT_POLICY");
    if (!w) return "default";
    return !strcasecmp(w, "passive") ? "passive" : !strcasecmp(w, "active") ? "active" : "default";
}

double cpu_other_runnable(void) {
    const char* s = getenv("ARBOR_OTHER_RUNNABLE");
    return s ? atof(s) : 0;
}
