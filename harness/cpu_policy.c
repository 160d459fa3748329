// cpu_policy.c: see cpu_policy.h.
#include "cpu_policy.h"

#include "../kernels/cpu/blas_core.h"

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

// passive waiting wanted now (OMP_WAIT_POLICY not set by anyone); *others: runnable processes seen
static int passive_wanted(double* others) {
    if (getenv("OMP_WAIT_POLICY")) return 0;  // the user's choice (or ours, after the re-exec)
    const char* p = getenv("ARBOR_CPU_POLICY");
    if (p && !strcmp(p, "dedicated")) return 0;
    *others = p && !strcmp(p, "shared") ? -1 : others_now();
    return !(*others >= 0 && *others < 0.5);
}

void cpu_policy_apply(int argc, char** argv) {
    (void)argc;
    double others = 0;
    int passive = passive_wanted(&others);
    const char* core = blas_core_wanted();
    if (!passive && !core) return;
    if (passive) {
        char seen[32];
        snprintf(seen, sizeof seen, "%.2f", others < 0 ? 0 : others);
        setenv("OMP_WAIT_POLICY", "passive", 1);
        setenv("ARBOR_OTHER_RUNNABLE", seen, 1);
    }
    if (core) {
        setenv("ARBOR_BLAS_CORE_DETECTED", blas_core_name(), 1);
        setenv("OPENBLAS_CORETYPE", core, 1);
    }
    execv("/proc/self/exe", argv);
    // exec failed: go on as before
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("OPENBLAS_CORETYPE");
}

const char* cpu_blas_note(char* buf, size_t n) {
    const char* was = getenv("ARBOR_BLAS_CORE_DETECTED");
    if (was) snprintf(buf, n, "%s (OpenBLAS chose %s for this CPU; arbor set OPENBLAS_CORETYPE)", blas_core_name(), was);
    else snprintf(buf, n, "%s", blas_core_name());
    return buf;
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
