// cuda_ops.h: the CUDA backend's forward ops, callable from C (the extern "C" seam).
//
// The same operations as kernels/ops.h, in the GPU's number formats: parameters and activations
// bf16, with fp32 where precision needs it (the residual stream, norm statistics, RoPE angles,
// softmax, logits). Some neighbours are fused where the CPU keeps them apart, and each fusion says
// which CPU ops it equals (the parity test composes those):
//   residual_rmsnorm = residual_forward then rmsnorm_forward;
//   qkv_prepare      = per-head rmsnorm (q_norm, k_norm) then rope_forward, plus the KV-cache store;
//   q, k and v come out of one GEMM against the stacked (q_proj; k_proj; v_proj) weight, gate and
//   up out of one against (gate_proj; up_proj).
//
// Every pointer below is device memory unless it says host; every call is queued on the context's
// stream (nothing synchronises unless its comment says so). A failed CUDA call is fatal with
// file:line (kernels/check.h's runtime-failure convention). All state lives in a CudaContext: no
// globals, so two contexts (two devices) can coexist.
//
// Dimension legend as in ops.h: N rows, C channels, OC output channels, F ffn width, NH query
// heads, NKV key/value heads, HS head size, L cache positions per sequence, QKV = (NH + 2 NKV) HS.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t bf16;  // bf16 bits; __nv_bfloat16 on the device side
typedef struct CudaContext CudaContext;

// ---- context, memory, transfers ----------------------------------------------------------------
// Number of usable devices; 0 with the runtime's reason in why (may be NULL) when there is none.
int cuda_device_count(char* why, int why_len);
// Stream, cuBLASLt handle and workspace on `device`; fatal when the device cannot be used.
CudaContext* cuda_context_create(int device);
void cuda_context_free(CudaContext* ctx);
const char* cuda_device_name(const CudaContext* ctx);
// The context's stream (a cudaStream_t), for code that orders other streams against it (NCCL's).
void* cuda_context_stream(CudaContext* ctx);
// on (default 1): matmuls of 1..8 rows (decode) use arbor's GEMV kernel, else always cuBLASLt (a
// benchmark compares the two)
void cuda_set_gemv(CudaContext* ctx, int on);
void cuda_synchronize(CudaContext* ctx);
void* cuda_malloc(size_t bytes);  // fatal with the size and free memory when it fails
void cuda_free(void* p);
// Bytes in use on the device now (total - free), for peak-memory reports.
size_t cuda_memory_used(void);
// Bytes free on the device now (cudaMemGetInfo), for memory plans.
size_t cuda_memory_free(void);
// Host <-> device copies on the context's stream; these two wait for the copy to finish.
void cuda_upload(CudaContext* ctx, void* dst, const void* host_src, size_t bytes);
void cuda_download(CudaContext* ctx, void* host_dst, const void* src, size_t bytes);
void cuda_upload_async(CudaContext* ctx, void* dst, const void* host_src, size_t bytes);
// dst (n) bf16 = host_src (n) fp32 rounded to nearest even (converted on the host in chunks)
void cuda_upload_f32_as_bf16(CudaContext* ctx, bf16* dst, const float* host_src, size_t n);
// host_dst (n) fp32 = src (n) bf16
void cuda_download_bf16_as_f32(CudaContext* ctx, float* host_dst, const bf16* src, size_t n);
// dst = src (bytes), device to device, on the stream
void cuda_copy(CudaContext* ctx, void* dst, const void* src, size_t bytes);
// bytes of p = byte (poison before a test, zero a buffer)
void cuda_memset(CudaContext* ctx, void* p, int byte, size_t bytes);
// dst (n) = value
void cuda_fill_bf16(CudaContext* ctx, bf16* dst, size_t n, float value);
// dst (n) = N(0, std) by the counter-based Box-Muller of param_init_values (models/model.c): pair k
// of stream `key` gives elements 2k and 2k+1, so the values equal the CPU init up to bf16 rounding.
void cuda_init_normal_bf16(CudaContext* ctx, bf16* dst, size_t n, uint64_t key, float std);

// ---- forward ops -------------------------------------------------------------------------------
// out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias (OC) (bias may be NULL), fp32 accumulation; out is
// bf16, or fp32 when out_f32 (logits). Through cuBLASLt, whose plan (descriptors, layouts,
// algorithm) is made once per shape and kept in the context; 1..8 rows with C % 8 == 0 take a GEMV
// kernel instead (decode), unless cuda_set_gemv turned it off.
void cuda_matmul_forward(CudaContext* ctx, void* out, int out_f32, const bf16* inp, const bf16* weight,
                         const bf16* bias, int N, int C, int OC);
// out (N,C) fp32 = wte[tokens[n]] with wte (V,C) bf16; tokens (N)
void cuda_embedding_forward(CudaContext* ctx, float* out, const int* tokens, const bf16* wte, int N, int C);
// out (N,C) bf16 = weight (C) * inp (N,C) fp32 / sqrt(mean(inp^2) + eps)
void cuda_rmsnorm_forward(CudaContext* ctx, bf16* out, const float* inp, const bf16* weight, float eps, int N,
                          int C);
