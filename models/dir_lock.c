// dir_lock.c: see dir_lock.h.
#include "dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int lock_path(const char* path, const char* dir, int wait, int* fd, Err* e) {
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) return err_set(e, "%s: cannot create the lock file (%s)", path, strerror(errno));
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t got = pread(f, pid, sizeof pid - 1, 0);
        if (got > 0) pid[got] = 0;
        pid[strcspn(pid, "\n")] = 0;
        if (wait) {
            fprintf(stderr, "%s is in use by PID %s: waiting for it\n", dir, pid[0] ? pid : "?");
            int rc;
            while ((rc = flock(f, LOCK_EX)) != 0 && errno == EINTR) {}
            if (rc != 0) {
                close(f);
                return err_set(e, "%s: cannot lock (%s)", path, strerror(errno));
            }
        } else {
            close(f);
            return err_set(e, "%s is in use by PID %s (another arbor run); wait for it to finish or stop it", dir,
                           pid[0] ? pid : "?");
        }
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)len, 0) != len) {
        close(f);
        return err_set(e, "%s: cannot write the lock file", path);
    }
    *fd = f;
    return 0;
}

static int lock(const char* dir, int wait, int* fd, Err* e) {
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock", dir);
    return lock_path(path, dir, wait, fd, e);
}

int dir_lock(const char* dir, int* fd, Err* e) { return lock(dir, 0, fd, e); }
int dir_lock_wait(const char* dir, int* fd, Err* e) { return lock(dir, 1, fd, e); }
int file_lock_wait(const char* path, int* fd, Err* e) { return lock_path(path, path, 1, fd, e); }

void dir_unlock(int fd) {
    if (fd >= 0) close(fd);
}
