// file_io.h: whole-file reads, and writes that land atomically: data goes to "<path>.tmp.<pid>" and
// is renamed into place only when complete, so a killed run never leaves a half-written file that
// looks finished.
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "../kernels/check.h"

// Reads the whole file; returns a NUL-terminated malloc'd buffer (caller frees), or NULL with e set.
char* file_read_all(const char* path, size_t* len, Err* e);

typedef struct {
    FILE* fp;
    char path[4096];
    char tmp_path[4200];
} AtomicFile;

int atomic_open(AtomicFile* f, const char* path, Err* e);
int atomic_write(AtomicFile* f, const void* data, size_t n, Err* e);
int atomic_commit(AtomicFile* f, Err* e);  // flush, fsync, rename into place
void atomic_abort(AtomicFile* f);          // close and delete the temp file

int file_write_atomic(const char* path, const void* data, size_t n, Err* e);
// fsync of the folder holding path (after a rename into it), best effort
void fsync_parent(const char* path);

// Writes `root` pretty-printed to dir/name atomically, then frees it.
struct cJSON;
int json_write_atomic(const char* dir, const char* name, struct cJSON* root, Err* e);
// The JSON at path, parsed (caller frees with cJSON_Delete); NULL when the file is absent, unreadable or
// not JSON (for files that are optional, such as a stage's metrics that may not exist yet).
struct cJSON* json_read_optional(const char* path);

// Maps a whole file read-only. An empty file gives map NULL and size 0. Unmap with file_unmap.
int file_map(const char* path, const uint8_t** map, size_t* size, Err* e);
void file_unmap(const uint8_t* map, size_t size);

// mkdir -p
int make_dirs(const char* path, Err* e);

// Removes, below dir, the "<name>.tmp.<PID>" files of atomic writes whose writer is no longer running
// (a killed run's half-written outputs, full-size training states among them); returns how many.
int remove_stale_tmp(const char* dir);

// rm -rf: a directory and everything under it (symlinks removed, not followed); 0 when absent
int remove_tree(const char* path, Err* e);
