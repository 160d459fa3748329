// dist_bootstrap.c: see dist_bootstrap.h.
#define _GNU_SOURCE
#include "dist_bootstrap.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../models/file_io.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// ---------------------------------------------------------------------------------------------
// file:DIR

static int job_key(char* out, size_t n, Err* e) {
    const char* job = getenv("ARBOR_DIST_JOB");
    if (job && *job) {
        snprintf(out, n, "%s", job);
    } else if (getenv("SLURM_JOB_ID")) {
        const char* step = getenv("SLURM_STEP_ID");
        snprintf(out, n, "%s.%s", getenv("SLURM_JOB_ID"), step ? step : "0");
    } else {
        return err_set(e, "--dist-init file: needs a job id (SLURM_JOB_ID, or ARBOR_DIST_JOB) to tell this run's file from an "
                          "older run's");
    }
    for (char* p = out; *p; p++)
        if (*p == '/') *p = '_';
    return 0;
}

static int share_file(const Dist* d, const char* dir, void* blob, size_t bytes, Err* e) {
    char key[128], path[4200];
    if (job_key(key, sizeof key, e)) return -1;
    snprintf(path, sizeof path, "%s/arbor-bootstrap-%s.bin", dir, key);
    if (d->rank == 0) return file_write_atomic(path, blob, bytes, e);  // renamed into place whole
    double deadline = now_s() + d->timeout_s;
    for (;;) {
        struct stat st;
        if (stat(path, &st) == 0 && (size_t)st.st_size == bytes) {
            size_t len;
            char* got = file_read_all(path, &len, e);
            if (!got) return -1;
            int ok = len == bytes;
            if (ok) memcpy(blob, got, bytes);
            free(got);
            if (ok) return 0;
        }
        if (now_s() > deadline)
            return err_runtime(e, "rank %d of %d: %s did not appear within %d s (rank 0 writes it; is DIR on a filesystem every "
                                  "rank shares?)",
                               d->rank, d->world, path, d->timeout_s);
        usleep(50000);
    }
}

// ---------------------------------------------------------------------------------------------
// tcp:HOST:PORT

// waits until fd is ready for events or the deadline passes; 0 ready, -1 timed out or failed
static int wait_fd(int fd, short events, double deadline) {
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0) return -1;
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) return -1;
    }
}

static int io_all(int fd, void* buf, size_t n, int writing, double deadline) {
    for (size_t done = 0; done < n;) {
        if (wait_fd(fd, writing ? POLLOUT : POLLIN, deadline)) return -1;
        ssize_t k = writing ? send(fd, (char*)buf + done, n - done, MSG_NOSIGNAL) : recv(fd, (char*)buf + done, n - done, 0);
        if (k <= 0) {
            if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            return -1;
        }
        done += (size_t)k;
    }
    return 0;
}

static int share_tcp(const Dist* d, const char* host, const char* port, void* blob, size_t bytes, Err* e) {
    double deadline = now_s() + d->timeout_s;
    char where[300];
    snprintf(where, sizeof where, "%s:%s", host, port);
    if (d->rank == 0) {
        int fd = socket(AF_INET6, SOCK_STREAM, 0), v6 = 1;
        if (fd < 0) fd = socket(AF_INET, SOCK_STREAM, 0), v6 = 0;
        if (fd < 0) return err_runtime(e, "rank 0: cannot open a socket: %s", strerror(errno));
        int one = 1, zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // IPv4 peers too
        struct sockaddr_in6 a6 = {0};
        struct sockaddr_in a4 = {0};
        int p = atoi(port), rc;
        if (v6) {
            a6.sin6_family = AF_INET6, a6.sin6_port = htons((uint16_t)p), a6.sin6_addr = in6addr_any;
            rc = bind(fd, (struct sockaddr*)&a6, sizeof a6);
        } else {
            a4.sin_family = AF_INET, a4.sin_port = htons((uint16_t)p), a4.sin_addr.s_addr = htonl(INADDR_ANY);
            rc = bind(fd, (struct sockaddr*)&a4, sizeof a4);
        }
        if (rc || listen(fd, d->world)) {
            int err = errno;
            close(fd);
            return err_runtime(e, "rank 0: cannot listen on port %s: %s", port, strerror(err));
        }
        for (int served = 1; served < d->world; served++) {  // each other rank once
            if (wait_fd(fd, POLLIN, deadline)) {
                close(fd);
                return err_runtime(e, "rank 0: %d of the %d other ranks connected to %s within %d s", served - 1, d->world - 1,
                                   where, d->timeout_s);
            }
            int c = accept(fd, NULL, NULL);
            if (c < 0) {
                served--;
                continue;
            }
            int32_t rank = -1;
            int bad = io_all(c, &rank, sizeof rank, 0, deadline) || rank <= 0 || rank >= d->world ||
                      io_all(c, blob, bytes, 1, deadline);
            close(c);
            if (bad) served--;  // a stray connection: keep waiting for the ranks
        }
        close(fd);
        return 0;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    for (;;) {  // rank 0 may not listen yet: retry until the deadline
        int gai = getaddrinfo(host, port, &hints, &res);
        if (gai == 0) {
            for (struct addrinfo* a = res; a; a = a->ai_next) {
                int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
                if (fd < 0) continue;
                if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
                    int32_t rank = d->rank;
                    int rc = io_all(fd, &rank, sizeof rank, 1, deadline) || io_all(fd, blob, bytes, 0, deadline);
                    close(fd);
                    if (!rc) {
                        freeaddrinfo(res);
                        return 0;
                    }
                } else {
                    close(fd);
                }
            }
            freeaddrinfo(res);
            res = NULL;
        }
        if (now_s() > deadline)
            return err_runtime(e, "rank %d of %d: no answer from rank 0 at %s within %d s%s%s", d->rank, d->world, where, d->timeout_s,
                               gai ? ": " : "", gai ? gai_strerror(gai) : "");
        usleep(100000);
    }
}

int dist_bootstrap_share(const Dist* d, const char* spec, void* blob, size_t bytes, Err* e) {
    if (d->world == 1) return 0;
    if (!strncmp(spec, "file:", 5) && spec[5]) return share_file(d, spec + 5, blob, bytes, e);
    if (!strncmp(spec, "tcp:", 4)) {
        const char* colon = strrchr(spec + 4, ':');
        if (colon && colon > spec + 4 && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) && atoi(colon + 1) > 0 &&
            atoi(colon + 1) < 65536) {
            char host[256];
            snprintf(host, sizeof host, "%.*s", (int)(colon - (spec + 4)), spec + 4);
            return share_tcp(d, host, colon + 1, blob, bytes, e);
        }
    }
    return err_set(e, "--dist-init '%s': expected file:DIR or tcp:HOST:PORT", spec);
}
