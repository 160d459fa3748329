// clock.h: a monotonic wall clock in seconds, for timing and progress, and the median that
// benchmarks report of their repeats.
#pragma once
#include <time.h>

static inline double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// The median of v (n >= 1), sorting v in place (a few repeats: insertion sort); the mean of the two
// middle values when n is even.
static inline double median_inplace(double* v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
