// bench_memory_plan.h: what a GPU throughput bench of (batch, context) needs in device memory, before
// it allocates anything: the KV cache, the run state (activations of the rows one prefill call holds,
// logits, attention partials) and a reserve, against the memory free after the model is loaded. The
// prefill runs in chunks of rows, so its activations are bounded whatever batch x prompt is; a cell
// that does not fit is skipped with the reason. Plain C (no CUDA): unit-tested on any machine, with the
// sizes cuda_model.c allocates (models/device_sizes.h).
#pragma once
#include <stddef.h>

#include "../models/device_sizes.h"

#define BENCH_MAX_CHUNK_ROWS 16384             // prefill rows per call at most (GEMMs are efficient long before)
#define BENCH_RESERVE_BYTES ((size_t)1 << 30)  // CUDA graphs, cuBLASLt's internals, allocation granularity

typedef struct {
    size_t free;         // what the plan was made against
    size_t kv_cache;     // (n_layers, B, P + G + 2, 2 x NKV x HS) bf16
    size_t run_state;    // runstate_device_bytes(chunk_rows, B)
    size_t reserve;      // BENCH_RESERVE_BYTES
    size_t need;         // kv_cache + run_state + reserve
    int chunk_rows;      // prefill rows per call: >= B (a decode step holds B rows), <= B x P
    int fits;            // 0: skip the cell; why says so
    char why[240];
} BenchMemoryPlan;

// The plan for B prompts of P tokens and G generated ones with free_bytes free on the device: the
// largest chunk up to max_chunk_rows (BENCH_MAX_CHUNK_ROWS when 0), whole prompts per call when a
// prompt fits, that leaves the reserve. Returns fits.
int bench_memory_plan(const ModelConfig* c, int B, int P, int G, size_t free_bytes, int max_chunk_rows,
                      BenchMemoryPlan* p);
