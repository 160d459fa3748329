// content_hash.c: see content_hash.h.
#include "content_hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "../models/file_io.h"
#include "../models/vec.h"

static void hex128(XXH128_hash_t h, char out[CONTENT_HASH_HEX]) {
    snprintf(out, CONTENT_HASH_HEX, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

void hash_memo_open(HashMemo* m, const char* file) {
    memset(m, 0, sizeof *m);
    if (!file) return;
    snprintf(m->file, sizeof m->file, "%s", file);
    FILE* f = fopen(file, "r");
    if (!f) return;
    char line[4400];
    while (fgets(line, sizeof line, f)) {
        HashMemoEntry x;
        unsigned long long dev, ino, size;
        long long mt, ct;
        int used = 0;
        if (sscanf(line, "%32s %llu %llu %llu %lld %lld %n", x.hash, &dev, &ino, &size, &mt, &ct, &used) != 6 || !used) continue;
        if (strlen(x.hash) != 32) continue;
        snprintf(x.path, sizeof x.path, "%s", line + used);
        x.path[strcspn(x.path, "\n")] = 0;
        x.dev = dev, x.ino = ino, x.size = size, x.mtime_ns = mt, x.ctime_ns = ct;
        if (m->n == m->cap) m->entries = xrealloc(m->entries, sizeof(HashMemoEntry) * (size_t)(m->cap = m->cap ? 2 * m->cap : 64));
        m->entries[m->n++] = x;
    }
    fclose(f);
}

static int hash_file(HashMemo* m, const char* path, const struct stat* st, char out[CONTENT_HASH_HEX], Err* e) {
    char real[PATH_MAX];
    if (!realpath(path, real)) return err_set(e, "%s: %s", path, strerror(errno));
    int64_t mt = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    int64_t ct = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
    HashMemoEntry* slot = NULL;
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->entries[i].path, real)) slot = &m->entries[i];
    if (slot && slot->dev == (uint64_t)st->st_dev && slot->ino == (uint64_t)st->st_ino && slot->size == (uint64_t)st->st_size &&
        slot->mtime_ns == mt && slot->ctime_ns == ct) {
        memcpy(out, slot->hash, CONTENT_HASH_HEX);
        return 0;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set(e, "%s: cannot open (%s)", path, strerror(errno));
    XXH3_state_t* s = XXH3_createState();
    XXH3_128bits_reset(s);
    size_t cap = 1 << 22;
    char* buf = xmalloc(cap);
    ssize_t got;
    int rc = 0;
    while ((got = read(fd, buf, cap)) != 0) {
        if (got < 0) {
            if (errno == EINTR) continue;
            rc = err_set(e, "%s: read failed (%s)", path, strerror(errno));
            break;
        }
        XXH3_128bits_update(s, buf, (size_t)got);
        m->bytes_hashed += (uint64_t)got;
    }
    close(fd);
    free(buf);
    if (!rc) hex128(XXH3_128bits_digest(s), out);
    XXH3_freeState(s);
    if (rc) return -1;
    if (!slot) {
        if (m->n == m->cap) m->entries = xrealloc(m->entries, sizeof(HashMemoEntry) * (size_t)(m->cap = m->cap ? 2 * m->cap : 64));
        slot = &m->entries[m->n++];
        snprintf(slot->path, sizeof slot->path, "%s", real);
    }
    slot->dev = (uint64_t)st->st_dev, slot->ino = (uint64_t)st->st_ino, slot->size = (uint64_t)st->st_size;
    slot->mtime_ns = mt, slot->ctime_ns = ct;
    memcpy(slot->hash, out, CONTENT_HASH_HEX);
    m->dirty = 1;
    return 0;
}

static int by_name(const void* a, const void* b) { return strcmp(*(char* const*)a, *(char* const*)b); }

// folder: feeds "relative/name\0hash\n" of every file below dir, in sorted order, into s
static int hash_dir(HashMemo* m, const char* dir, const char* rel, XXH3_state_t* s, int depth, Err* e) {
    if (depth > 16) return err_set(e, "%s: folders nested too deep", dir);
    DIR* d = opendir(dir);
    if (!d) return err_set(e, "%s: cannot open folder (%s)", dir, strerror(errno));
    char** names = NULL;
    int n = 0, cap = 0;
    for (struct dirent* ent; (ent = readdir(d));) {
        if (ent->d_name[0] == '.') continue;  // ., .., and hidden files (caches, locks)
        if (n == cap) names = xrealloc(names, sizeof(char*) * (size_t)(cap = cap ? 2 * cap : 32));
        names[n++] = xstrdup(ent->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(char*), by_name);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        char path[4096], sub[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
        struct stat st;
        if (stat(path, &st) != 0) {
            rc = err_set(e, "%s: %s", path, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            rc = hash_dir(m, path, sub, s, depth + 1, e);
        } else if (S_ISREG(st.st_mode)) {
            char h[CONTENT_HASH_HEX];
            rc = hash_file(m, path, &st, h, e);
            if (!rc) {
                XXH3_128bits_update(s, sub, strlen(sub) + 1);
                XXH3_128bits_update(s, h, 32);
            }
        }
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int content_hash(HashMemo* m, const char* path, char out[CONTENT_HASH_HEX], Err* e) {
    struct stat st;
    if (!path || !path[0]) return err_set(e, "content hash: no path given");
    if (stat(path, &st) != 0) return err_set(e, "%s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode)) return hash_file(m, path, &st, out, e);
    if (!S_ISDIR(st.st_mode)) return err_set(e, "%s: neither a file nor a folder", path);
    XXH3_state_t* s = XXH3_createState();
    XXH3_128bits_reset(s);
    XXH3_128bits_update(s, "dir\n", 4);
    int rc = hash_dir(m, path, "", s, 0, e);
    if (!rc) hex128(XXH3_128bits_digest(s), out);
    XXH3_freeState(s);
    return rc;
}

int hash_memo_save(HashMemo* m, Err* e) {
    if (!m->file[0] || !m->dirty) return 0;
    ByteVec v = {0};
    for (int i = 0; i < m->n; i++) {
        const HashMemoEntry* x = &m->entries[i];
        char line[4400];
        int len = snprintf(line, sizeof line, "%s %llu %llu %llu %lld %lld %s\n", x->hash, (unsigned long long)x->dev,
                           (unsigned long long)x->ino, (unsigned long long)x->size, (long long)x->mtime_ns,
                           (long long)x->ctime_ns, x->path);
        bytevec_append(&v, line, (size_t)len);
    }
    int rc = file_write_atomic(m->file, v.data ? v.data : "", v.len, e);
    free(v.data);
    if (!rc) m->dirty = 0;
    return rc;
}

void hash_memo_free(HashMemo* m) {
    free(m->entries);
    m->entries = NULL;
    m->n = m->cap = 0;
}
