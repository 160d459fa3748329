// fuzz_npy.c: a .npy file (header dictionary, shape, dtype) into floats.
#include <stdlib.h>

#include "../models/npy.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    int rows, cols;
    Err e;
    free(npy_read_f32(fuzz_file("x.npy", data, n), &rows, &cols, &e));
    return 0;
}