// x (N,C) fp32 += y (N,C) bf16
void cuda_residual_forward(CudaContext* ctx, float* x, const bf16* y, int N, int C);
// x (N,C) fp32 += y (N,C) bf16; then out (N,C) bf16 = rmsnorm(x) * weight (C)
void cuda_residual_rmsnorm_forward(CudaContext* ctx, float* x, const bf16* y, bf16* out, const bf16* weight,
                                   float eps, int N, int C);
// qkv (N,QKV) holds each row's q (NH,HS), k (NKV,HS), v (NKV,HS). q and k get the per-head RMSNorm
// (q_norm, k_norm (HS); both NULL = none) then RoPE at pos[n] (inv_freq (HS/2) fp32); q goes to
// q_out + n * q_stride (q_out = qkv, q_stride = QKV: in place; training keeps the raw q), k and v
// to the caches kcache, vcache (S,L,NKV,HS) of one layer at (seq[n], pos[n]).
void cuda_qkv_prepare(CudaContext* ctx, const bf16* qkv, bf16* q_out, int q_stride, bf16* kcache, bf16* vcache,
                      const bf16* q_norm, const bf16* k_norm, const int* seq, const int* pos, const float* inv_freq,
                      float eps, int N, int NH, int NKV, int HS, int L);
// Causal GQA attention against the cache, as ops.h's attention_forward: out (N,NH,HS) bf16; q row n
// at q + n * q_stride (NH,HS); row n attends to positions 0..pos[n] of sequence seq[n], positions
// below prefix_len read from sequence prefix_seq. HS <= 256.
void cuda_attention_forward(CudaContext* ctx, bf16* out, const bf16* q, int q_stride, const bf16* kcache,
                            const bf16* vcache, const int* seq, const int* pos, int N, int NH, int NKV, int HS,
                            int L, int prefix_seq, int prefix_len);
// The same with each row's keys split into `splits` runs handled by separate blocks and merged by a
// second kernel (flash-decoding: a batch-1 decode over a long context fills the GPU). partial:
// (N, NH, splits, HS + 2) floats of workspace. splits <= 1 is cuda_attention_forward.
void cuda_attention_forward_split(CudaContext* ctx, bf16* out, const bf16* q, int q_stride, const bf16* kcache,
                                  const bf16* vcache, const int* seq, const int* pos, int N, int NH, int NKV, int HS,
                                  int L, int prefix_seq, int prefix_len, int splits, float* partial);
// The same attention on the tensor cores for rows grouped in tiles: tiles (n_tiles, 4) of
// (first row, rows <= 64, sequence, position of the first row), each a run of consecutive positions
// of one sequence (prefill). Needs HS a multiple of 16 up to 256 (cuda_attention_prefill_supported).
int cuda_attention_prefill_supported(int HS);
// Host: splits N rows into such tiles (maximal runs, cut at 64 rows); returns how many. tiles: (N, 4).
int cuda_attention_prefill_tiles(const int* seq, const int* pos, int N, int* tiles);
// lse (N, NH) fp32, or NULL: each row's log-sum-exp of its scaled scores (the training backward's)
void cuda_attention_prefill(CudaContext* ctx, bf16* out, const bf16* q, int q_stride, const bf16* kcache,
                            const bf16* vcache, const int* tiles, int n_tiles, int NH, int NKV, int HS, int L,
                            int prefix_seq, int prefix_len, float* lse);
// h (N,F) = silu(gate) * up, with gateup (N,2F) holding each row's gate (F) then up (F)
void cuda_swiglu_forward(CudaContext* ctx, bf16* h, const bf16* gateup, int N, int F);
// out (n,C) = inp[rows[i]] from inp (N,C); rows (n)
void cuda_gather_rows(CudaContext* ctx, bf16* out, const bf16* inp, const int* rows, int n, int C);

// Greedy decode on the device: tokens[b] = argmax of logits row b (V) (lowest index on ties, as the
// CPU's argmax), pos[b] += 1, for b < B. With the forward, one decode step that never leaves the GPU.
void cuda_decode_advance(CudaContext* ctx, int* tokens, int* pos, const float* logits, int B, int V);

// ---- graphs and timing -------------------------------------------------------------------------
typedef struct CudaGraph CudaGraph;
// Everything queued between begin and end is recorded, not run; launch replays it.
void cuda_graph_begin(CudaContext* ctx);
CudaGraph* cuda_graph_end(CudaContext* ctx);
void cuda_graph_launch(CudaContext* ctx, CudaGraph* g);
void cuda_graph_free(CudaGraph* g);
// Device events on the context's stream: mark, then the milliseconds between two marks.
typedef struct CudaTimer CudaTimer;
CudaTimer* cuda_timer_create(void);
void cuda_timer_free(CudaTimer* t);
void cuda_timer_start(CudaContext* ctx, CudaTimer* t);
double cuda_timer_stop_ms(CudaContext* ctx, CudaTimer* t);  // waits for the stream

// ---- ceilings (arbor bench --ceilings) ---------------------------------------------------------
// Device-to-device copy of `bytes`: GB/s counting bytes read plus bytes written (median of reps).
double cuda_copy_gbs(CudaContext* ctx, size_t bytes, int reps);
// bf16 GEMM (M,K) x (K,N) on random data through cuda_matmul_forward: TFLOP/s (median of reps).
double cuda_gemm_tflops(CudaContext* ctx, int M, int N, int K, int reps);

#ifdef __cplusplus
}
#endif
