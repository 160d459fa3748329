// npy.h: NumPy .npy files (format 1.0, little-endian float32, C order), written atomically.
#pragma once
#include "../kernels/check.h"

// data (rows, cols) -> path
int npy_write_f32(const char* path, const float* data, int rows, int cols, Err* e);
// Reads a 2-D float32 .npy; returns malloc'd data (caller frees) or NULL with e set.
float* npy_read_f32(const char* path, int* rows, int* cols, Err* e);
