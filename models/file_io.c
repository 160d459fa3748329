// file_io.c: see file_io.h.
#define _XOPEN_SOURCE 700  // nftw
#include "file_io.h"

#include <cJSON.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

char* file_read_all(const char* path, size_t* len, Err* e) {
    FILE* fp = fopen(path, "rb");
    if (!fp) {
        err_set(e, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) != 0) {
        fclose(fp);
        err_set(e, "%s: cannot seek", path);
        return NULL;
    }
    long size = ftell(fp);
    rewind(fp);
    if (size < 0) {
        fclose(fp);
        err_set(e, "%s: cannot determine size", path);
        return NULL;
    }
    char* buf = xmalloc((size_t)size + 1);
    size_t got = fread(buf, 1, (size_t)size, fp);
    fclose(fp);
    if (got != (size_t)size) {
        free(buf);
        err_set(e, "%s: short read (%zu of %ld bytes)", path, got, size);
        return NULL;
    }
    buf[size] = 0;
    if (len) *len = (size_t)size;
    return buf;
}

int atomic_open(AtomicFile* f, const char* path, Err* e) {
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%d", path, (int)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) {
        int saved = errno;
        return saved == ENOSPC || saved == EIO || saved == EDQUOT
                   ? err_runtime(e, "%s: cannot create: %s", f->tmp_path, strerror(saved))
                   : err_set(e, "%s: cannot create: %s", f->tmp_path, strerror(saved));
    }
    return 0;
}

int atomic_write(AtomicFile* f, const void* data, size_t n, Err* e) {
    if (n && fwrite(data, 1, n, f->fp) != n) {
        int saved = errno;
        atomic_abort(f);
        return err_runtime(e, "%s: write failed: %s", f->path, strerror(saved));
    }
    return 0;
}

void fsync_parent(const char* path) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char* slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);  // best effort: some file systems refuse fsync on a directory
        close(fd);
    }
}

int atomic_commit(AtomicFile* f, Err* e) {
    if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0) {
        int saved = errno;
        atomic_abort(f);
        return err_runtime(e, "%s: write failed: %s", f->path, strerror(saved));
    }
    fclose(f->fp);
    f->fp = NULL;
    if (rename(f->tmp_path, f->path) != 0) {
        int saved = errno;
        unlink(f->tmp_path);
        return err_set(e, "%s: cannot rename into place: %s", f->path, strerror(saved));
    }
    fsync_parent(f->path);  // the rename itself durable across a power loss
    return 0;
}

void atomic_abort(AtomicFile* f) {
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    unlink(f->tmp_path);
}

int file_write_atomic(const char* path, const void* data, size_t n, Err* e) {
    AtomicFile f;
    if (atomic_open(&f, path, e) || atomic_write(&f, data, n, e)) return -1;
    return atomic_commit(&f, e);
}

cJSON* json_read_optional(const char* path) {
    Err e;
    char* text = access(path, F_OK) == 0 ? file_read_all(path, NULL, &e) : NULL;
    cJSON* j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

int json_write_atomic(const char* dir, const char* name, cJSON* root, Err* e) {
    char* text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) FATAL("out of memory printing %s", name);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = file_write_atomic(path, text, strlen(text), e);
    cJSON_free(text);
    return rc;
}

int file_map(const char* path, const uint8_t** map, size_t* size, Err* e) {
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        return err_set(e, "%s: cannot stat: %s", path, strerror(saved));
    }
    *size = (size_t)st.st_size;
    if (*size > 0) {
        void* p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int saved = errno;
            close(fd);
            *size = 0;
            return err_set(e, "%s: cannot mmap: %s", path, strerror(saved));
        }
        *map = p;
    }
    close(fd);
    return 0;
}

void file_unmap(const uint8_t* map, size_t size) {
    if (map) munmap((void*)map, size);
}

int make_dirs(const char* path, Err* e) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    size_t n = strlen(buf);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char saved = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return err_set(e, "%s: cannot create directory: %s", buf, strerror(errno));
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return err_set(e, "%s: not a directory", path);
    return 0;
}

static int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int remove_tree(const char* path, Err* e) {
    struct stat st;
    if (lstat(path, &st) != 0) return 0;  // nothing there
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) return err_set(e, "%s: cannot remove: %s", path, strerror(errno));
    return 0;
}

// ---- leftovers of killed runs

static int stale_removed;

static int remove_if_stale(const char* path, const struct stat* st, int type, struct FTW* ftw) {
    (void)st, (void)ftw;
    if (type != FTW_F) return 0;
    const char* mark = strstr(path + strlen(path) - (strlen(path) > 40 ? 40 : strlen(path)), ".tmp.");
    if (!mark) return 0;
    const char* digits = mark + 5;
    char* end;
    long pid = strtol(digits, &end, 10);
    if (end == digits || *end || pid <= 0) return 0;
    if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) return 0;  // its writer may still run
    if (unlink(path) == 0) stale_removed++;
    return 0;
}

int remove_stale_tmp(const char* dir) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    stale_removed = 0;
    nftw(dir, remove_if_stale, 16, FTW_PHYS);
    return stale_removed;
}
