// cpu_usage.h: whether a measurement had the cores it asked for. The kernel counts, per thread, the
// time it was runnable but waiting for a core (run_delay in /proc/self/task/*/schedstat): near 0 on a
// quiet machine, a large share of the wall time when other processes take the cores. Benchmarks
// record it beside every number and flag (and re-measure) contended rounds.
#pragma once

typedef struct {
    double wall;  // monotonic seconds
    double cpu;   // user + system seconds of this process
    double wait;  // seconds this process's threads spent runnable but not running
} CpuSample;

void cpu_sample(CpuSample* s);
// cpu seconds per wall second between a and b (about the thread count when every thread is busy)
double cpu_per_wall(const CpuSample* a, const CpuSample* b);
// run-queue wait per thread-second between a and b: 0 quiet, 0.5 when half the time went to others
double cpu_wait_share(const CpuSample* a, const CpuSample* b, int threads);
// the machine's 1-minute load average (-1 when unknown)
double load_average_1m(void);
// a round whose threads waited this share of their time or more for a core counts as contended
#define CPU_CONTENDED_SHARE 0.10
