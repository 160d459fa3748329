// fuzz_common.c: see fuzz_common.h.
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char* fuzz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char* base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/arbor-fuzz-%ld", base, (long)getpid());
        mkdir(dir, 0755);
    }
    return dir;
}

const char* fuzz_file(const char* name, const uint8_t* data, size_t n) {
    static char path[4][512];
    static int k = 0;
    char* p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", fuzz_dir(), name);
    FILE* f = fopen(p, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
    return p;
}
