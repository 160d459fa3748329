// bench_cuda.h: `arbor bench --device cuda`: a model (checkpoint uploaded, or a preset with random
// weights drawn on the device) at each batch size of a list, against the ceilings measured in the
// same run. A table on stderr; key=value lines on stdout; optionally a CSV of the rows.
#pragma once
#include "../models/config.h"

typedef struct {
    const char* label;      // what the rows call the model (the directory or the preset)
    const char* model_dir;  // NULL: random weights of cfg
    ModelConfig cfg;
    const int* batches;
    int n_batches;
    int prompt_len, gen_len, repeats;
    unsigned long long seed;
    int ceilings;           // measure copy GB/s and GEMM TFLOP/s first
    int cublas_only;        // decode matmuls through cuBLASLt too, not arbor's GEMV (a comparison)
    const char* csv_path;   // NULL: none; rewritten (atomically) after every row
    int max_chunk_rows;     // prefill rows per call at most (0: BENCH_MAX_CHUNK_ROWS)
} CudaBenchRequest;

// Returns the exit code (0, or 1/2 after printing the error).
int bench_cuda_run(const CudaBenchRequest* q);
