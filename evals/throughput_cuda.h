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
} CudaBenchResult;

// FLOPs of a prefill of B prompts of P tokens with logits for each prompt's last token
double prefill_model_flops(const ModelConfig* c, int B, int P);

int bench_throughput_cuda(const CudaModel* g, const BenchOptions* o, CudaBenchResult* r, Err* e);
