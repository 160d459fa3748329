// roofline.h: the floor of one decode step and one prefill for a model shape on a device with a given
// memory bandwidth and matrix rate. A step cannot take less than max(bytes / bandwidth, FLOPs / rate).
// Decode at batch B over a context of L cached positions reads every weight once (the lm_head included;
// an untied embedding table is only gathered, B rows), reads B x L positions of K and V in every layer
// and writes B new ones; it computes 2 FLOPs per weight per row plus 4 x NH x HS per cached position per
// layer (QK^T and PV). Prefill of B prompts of L tokens reads the weights once, writes B x L positions
// of K and V, and computes 2 FLOPs per weight per token (the lm_head for the last token of each prompt,
// as generation does) plus the causal attention's 4 x NH x HS x L(L+1)/2 per prompt per layer.
// Activations are not counted (small next to the rest at these shapes). The model says which regime a
// claim lives in: by weights alone a 24-layer 8B reads more than Qwen3-4B, by KV cache (24 vs 36
// layers) less.
#pragma once
#include "../models/config.h"

typedef struct {
    const char* name;
    double bandwidth_gbs;  // HBM bandwidth, GB/s
    double tflops;         // dense bf16 matrix rate, TFLOP/s
} DeviceSpec;

// h100 (SXM: 3,350 GB/s, 989 TFLOP/s), h200 (4,800, 989), a100 (80 GB SXM: 2,039, 312); -1 if unknown
int device_spec(const char* name, DeviceSpec* d);
// the device's memory in GB (1e9 bytes; datasheet: h100 SXM 80, h200 141, a100 80), 0 if unknown
double device_memory_gb(const char* name);
// Bytes a (batch, context) cell holds: every weight at weight_bytes plus the KV cache of batch sequences of
// context positions at kv_bytes (activations and workspace excluded: a lower bound)
double roofline_memory_bytes(const ModelConfig* c, int batch, int context, double weight_bytes, double kv_bytes);

typedef struct {
    double weight_bytes, kv_read_bytes, kv_write_bytes, bytes;  // per step
    double matmul_flops, attention_flops, flops;
    double seconds;         // the floor: max(bytes / bandwidth, flops / rate)
    double tokens_per_s;    // tokens of the step (B for decode, B x L for prefill) / seconds
    int memory_bound;       // 1 when bytes set the floor
} RooflineStep;

// weight_bytes and kv_bytes: bytes per weight and per cached K/V value (2 for bf16, 1 for fp8)
void roofline_decode(const ModelConfig* c, int batch, int context, double weight_bytes, double kv_bytes, const DeviceSpec* d,
                     RooflineStep* out);
void roofline_prefill(const ModelConfig* c, int batch, int prompt_len, double weight_bytes, double kv_bytes,
                      const DeviceSpec* d, RooflineStep* out);
