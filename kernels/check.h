// check.h: the project's error conventions, shared by every layer.
//
// Two kinds of failure:
// - bad input (a malformed file, an impossible request): functions return -1 and fill an Err with
//   one line naming the file and the problem; the CLI prints "arbor: <msg>" and exits 2.
// - broken invariants and exhausted resources (out of memory, a failed write): fatal at once with
//   file:line, exit 1. These are the checked wrappers below.
#pragma once
#include <stddef.h>
#include <stdio.h>

#define ARBOR_EXIT_RUNTIME 1
#define ARBOR_EXIT_BAD_INPUT 2

typedef struct {
    char msg[768];
    int runtime;  // 1: the machine failed (disk full, I/O error), not the input: exit 1 rather than 2
} Err;

// Formats into e->msg (when e is not NULL) and returns -1, so callers write `return err_set(e, ...)`.
int err_set(Err* e, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// The same for a failure of the machine rather than of the input (a full disk, an I/O error).
int err_runtime(Err* e, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Puts context in front of the message already in e: "<context>: <msg>". Returns -1.
int err_prefix(Err* e, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus  // the CUDA translation units include this header too
#define ARBOR_NORETURN [[noreturn]]
#else
#define ARBOR_NORETURN _Noreturn
#endif

// Prints "arbor: <msg>" to stderr and exits with `code`.
ARBOR_NORETURN void fatal_at(const char* file, int line, int code, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define FATAL(...) fatal_at(__FILE__, __LINE__, ARBOR_EXIT_RUNTIME, __VA_ARGS__)

void* malloc_check(size_t size, const char* file, int line);
void* calloc_check(size_t n, size_t size, const char* file, int line);
void* aligned_alloc_check(size_t size, const char* file, int line);  // 64-byte aligned, zeroed
// 64-byte aligned, not zeroed: for large buffers that are always written before they are read
// (KV caches, activations), where zeroing gigabytes would cost seconds.
void* aligned_alloc_uninit_check(size_t size, const char* file, int line);
void* realloc_check(void* old, size_t size, const char* file, int line);
char* strdup_check(const char* s, const char* file, int line);
#define xmalloc(sz) malloc_check((sz), __FILE__, __LINE__)
#define xrealloc(p, sz) realloc_check((p), (sz), __FILE__, __LINE__)
#define xstrdup(s) strdup_check((s), __FILE__, __LINE__)
#define xcalloc(n, sz) calloc_check((n), (sz), __FILE__, __LINE__)
#define xaligned_alloc(sz) aligned_alloc_check((sz), __FILE__, __LINE__)
#define xaligned_alloc_uninit(sz) aligned_alloc_uninit_check((sz), __FILE__, __LINE__)
