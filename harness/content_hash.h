// content_hash.h: what a stage read, named by its content. A file's hash is XXH3-128 of its bytes; a
// folder's is the hash of its sorted (relative name, file hash) list, dotfiles left out (a checkpoint
// folder: config.json, the safetensors, the tokenizer). A memo keyed on (path, device, inode, size,
// mtime ns, ctime ns) keeps multi-GB checkpoints from being re-read on every run: any rewrite, even
// one in place of equal size, changes mtime or ctime and so is hashed again.
#pragma once
#include <stdint.h>

#include "../kernels/check.h"

#define CONTENT_HASH_HEX 33  // 32 hex digits + NUL

typedef struct {
    char path[4096];     // realpath of the file
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
    char hash[CONTENT_HASH_HEX];
} HashMemoEntry;

typedef struct {
    char file[4096];         // where the memo is kept ("" = in memory only)
    HashMemoEntry* entries;  // n of cap
    int n, cap;
    int dirty;
    uint64_t bytes_hashed;   // bytes read this session (what the memo saved shows here as 0)
} HashMemo;

// Opens the memo kept in `file` (absent is fine; a malformed line is skipped: the memo is only a cache).
// file may be NULL: memo in memory only.
void hash_memo_open(HashMemo* m, const char* file);
// Hex hash of the file or folder at path. -1 with e = "PATH: problem" when it is missing or unreadable.
int content_hash(HashMemo* m, const char* path, char out[CONTENT_HASH_HEX], Err* e);
// Writes the memo back (atomically) when it changed; a failure here is reported but harmless.
int hash_memo_save(HashMemo* m, Err* e);
void hash_memo_free(HashMemo* m);
