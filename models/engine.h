// engine.h: a model's forward pass on a backend chosen at run time — the CPU (model_forward, fp32)
// or the GPU (cuda_model_forward, bf16) — so evaluations run on either without knowing which.
//
// An Engine holds the model as the backend needs it (on the GPU: its parameters uploaded once); an
// EngineRun holds one job's KV cache and activations. Both keep model_forward's contract: N packed
// rows of (token, seq, pos), logits for the rows listed in out_rows.
#pragma once
#include "forward.h"

typedef enum { DEVICE_CPU, DEVICE_CUDA } Device;

// "cpu" or "cuda"
int device_parse(const char* name, Device* d, Err* e);
const char* device_name(Device d);
// The weights a forward on d computes with: the CPU's as the model holds them (t), the GPU's bf16 copy
const char* device_weights_name(Device d, WeightType t);
// 0 when d can run here; -1 with the reason (no CUDA in this build, no device) otherwise. Commands
// ask before loading anything.
int device_available(Device d, Err* e);

typedef struct {
    const Model* m;
    Device device;
    void* gpu;  // CudaModel* on DEVICE_CUDA
} Engine;

// On DEVICE_CUDA: fails (-1, e set) when arbor was built without CUDA or no device is present.
int engine_open(Engine* en, const Model* m, Device d, Err* e);
void engine_close(Engine* en);
// The GPU's name (DEVICE_CUDA), or NULL on the CPU.
const char* engine_device_name(const Engine* en);

typedef struct {
    const Engine* en;
    int max_len;
    KVCache cache;   // DEVICE_CPU
    RunState rs;     // DEVICE_CPU
    void* gpu;       // DEVICE_CUDA: cache and run state
} EngineRun;

// A cache of max_seqs sequences x max_len positions; up to max_rows rows per call, logits for up to
// max_out of them.
void engine_run_create(EngineRun* r, const Engine* en, int max_seqs, int max_len, int max_rows, int max_out);
void engine_run_free(EngineRun* r);
// Positions below prefix_len are read from sequence prefix_seq (KVCache's shared prefix); 0 = off.
void engine_run_set_prefix(EngineRun* r, int prefix_seq, int prefix_len);
// As model_forward: logits (n_out, V) host.
int engine_run_forward(EngineRun* r, const int* tokens, const int* seq, const int* pos, int N, const int* out_rows,
                       int n_out, float* logits, Err* e);
