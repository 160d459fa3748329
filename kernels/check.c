// check.c: error message helpers and checked allocation (see check.h).
#include "check.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int err_vset(Err* e, int runtime, const char* fmt, va_list ap) {
    if (e) {
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        e->runtime = runtime;
    }
    return -1;
}

int err_set(Err* e, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, 0, fmt, ap);
    va_end(ap);
    return -1;
}

int err_runtime(Err* e, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, 1, fmt, ap);
    va_end(ap);
    return -1;
}

int err_prefix(Err* e, const char* fmt, ...) {
    if (!e) return -1;
    char old[sizeof e->msg];
    memcpy(old, e->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    size_t at = n < 0 ? 0 : (size_t)n < sizeof e->msg ? (size_t)n : sizeof e->msg - 1;
    size_t room = sizeof e->msg - 1 - at;
    size_t old_len = strnlen(old, sizeof old - 1);
    if (room >= 2) {
        memcpy(e->msg + at, ": ", 2);
        at += 2;
        room -= 2;
        size_t m = old_len < room ? old_len : room;
        memcpy(e->msg + at, old, m);
        at += m;
    }
    e->msg[at] = 0;
    return -1;
}

void fatal_at(const char* file, int line, int code, const char* fmt, ...) {
    fflush(stdout);
    fprintf(stderr, "arbor: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (%s:%d)\n", file, line);
    exit(code);
}

void* malloc_check(size_t size, const char* file, int line) {
    void* p = malloc(size ? size : 1);
    if (!p) fatal_at(file, line, ARBOR_EXIT_RUNTIME, "out of memory allocating %zu bytes", size);
    return p;
}

void* calloc_check(size_t n, size_t size, const char* file, int line) {
    void* p = calloc(n ? n : 1, size ? size : 1);
    if (!p) fatal_at(file, line, ARBOR_EXIT_RUNTIME, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void* realloc_check(void* old, size_t size, const char* file, int line) {
    void* p = realloc(old, size ? size : 1);
    if (!p) fatal_at(file, line, ARBOR_EXIT_RUNTIME, "out of memory growing a buffer to %zu bytes", size);
    return p;
}

char* strdup_check(const char* s, const char* file, int line) {
    size_t n = strlen(s) + 1;
    char* p = malloc_check(n, file, line);
    memcpy(p, s, n);
    return p;
}

void* aligned_alloc_uninit_check(size_t size, const char* file, int line) {
    size_t rounded = (size + 63) / 64 * 64;
    void* p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) fatal_at(file, line, ARBOR_EXIT_RUNTIME, "out of memory allocating %zu bytes", size);
    return p;
}

void* aligned_alloc_check(size_t size, const char* file, int line) {
    void* p = aligned_alloc_uninit_check(size, file, line);
    size_t rounded = (size + 63) / 64 * 64;
    memset(p, 0, rounded ? rounded : 64);
    return p;
}
