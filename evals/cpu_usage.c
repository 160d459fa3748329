// cpu_usage.c: see cpu_usage.h.
#include "cpu_usage.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "../kernels/clock.h"

static double run_delay_seconds(void) {  // summed over every thread of this process
    DIR* d = opendir("/proc/self/task");
    if (!d) return 0;
    double sum = 0;
    for (struct dirent* ent; (ent = readdir(d));) {
        if (ent->d_name[0] == '.') continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", ent->d_name);
        FILE* f = fopen(path, "r");
        if (!f) continue;
        unsigned long long run, delay;
        if (fscanf(f, "%llu %llu", &run, &delay) == 2) sum += (double)delay * 1e-9;
        fclose(f);
    }
    closedir(d);
    return sum;
}

void cpu_sample(CpuSample* s) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s->wall = now_seconds();
    s->cpu = (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec + 1e-6 * ru.ru_stime.tv_usec;
    s->wait = run_delay_seconds();
}

double cpu_per_wall(const CpuSample* a, const CpuSample* b) {
    double wall = b->wall - a->wall;
    return wall > 0 ? (b->cpu - a->cpu) / wall : 0;
}

double cpu_wait_share(const CpuSample* a, const CpuSample* b, int threads) {
    double wall = b->wall - a->wall;
    return wall > 0 && threads > 0 ? (b->wait - a->wait) / (wall * threads) : 0;
}

double load_average_1m(void) {
    double l[1];
    return getloadavg(l, 1) == 1 ? l[0] : -1;
}
