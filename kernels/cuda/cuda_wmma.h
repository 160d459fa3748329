// cuda_wmma.h: the two warp-level tile products the flash-style attention kernels are made of
// (forward prefill and backward), on the tensor cores through WMMA bf16 16x16x16 with fp32
// accumulation. A block has 4 warps; warp w owns rows 16w..16w+15 of a 64-row tile. Shared-memory
// pointers must be 32-byte aligned and leading dimensions multiples of 8 (bf16) or 4 (fp32).
#pragma once
#include <mma.h>

#include "cuda_internal.h"

#define WMMA_TILE 64  // rows and columns of the score tiles

typedef nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> WmmaAcc;
typedef nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> WmmaARow;
typedef nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> WmmaBRow;
typedef nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::col_major> WmmaBCol;

// out (the warp's 16 rows x 64, fp32, ld lds) = A (its 16 rows x HS, bf16, ld) B^T, B (64 x HS, ld) row-major
static __device__ __forceinline__ void warp_abt(float* out, int lds, const __nv_bfloat16* A, const __nv_bfloat16* B,
                                                int ld, int HS) {
    using namespace nvcuda;
    int warp = threadIdx.x >> 5;
    for (int j = 0; j < WMMA_TILE / 16; j++) {
        WmmaAcc acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int kk = 0; kk < HS / 16; kk++) {
            WmmaARow a;
            WmmaBCol b;
            wmma::load_matrix_sync(a, A + warp * 16 * ld + kk * 16, ld);
            wmma::load_matrix_sync(b, B + j * 16 * ld + kk * 16, ld);
            wmma::mma_sync(acc, a, b, acc);
        }
        wmma::store_matrix_sync(out + warp * 16 * lds + j * 16, acc, lds, wmma::mem_row_major);
    }
}

// acc (the warp's 16 rows x HS, fp32 in shared memory, ld ldo) += A (its 16 rows x 64, bf16, ld ldp)
// times B (64 x HS, bf16, ld) row-major
static __device__ __forceinline__ void warp_acc_ab(float* acc_s, int ldo, const __nv_bfloat16* A, int ldp,
                                                   const __nv_bfloat16* B, int ld, int HS) {
    using namespace nvcuda;
    int warp = threadIdx.x >> 5;
    for (int j = 0; j < HS / 16; j++) {
        WmmaAcc acc;
        wmma::load_matrix_sync(acc, acc_s + warp * 16 * ldo + j * 16, ldo, wmma::mem_row_major);
        for (int kk = 0; kk < WMMA_TILE / 16; kk++) {
            WmmaARow a;
            WmmaBRow b;
            wmma::load_matrix_sync(a, A + warp * 16 * ldp + kk * 16, ldp);
            wmma::load_matrix_sync(b, B + kk * 16 * ld + j * 16, ld);
            wmma::mma_sync(acc, a, b, acc);
        }
        wmma::store_matrix_sync(acc_s + warp * 16 * ldo + j * 16, acc, ldo, wmma::mem_row_major);
    }
}
