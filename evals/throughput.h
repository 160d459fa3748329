// throughput.h: tokens/s of prefill and decode for a model, as `arbor bench` reports them.
#pragma once
#include <stdint.h>

#include "../models/engine.h"
#include "../models/forward.h"

typedef struct {
    int batch;       // sequences decoded together
    int prompt_len;  // tokens per prompt
    int gen_len;     // decode steps after the prompt
    int repeats;     // timed repeats (each a prefill, then the decode) after one warm-up prefill; medians count
    uint64_t seed;   // prompt token ids
    int max_chunk_rows;  // GPU: prefill rows per call at most (0: BENCH_MAX_CHUNK_ROWS)
} BenchOptions;

typedef struct {
    double prefill_seconds;       // median prefill of batch x prompt_len tokens
    double prefill_tokens_per_s;  // median over the repeats, and the range:
    double prefill_tps_min, prefill_tps_max;
    double prefill_matmul_gflops; // achieved by the prefill's matmuls alone
    double prefill_matmul_share;  // fraction of prefill time spent in matmuls
    double decode_seconds;        // all gen_len steps
    double decode_tokens_per_s;   // batch * gen_len / decode_seconds, median over the repeats, and the range:
    double decode_tps_min, decode_tps_max;
    double decode_ms_per_step;
    int repeats;
    double cpu_per_wall;          // CPU seconds per wall second over the timed repeats (CPU backend)
    double wait_share;            // share of thread time spent waiting for a core (cpu_usage.h; CPU backend)
    uint64_t logits_hash;         // FNV-1a of the last step's logits: a cross-run canary
    double device_peak_gb;        // GPU memory in use (CUDA; 0 on the CPU)
} BenchResult;

int bench_throughput(const Model* m, const BenchOptions* opt, BenchResult* r, Err* e);
// The same on any backend: the CPU's above, or the GPU's (evals/throughput_cuda.h: bf16, decode as a
// CUDA graph; its matmul fields stay 0).
int bench_throughput_on(const Engine* en, const BenchOptions* opt, BenchResult* r, Err* e);
