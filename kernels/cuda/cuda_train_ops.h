// cuda_train_ops.h: the CUDA backend's training ops, callable from C: the backward of every forward
// op, the fused loss over the vocabulary, AdamW and the gradient norm (issue 8). Same conventions as
// cuda_ops.h (device pointers, the context's stream, fatal on CUDA errors). Gradients of
// activations are fp32; a gradient that feeds a GEMM is packed to bf16 first (cuda_pack_bf16).
// Weight gradients, master weights and moments are fp32. Every reduction runs in a fixed order: no
// atomics, so a step is bit-identical run to run.
#pragma once
#include "cuda_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

// dinp (N,C) fp32 = dout (N,OC) @ weight (OC,C), overwritten (skipped when NULL);
// dweight (OC,C) fp32 += dout^T @ inp (N,C); dbias (OC) fp32 += column sums of dout (when not NULL)
void cuda_matmul_backward(CudaContext* ctx, float* dinp, float* dweight, float* dbias, const bf16* dout,
                          const bf16* inp, const bf16* weight, int N, int C, int OC);
// y = weight * x * rstd(x): dinp (N,C) overwritten (may alias dout); dweight (C) +=; inp is fp32,
// or bf16 when inp_bf16 (the per-head q/k norms). Input row r is at inp + (r / group) * group_stride
// + (r % group) * C elements: group 1, group_stride C for a plain (N,C) tensor; group NH,
// group_stride QKV for the raw q heads inside a (rows, QKV) q/k/v tensor.
void cuda_rmsnorm_backward(CudaContext* ctx, float* dinp, float* dweight, const float* dout, const void* inp,
                           int inp_bf16, int group, size_t group_stride, const bf16* weight, float eps, int N, int C);
// h = silu(gate) * up with gateup (N,2F) (gate then up per row): dgate, dup (N,F) overwritten from dh (N,F)
void cuda_swiglu_backward(CudaContext* ctx, float* dgate, float* dup, const float* dh, const bf16* gateup, int N,
                          int F);
// dx (N,H,HS) rotated back in place (the transpose of RoPE at pos[n]); inv_freq (HS/2)
void cuda_rope_backward(CudaContext* ctx, float* dx, const int* pos, const float* inv_freq, int N, int H, int HS);
// dwte (V,C) += dout (N,C) scattered by host_tokens (N, host memory), rows added in row order per
// token (the CPU's order: bit-identical to embedding_backward_cpu)
void cuda_embedding_backward(CudaContext* ctx, float* dwte, const float* dout, const int* host_tokens, int N, int C);
// Causal GQA attention of B sequences of T rows, rows (b, t): q (B*T,NH,HS), k, v (B*T,NKV,HS) bf16
// as the forward saw them, dout (B*T,NH,HS) fp32. dq, dk, dv overwritten; the softmax is recomputed.
void cuda_attention_backward(CudaContext* ctx, float* dq, float* dk, float* dv, const float* dout, const bf16* q,
                             const bf16* k, const bf16* v, int B, int T, int NH, int NKV, int HS);
// The same backward on the tensor cores (cuda_attention_backward_tc.cu) from the forward's outputs:
// out (B*T,NH,HS) bf16 the attention output and lse (B*T,NH) its log-sum-exp (cuda_attention_prefill
// writes both), so nothing is recomputed on CUDA cores. HS a multiple of 16 up to 128.
int cuda_attention_backward_tc_supported(int HS);
void cuda_attention_backward_flash(CudaContext* ctx, float* dq, float* dk, float* dv, const float* dout, const bf16* out,
                                   const float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T, int NH,
                                   int NKV, int HS);
// dst (n) fp32 = src (n) bf16
void cuda_bf16_to_f32(CudaContext* ctx, float* dst, const bf16* src, size_t n);
// dst (n) fp32 += src (n) fp32
void cuda_add_f32(CudaContext* ctx, float* dst, const float* src, size_t n);
// dst (rows, cols) bf16 with row stride ld_dst = src (rows, cols) fp32 with row stride ld_src
void cuda_pack_bf16(CudaContext* ctx, bf16* dst, int ld_dst, const float* src, int ld_src, int rows, int cols);

// ---- the loss (distill/loss.h's lm_head_loss, one chunk of rows) ------------------------------
typedef struct {
    float ce_weight, kd_weight;
    int kd;           // 0 none, 1 forward KL(teacher || student), 2 reverse KL, 3 top-k KL
    float temperature;
    int t2_scaling;
    int topk;         // kd 3: the teacher's top-k tokens (1..4096), both distributions renormalised over them
} CudaLossConfig;

// Per row r: z (R,V) student logits in, dz * scale out (in place); zt (R,V) teacher logits or NULL;
// targets (R) device or NULL (without CE). row_ce, row_kd (R) device: the row's CE and T^2-scaled KD.
void cuda_loss_rows(CudaContext* ctx, float* z, const float* zt, const int* targets, int R, int V,
                    const CudaLossConfig* cfg, float scale, double* row_ce, double* row_kd);

// Intermediate hidden-state loss of one student layer (distill/hidden_loss.c's formulas): s, t (N,C)
// fp32 student and teacher layer outputs. kind 1: cosine, 1 - s.t / (|s| |t|) per row; kind 2: MSE
// over rows and channels. d (N,C) = scale * d(mean loss)/ds, overwritten; row (N) device: each row's
// loss (cosine) or its mean squared difference (MSE); the loss is their mean.
void cuda_hidden_loss(CudaContext* ctx, int kind, const float* s, const float* t, int N, int C, float scale, float* d,
                      double* row);

// ---- optimizer ---------------------------------------------------------------------------------
// AdamW on one tensor (n), PyTorch semantics as distill/optim.c: g = grad * grad_scale (clipping);
// m, v updated; master *= decay; master -= step_size * m / (sqrt(v) / bc2_sqrt + eps); then
// param (bf16) = master rounded to nearest even, or stochastically when seed != 0.
void cuda_adamw(CudaContext* ctx, float* master, bf16* param, const float* grad, float* m, float* v, size_t n,
                float beta1, float beta2, float eps, float decay, float step_size, float bc2_sqrt, float grad_scale,
                uint64_t seed);
// sum of g[i]^2 over n, in a fixed order (the same result every run); waits for the stream
double cuda_sum_squares(CudaContext* ctx, const float* g, size_t n);

#ifdef __cplusplus
}
#endif
