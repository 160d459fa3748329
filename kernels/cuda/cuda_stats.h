// cuda_stats.h: pruning's calibration statistics reduced on the device (see cuda_stats.cu), over the
// activations cuda_train_forward keeps. B*T = N rows, sequences of T rows; nb of them counted.
#pragma once
#include "cuda_ops.h"

// out (rows, P, P) double: entry (r, p, q), p < q, is the cosine between rows r of residual
// boundaries p and q; res (P, N, C) fp32. Entries with p >= q are not written.
void cuda_boundary_cosines(CudaContext* ctx, double* out, const float* res, int P, int N, int rows, int C);
// out (nb, L, W) double = mean over each sequence's T rows of |x|; x (L, N, W) bf16
void cuda_mean_abs(CudaContext* ctx, double* out, const bf16* x, int L, int N, int T, int nb, int W);
// out (nb, L, NH) double = mean over each sequence's rows of each head's output norm; att (L, N, NH*HS)
void cuda_mean_head_norms(CudaContext* ctx, double* out, const bf16* att, int L, int N, int T, int nb, int NH, int HS);
// out (nb, C) double = sum over the norm sites (xn1, xn2 (L, N, C) per layer; xnf (N, C)) of the
// mean |x| of each channel over each sequence's rows
void cuda_channel_site_means(CudaContext* ctx, double* out, const bf16* xn1, const bf16* xn2, const bf16* xnf, int L,
                             int N, int T, int nb, int C);
