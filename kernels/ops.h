// ops.h: the operations the Qwen3-family model is built from, as one table of function pointers.
// A backend (kernels/cpu, later kernels/cuda) fills the table; models/ calls only through it, so the
// forward pass exists once and the backends differ only here.
//
// Dimension legend: N rows (tokens of all sequences, packed), C channels (hidden), OC output
// channels, F ffn width, V vocab, NH query heads, NKV key/value heads, HS head size,
// S sequences in the KV cache, L cache capacity per sequence (positions).
// All tensors are row-major fp32 (on the CPU backend), except the weights of the *_16 ops: bf16 or
// fp16 (WeightType), widened to fp32 inside the kernel.
#pragma once
#include <stdint.h>

#include "dtype.h"

// Rows of one sequence at consecutive positions (prefill) are attended in blocks of up to this many
// rows with matrix products; the scratch buffer holds one block's scores per thread.
#define ATTENTION_BLOCK_ROWS 64
// A 16-bit weight multiplies many rows (prefill) after widening this many of its rows at a time.
#define WIDEN_ROWS 256

typedef struct KernelOps {
    const char* name;
    // out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias (OC) (bias may be NULL)
    void (*matmul_forward)(float* out, const float* inp, const float* weight, const float* bias, int N,
                           int C, int OC);
    // The same with weight (OC,C) held 16-bit (t: WEIGHT_BF16 or WEIGHT_F16), fp32 accumulation;
    // scratch: (WIDEN_ROWS, C) fp32
    void (*matmul_forward_16)(float* out, const float* inp, const uint16_t* weight, WeightType t, const float* bias,
                              int N, int C, int OC, float* scratch);
    // out (N,C) = weight (C) * inp (N,C) / sqrt(mean(inp^2) + eps), row by row; out may alias inp
    void (*rmsnorm_forward)(float* out, const float* inp, const float* weight, float eps, int N, int C);
    // x (N,H,HS) rotated in place, rotate-half pairs (j, j+HS/2) at angle pos[n] * inv_freq[j];
    // inv_freq (HS/2)
    void (*rope_forward)(float* x, const int* pos, const float* inv_freq, int N, int H, int HS);
    // out (N,C) = wte[tokens[n]] with wte (V,C)
    void (*embedding_forward)(float* out, const int* tokens, const float* wte, int N, int C);
    // The same with wte (V,C) held 16-bit, widened
    void (*embedding_forward_16)(float* out, const int* tokens, const uint16_t* wte, WeightType t, int N, int C);
    // gate (N,F) := silu(gate) * up (N,F)
    void (*swiglu_forward)(float* gate, const float* up, int N, int F);
    // x (N,C) += y (N,C)
    void (*residual_forward)(float* x, const float* y, int N, int C);
    // Causal GQA attention against a KV cache that already holds this call's keys and values.
    // out (N,NH,HS); q (N,NH,HS); kcache, vcache (S,L,NKV,HS) for one layer; row n belongs to
    // sequence seq[n] at position pos[n] and attends to that sequence's positions 0..pos[n].
    // Positions below prefix_len are read from sequence prefix_seq instead: a prefix shared by all
    // rows (few-shot prompts) is stored once. scratch: at least (threads, ATTENTION_BLOCK_ROWS * L).
    void (*attention_forward)(float* out, const float* q, const float* kcache, const float* vcache,
                              const int* seq, const int* pos, int N, int NH, int NKV, int HS, int L,
                              int prefix_seq, int prefix_len, float* scratch);

    // ---- backward: each accumulates (+=) into weight gradients and says what it does to inputs ----
    // dinp (N,C) = dout (N,OC) @ weight (OC,C) (overwritten); dweight (OC,C) += dout^T @ inp;
    // dbias (OC) += column sums of dout (when dbias is not NULL)
    void (*matmul_backward)(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                            const float* weight, int N, int C, int OC);
    // y = w * x * rstd(x): dinp (N,C) overwritten (may alias dout); dweight (C) +=
    void (*rmsnorm_backward)(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                             float eps, int N, int C);
    // dx (N,H,HS) rotated back in place (the transpose of rope_forward)
    void (*rope_backward)(float* dx, const int* pos, const float* inv_freq, int N, int H, int HS);
    // h = silu(gate) * up: dgate, dup (N,F) overwritten from dh (N,F) and the forward inputs
    void (*swiglu_backward)(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int N, int F);
    // Causal GQA attention over B sequences of T rows each, rows ordered (b, t), t = position:
    // q (B*T,NH,HS), k and v (B*T,NKV,HS); dq overwritten, dk and dv overwritten; the softmax is
    // recomputed from q and k, in blocks of query rows through matrix products. scratch: (threads,
    // ATTENTION_BLOCK_ROWS * T).
    void (*attention_backward)(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                               const float* v, int B, int T, int NH, int NKV, int HS, float* scratch);
    // dwte (V,C) += scatter of dout (N,C) by tokens, in row order (deterministic)
    void (*embedding_backward)(float* dwte, const float* dout, const int* tokens, int N, int C);
} KernelOps;

const KernelOps* kernels_cpu(void);
int kernels_cpu_threads(void);
