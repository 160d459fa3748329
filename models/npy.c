// npy.c: see npy.h. Header: "\x93NUMPY" 1 0, u16 header length, a Python dict literal padded with
// spaces and a newline so that the data starts on a 64-byte boundary.
#include "npy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_io.h"

int npy_write_f32(const char* path, const float* data, int rows, int cols, Err* e) {
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    char header[256];
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    uint16_t hlen = (uint16_t)(n + pad + 1);
    header[8] = (char)(hlen & 0xff);
    header[9] = (char)(hlen >> 8);
    memcpy(header + 10, dict, (size_t)n);
    memset(header + 10 + n, ' ', (size_t)pad);
    header[10 + n + pad] = '\n';
    AtomicFile f;
    if (atomic_open(&f, path, e) || atomic_write(&f, header, (size_t)(10 + hlen), e) ||
        atomic_write(&f, data, sizeof(float) * (size_t)rows * cols, e))
        return -1;
    return atomic_commit(&f, e);
}

float* npy_read_f32(const char* path, int* rows, int* cols, Err* e) {
    size_t len;
    char* buf = file_read_all(path, &len, e);
    if (!buf) return NULL;
    if (len < 10 || memcmp(buf, "\x93NUMPY\x01\x00", 8) != 0) {
        free(buf);
        err_set(e, "%s: not a version 1.0 .npy file", path);
        return NULL;
    }
    size_t hlen = (uint8_t)buf[8] | (size_t)(uint8_t)buf[9] << 8;
    const char* shape = 10 + hlen <= len ? strstr(buf + 10, "'shape': (") : NULL;
    if (!shape || !strstr(buf + 10, "'descr': '<f4'") || strstr(buf + 10, "'fortran_order': True") ||
        sscanf(shape, "'shape': (%d, %d)", rows, cols) != 2 || *rows < 0 || *cols < 0 ||
        10 + hlen + sizeof(float) * (size_t)*rows * *cols != len) {
        free(buf);
        err_set(e, "%s: expected a 2-D little-endian float32 array in C order", path);
        return NULL;
    }
    float* out = xmalloc(sizeof(float) * (size_t)*rows * *cols);
    memcpy(out, buf + 10 + hlen, sizeof(float) * (size_t)*rows * *cols);
    free(buf);
    return out;
}
