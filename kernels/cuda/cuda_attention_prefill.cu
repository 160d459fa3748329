// cuda_attention_prefill.cu: causal GQA attention for runs of rows that are consecutive positions of
// one sequence (prefill), on the tensor cores (WMMA bf16 16x16x16, fp32 accumulation), flash style:
// scores never leave shared memory, softmax is online over key tiles.
//
// A tile is up to 64 such rows; one block of 4 warps takes one (tile, query head), each warp 16
// rows. Per key tile of 64 positions (only those the tile's last row can see): S = Q K^T on the
// tensor cores into shared memory; each row's online softmax in fp32 by a pair of lanes (P in bf16,
// running max m and sum l, O rescaled by exp(m_old - m_new)); then O += P V on the tensor cores,
// O kept in shared memory in fp32. Keys below prefix_len come from sequence prefix_seq, as in
// cuda_attention_forward; the causal mask is by position.
#include <math.h>

#include "cuda_wmma.h"

#define FA_ROWS WMMA_TILE  // query rows per tile (4 warps x 16)
#define FA_KEYS WMMA_TILE  // keys per step
#define FA_WARPS 4

// shared-memory layout for head size HS (all offsets 32-byte aligned, as WMMA wants)
struct FaLayout {
    int ld_h;     // bf16 row stride of Q, K, V tiles: HS + 8
    int ld_s;     // fp32 row stride of S: FA_KEYS + 4
    int ld_p;     // bf16 row stride of P: FA_KEYS + 8
    int ld_o;     // fp32 row stride of O: HS + 4
    size_t q, k, v, s, p, o, ml, bytes;
};

__host__ __device__ static inline size_t align32(size_t x) { return (x + 31) / 32 * 32; }

__host__ __device__ static inline FaLayout fa_layout(int HS) {
    FaLayout f;
    f.ld_h = HS + 8;
    f.ld_s = FA_KEYS + 4;
    f.ld_p = FA_KEYS + 8;
    f.ld_o = HS + 4;
    size_t at = 0;
    f.q = at, at = align32(at + sizeof(__nv_bfloat16) * FA_ROWS * f.ld_h);
    f.k = at, at = align32(at + sizeof(__nv_bfloat16) * FA_KEYS * f.ld_h);
    f.v = at, at = align32(at + sizeof(__nv_bfloat16) * FA_KEYS * f.ld_h);
    f.s = at, at = align32(at + sizeof(float) * FA_ROWS * f.ld_s);
    f.p = at, at = align32(at + sizeof(__nv_bfloat16) * FA_ROWS * f.ld_p);
    f.o = at, at = align32(at + sizeof(float) * FA_ROWS * f.ld_o);
    f.ml = at, at = align32(at + sizeof(float) * FA_ROWS * 2);
    f.bytes = at;
    return f;
}

