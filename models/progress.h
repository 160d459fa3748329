// progress.h: progress lines on stderr for long work (done/total, rate, ETA), at most one every two
// seconds, and none at all for work too small to wait for.
#pragma once

typedef struct {
    const char* what;  // "load", "init", ...
    const char* unit;  // "GB", "steps", ...
    double scale;      // units per counted item (1e-9 for bytes shown as GB)
    double total;      // in counted items
    double start, last;
    int quiet;
} Progress;

// Work below min_total counted items prints nothing.
void progress_begin(Progress* p, const char* what, const char* unit, double scale, double total, double min_total);
void progress_update(Progress* p, double done);
void progress_end(Progress* p);
