// ops_cpu.h: the CPU backend's matrix products (matmul_cpu.c) and backward ops (ops_cpu_backward.c),
// put into the op table by ops_cpu.c.
#pragma once
#include <stdint.h>

#include "../dtype.h"

void matmul_forward_cpu(float* out, const float* inp, const float* weight, const float* bias, int N, int C, int OC);
void matmul_forward_16_cpu(float* out, const float* inp, const uint16_t* weight, WeightType t, const float* bias, int N,
                           int C, int OC, float* scratch);
void embedding_forward_16_cpu(float* out, const int* tokens, const uint16_t* wte, WeightType t, int N, int C);

void matmul_backward_cpu(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                         const float* weight, int N, int C, int OC);
void rmsnorm_backward_cpu(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                          float eps, int N, int C);
// Rotates x (N,H,HS) by +angle (direction 1, the forward) or -angle (direction -1, the backward).
void rope_rotate_cpu(float* x, const int* pos, const float* inv_freq, int N, int H, int HS, float direction);
void rope_backward_cpu(float* dx, const int* pos, const float* inv_freq, int N, int H, int HS);
void swiglu_backward_cpu(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int N, int F);
void attention_backward_cpu(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                            const float* v, int B, int T, int NH, int NKV, int HS, float* scratch);
void embedding_backward_cpu(float* dwte, const float* dout, const int* tokens, int N, int C);