// rows [row0, row0 + nrows) of sequence seq at positions pos0.. (tiles (n_tiles, 4))
__global__ void __launch_bounds__(FA_WARPS * 32)
    attention_prefill_kernel(__nv_bfloat16* out, const __nv_bfloat16* q, int q_stride, const __nv_bfloat16* kcache,
                             const __nv_bfloat16* vcache, const int4* tiles, int NH, int NKV, int HS, int L,
                             int prefix_seq, int prefix_len, float scale, float* lse) {
    extern __shared__ __align__(128) unsigned char smem[];
    const FaLayout f = fa_layout(HS);
    __nv_bfloat16* Qs = (__nv_bfloat16*)(smem + f.q);
    __nv_bfloat16* Ks = (__nv_bfloat16*)(smem + f.k);
    __nv_bfloat16* Vs = (__nv_bfloat16*)(smem + f.v);
    float* Ss = (float*)(smem + f.s);
    __nv_bfloat16* Ps = (__nv_bfloat16*)(smem + f.p);
    float* Os = (float*)(smem + f.o);

    const int4 tile = tiles[blockIdx.x];
    const int row0 = tile.x, nrows = tile.y, seq = tile.z, pos0 = tile.w;
    const int h = blockIdx.y, g = h / (NH / NKV);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int vec = HS / 8;  // 16-byte vectors per head row

    // Q tile (rows past nrows are zeros), O = 0
    for (int i = threadIdx.x; i < FA_ROWS * vec; i += blockDim.x) {
        int r = i / vec, c = (i % vec) * 8;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (r < nrows) val = *(const uint4*)(q + (size_t)(row0 + r) * q_stride + (size_t)h * HS + c);
        *(uint4*)(Qs + r * f.ld_h + c) = val;
    }
    for (int i = threadIdx.x; i < FA_ROWS * HS; i += blockDim.x) Os[(i / HS) * f.ld_o + i % HS] = 0.0f;

    // the pair of lanes (2r, 2r+1) owns row r of this warp's 16; each lane half of the key columns
    const int my_row = warp * 16 + (lane >> 1), my_half = lane & 1;
    const int my_pos = pos0 + my_row;
    const bool row_valid = my_row < nrows;
    float m = -INFINITY, l = 0.0f;
    const int last_pos = pos0 + nrows - 1;

    for (int kp0 = 0; kp0 <= last_pos; kp0 += FA_KEYS) {
        __syncthreads();  // every warp is done with the previous K, V tiles (and Q/O init is visible)
        for (int i = threadIdx.x; i < FA_KEYS * vec; i += blockDim.x) {
            int r = i / vec, c = (i % vec) * 8, kp = kp0 + r;
            uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
            if (kp <= last_pos) {
                int s = kp < prefix_len ? prefix_seq : seq;
                size_t at = (((size_t)s * L + kp) * NKV + g) * HS + c;
                kv = *(const uint4*)(kcache + at);
                vv = *(const uint4*)(vcache + at);
            }
            *(uint4*)(Ks + r * f.ld_h + c) = kv;
            *(uint4*)(Vs + r * f.ld_h + c) = vv;
        }
        __syncthreads();

        // S (16 x 64 per warp) = Q_w K^T
        warp_abt(Ss, f.ld_s, Qs, Ks, f.ld_h, HS);
        __syncwarp();

        // online softmax of my row over my 32 columns, merged with my partner lane
        float* srow = Ss + my_row * f.ld_s + my_half * 32;
        float tile_max = -INFINITY;
        for (int c = 0; c < 32; c++) {
            int kp = kp0 + my_half * 32 + c;
            float sv = (row_valid && kp <= my_pos) ? srow[c] * scale : -INFINITY;
            srow[c] = sv;
            tile_max = fmaxf(tile_max, sv);
        }
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        float m_new = fmaxf(m, tile_max);
        float base = m_new == -INFINITY ? 0.0f : m_new;  // rows that see no key yet (padding rows)
        float corr = m == -INFINITY ? 0.0f : expf(m - base);
        float sum = 0.0f;
        __nv_bfloat16* prow = Ps + my_row * f.ld_p + my_half * 32;
        for (int c = 0; c < 32; c++) {
            float p = srow[c] == -INFINITY ? 0.0f : expf(srow[c] - base);
            sum += p;
            prow[c] = to_bf(p);
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * corr + sum;
        m = m_new;
        float* orow = Os + my_row * f.ld_o;
        for (int d = my_half; d < HS; d += 2) orow[d] *= corr;
        __syncwarp();

        // O_w (16 x HS) += P_w (16 x 64) V (64 x HS)
        warp_acc_ab(Os, f.ld_o, Ps, f.ld_p, Vs, f.ld_h, HS);
        __syncwarp();
    }

    // out = O / l for the tile's real rows; lse (training's backward) = log sum exp of the scaled scores
    if (row_valid) {
        const float* orow = Os + my_row * f.ld_o;
        __nv_bfloat16* dst = out + ((size_t)(row0 + my_row) * NH + h) * HS;
        float inv = 1.0f / l;
        for (int d = my_half; d < HS; d += 2) dst[d] = to_bf(orow[d] * inv);
        if (lse && my_half == 0) lse[(size_t)(row0 + my_row) * NH + h] = m + logf(l);
    }
}

extern "C" int cuda_attention_prefill_supported(int HS) { return HS % 16 == 0 && HS >= 16 && HS <= 256; }

extern "C" int cuda_attention_prefill_tiles(const int* seq, const int* pos, int N, int* tiles) {
    int n_tiles = 0;
    for (int n = 0; n < N;) {
        int len = 1;
        while (n + len < N && len < FA_ROWS && seq[n + len] == seq[n] && pos[n + len] == pos[n] + len) len++;
        int* t = tiles + 4 * n_tiles++;
        t[0] = n, t[1] = len, t[2] = seq[n], t[3] = pos[n];
        n += len;
    }
    return n_tiles;
}

extern "C" void cuda_attention_prefill(CudaContext* ctx, bf16* out, const bf16* q, int q_stride, const bf16* kcache,
                                       const bf16* vcache, const int* tiles, int n_tiles, int NH, int NKV, int HS, int L,
                                       int prefix_seq, int prefix_len, float* lse) {
    if (n_tiles == 0) return;
    if (!cuda_attention_prefill_supported(HS)) FATAL("head_dim %d: the tensor-core attention needs a multiple of 16 up to 256", HS);
    if (NH % NKV) FATAL("%d query heads are not a multiple of %d KV heads", NH, NKV);
    FaLayout f = fa_layout(HS);
    CUDA_CHECK(cudaFuncSetAttribute(attention_prefill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)f.bytes));
    dim3 grid(n_tiles, NH);
    attention_prefill_kernel<<<grid, FA_WARPS * 32, f.bytes, ctx->stream>>>(
        BF(out), CBF(q), q_stride, CBF(kcache), CBF(vcache), (const int4*)tiles, NH, NKV, HS, L, prefix_seq, prefix_len,
        1.0f / sqrtf((float)HS), lse);
    CUDA_CHECK_LAUNCH();
}
