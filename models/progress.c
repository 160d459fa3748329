// progress.c: see progress.h.
#include "progress.h"

#include <stdio.h>
#include "../kernels/clock.h"

void progress_begin(Progress* p, const char* what, const char* unit, double scale, double total, double min_total) {
    p->what = what;
    p->unit = unit;
    p->scale = scale;
    p->total = total;
    p->start = p->last = now_seconds();
    p->quiet = total < min_total;
}

void progress_update(Progress* p, double done) {
    if (p->quiet) return;
    double t = now_seconds();
    if (t - p->last < 2.0) return;
    p->last = t;
    double rate = done / (t - p->start);
    double eta = rate > 0 ? (p->total - done) / rate : 0;
    int digits = p->scale == 1.0 ? 0 : 2;  // counts print whole
    fprintf(stderr, "%s: %.*f / %.*f %s (%.0f%%), %.2f %s/s, ETA %.0f s\n", p->what, digits, done * p->scale, digits,
            p->total * p->scale, p->unit, 100.0 * done / p->total, rate * p->scale, p->unit, eta);
}

void progress_end(Progress* p) {
    if (p->quiet) return;
    double t = now_seconds() - p->start;
    fprintf(stderr, "%s: %.*f %s in %.1f s\n", p->what, p->scale == 1.0 ? 0 : 2, p->total * p->scale, p->unit, t);
}
