// safetensors.h: read (mmap, validated) and write (streamed, atomic) the safetensors format:
//   [u64 little-endian N][N bytes of JSON header][data]
// header: {"name": {"dtype": "BF16", "shape": [a, b], "data_offsets": [begin, end]}, ...,
//          "__metadata__": {...}} with offsets relative to the start of the data.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "../kernels/check.h"
#include "../kernels/dtype.h"

typedef enum { ST_F32, ST_F16, ST_BF16, ST_UNSUPPORTED } StDtype;

#define ST_MAX_DIMS 8

typedef struct {
    char* name;
    StDtype dtype;
    char dtype_name[12];  // as written in the file, e.g. "I64"
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t begin, end;  // absolute byte offsets in the file
} StTensor;

typedef struct {
    char path[4096];
    const uint8_t* map;
    size_t size;
    StTensor* tensors;
    int n_tensors;
} StFile;

// Opens and validates: header length, JSON, dtypes, shapes against byte sizes, offsets in range and
// not overlapping. Returns 0, or -1 with e naming the file and the problem.
int st_open(StFile* f, const char* path, Err* e);
void st_close(StFile* f);
const StTensor* st_find(const StFile* f, const char* name);
int64_t st_numel(const StTensor* t);
// Converts the tensor's data to fp32 into dst (st_numel floats).
int st_read_f32(const StFile* f, const StTensor* t, float* dst, Err* e);
// Converts the tensor's data to the 16-bit type `to` into dst (st_numel values): bit for bit when
// stored so, otherwise rounded to nearest even from the exact fp32 value.
int st_read_16(const StFile* f, const StTensor* t, WeightType to, uint16_t* dst, Err* e);

// Streaming writer: the header is written first, then each tensor's fp32 values, asked for one
// tensor at a time through `fill`, converted to the tensor's dtype (F32 or BF16).
typedef struct {
    char name[128];
    StDtype dtype;
    int ndim;
    int64_t shape[4];
} StSpec;
typedef void (*StFillFn)(void* ctx, int index, float* dst);
int st_write(const char* path, const StSpec* specs, int n, StFillFn fill, void* ctx, Err* e);
size_t st_dtype_size(StDtype d);
int64_t st_spec_numel(const StSpec* s);
