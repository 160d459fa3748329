// throughput_cuda.h: prefill and decode throughput of a model on the GPU, with the work counted so
// it can be set against the machine's ceilings: prefill in model FLOPs (every matmul done plus
// causal attention), decode in bytes read per step (all weights plus the KV cache read).
// Decode is greedy and never leaves the device: one step (forward, argmax, position + 1) is captured
// once as a CUDA graph and replayed. Only built with ARBOR_HAVE_CUDA.
#pragma once
#include "../models/cuda_model.h"
#include "throughput.h"

typedef struct {
    double prefill_seconds;       // median of the repeats: batch x prompt_len tokens
    double prefill_tokens_per_s;
    double prefill_tflops;        // model FLOPs / prefill_seconds
    double decode_ms_per_step;    // median step of gen_len graph replays
    double decode_tokens_per_s;   // batch / step time
    double decode_gbs;            // bytes read per step / step time
    double decode_bytes_per_step; // weights + the KV cache the step reads (mean over the steps)
    double peak_gb;               // device memory in use with model, cache and activations allocated
    uint64_t logits_hash;         // FNV-1a of the last step's logits (a cross-run canary)
    int chunk_rows;               // prefill rows per call (bench_memory_plan)
    int skipped;                  // 1: the cell does not fit the device (nothing measured); note says why
    char note[240];
} CudaBenchResult;

// FLOPs of a prefill of B prompts of P tokens with logits for each prompt's last token
double prefill_model_flops(const ModelConfig* c, int B, int P);

// Queues the prefill of B prompts of P tokens (tok (B*P), sequence-major, each prompt its own sequence
// of the cache) in calls of at most s->max_rows rows, each prompt's earlier positions read back from
// the cache; with first_rows > 0 only the first first_rows rows (a warm-up). last_logits (B, V) host,
// or NULL: each prompt's last-token logits (downloads after each call, so not for timing).
int cuda_prefill_chunks(const CudaModel* g, CudaRunState* s, const CudaKVCache* cache, const int* tok, int B, int P,
                        size_t first_rows, float* last_logits, Err* e);
// Plans the cell's memory against what is free now (bench_memory_plan): a cell that does not fit is
// skipped (r->skipped, r->note) with nothing allocated, and returns 0.
int bench_throughput_cuda(const CudaModel* g, const BenchOptions* o, CudaBenchResult* r, Err* e);
