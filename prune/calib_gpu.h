// calib_gpu.h: the calibration forward on the GPU for prune/importance.c: the training forward
// (activations kept, bf16) and the statistics reduced on the device, so only per-batch tables come
// back. The same tables the CPU path computes, so both feed one accumulation.
#pragma once
#include "../models/model.h"

typedef struct CalibGpu CalibGpu;

// B sequences of T tokens per batch. Fails with the reason without CUDA or a device.
int calib_gpu_open(CalibGpu** out, const Model* m, int B, int T, Err* e);
void calib_gpu_close(CalibGpu* g);
// tokens (B*T) host; the first nb sequences count. Outputs (host): cos (nb*T, L+1, L+1) with the
// entries p < q filled, mlp (nb, L, F), heads (nb, L, NH), channels (nb, C).
int calib_gpu_batch(CalibGpu* g, const int* tokens, int nb, double* cos, double* mlp, double* heads, double* channels,
                    Err* e);
