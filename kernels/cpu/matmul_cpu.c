// matmul_cpu.c: the CPU backend's forward matrix products, out (N,OC) = inp (N,C) @ weight (OC,C)^T,
// with the weight in fp32 or 16-bit (bf16, fp16) and fp32 accumulation throughout.
//   many rows (prefill, N >= FEW_ROWS): cblas_sgemm; a 16-bit weight is widened WIDEN_ROWS rows at a
//     time into scratch first (the widening is read once per call, the product reads it N times);
//   few rows (decode, N < FEW_ROWS): matmul_few_rows reads each weight row once per call and serves
//     every input row from L1, widening 16-bit weights in registers: decode streams half the bytes.
//     (For one fp32 row it matched cblas_sgemv: 11.4-11.7 against 10.8-11.5 decode tokens/s.)
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "../dtype.h"
#include "../ops.h"
#include "ops_cpu.h"
#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

// Below this many rows OpenBLAS 0.3.21's sgemm runs far under memory bandwidth (measured on 2 cores,
// 3072x1024 weights: 22-54 GFLOP/s for 2-8 rows); see bench/few_rows.c for the kernels' rates per row
// count side by side.
#define FEW_ROWS 16
// One input row (decode) runs against ROW_STEP weight rows at a time, prefetching the next ROW_STEP
// rows: a 2 KB row (hidden 1024 in 16 bits) is too short a stream for the hardware prefetcher, and
// without it a 151936 x 1024 bf16 lm_head streamed at 17.5 GB/s against 25-27 with it (bench/few_rows).
#define ROW_STEP 8

typedef float f32x8 __attribute__((vector_size(32)));
typedef uint16_t u16x8 __attribute__((vector_size(16)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));

// 8 consecutive weights from w (of type t) at element i, as fp32 into *out (unaligned loads). Written
// through a pointer, not returned: a 256-bit vector returned by value changes the ABI on a build without
// AVX (-DARBOR_NATIVE=OFF: GCC's -Wpsabi), even inlined.
static inline __attribute__((always_inline)) void load_w8(f32x8* out, const void* w, size_t i, const WeightType t) {
    f32x8 v;
    if (t == WEIGHT_F32) {
        memcpy(&v, (const float*)w + i, sizeof v);
    } else if (t == WEIGHT_BF16) {  // bf16 is the top half of an fp32: zero-extend and shift
#if defined(__AVX2__)  // one vpmovzxwd to 256 bits (GCC 12 splits the generic form into two halves)
        __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)((const uint16_t*)w + i))), 16);
        memcpy(&v, &u, sizeof v);
#else
        u16x8 h;
        memcpy(&h, (const uint16_t*)w + i, sizeof h);
        u32x8 u = __builtin_convertvector(h, u32x8) << 16;
        memcpy(&v, &u, sizeof v);
#endif
    } else {
#if defined(__F16C__)
        __m256 f = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)((const uint16_t*)w + i)));
        memcpy(&v, &f, sizeof v);
#else
        for (int k = 0; k < 8; k++) v[k] = f16_to_f32(((const uint16_t*)w)[i + k]);
#endif
    }
    *out = v;
}

static inline float load_w1(const void* w, size_t i, WeightType t) {
    return t == WEIGHT_F32 ? ((const float*)w)[i] : f32_from_16(((const uint16_t*)w)[i], t);
}

// out[n][o + i] for the NN input rows x (NN, C) and the OO weight rows from w (OO, C) of type t: every
// weight vector loaded once serves NN rows, every input vector OO weight rows; NN x OO accumulators of
// 8 lanes (at most 8: 1 x 8 with 8 + 1 loads, or 4 x 2 with 2 + 4), then a fixed-order lane sum and
// the scalar tail of C. ahead > 0: the rows `ahead` rows further on are prefetched as these are read.
static inline __attribute__((always_inline)) void few_rows_tile(float* out, const float* x, const void* w, int C, int OC,
                                                                const int NN, const int OO, const WeightType t,
                                                                const int ahead) {
    const int esize = t == WEIGHT_F32 ? 4 : 2, line = 64 / esize;
    f32x8 acc[ROW_STEP][4];
    for (int i = 0; i < OO; i++)
        for (int n = 0; n < NN; n++) acc[i][n] = (f32x8){0};
    int c = 0;
    for (; c + 8 <= C; c += 8) {
        if (ahead && c % line == 0)
            for (int i = 0; i < OO; i++) __builtin_prefetch((const char*)w + ((size_t)(i + ahead) * C + c) * esize);
        f32x8 wv[ROW_STEP];
        for (int i = 0; i < OO; i++) load_w8(&wv[i], w, (size_t)i * C + c, t);
        for (int n = 0; n < NN; n++) {
            f32x8 xv;
            memcpy(&xv, x + (size_t)n * C + c, sizeof xv);
            for (int i = 0; i < OO; i++) acc[i][n] += wv[i] * xv;
        }
    }
    for (int i = 0; i < OO; i++)
        for (int n = 0; n < NN; n++) {
            f32x8 a = acc[i][n];
            float sum = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
            for (int k = c; k < C; k++) sum += load_w1(w, (size_t)i * C + k, t) * x[(size_t)n * C + k];
            out[(size_t)n * OC + i] = sum;
        }
}

// One weight type's few-rows product: one input row against ROW_STEP weight rows at a time, or blocks
// of up to 4 input rows against two weight rows.
static inline __attribute__((always_inline)) void few_rows_typed(float* out, const float* inp, const void* weight, int N,
                                                                 int C, int OC, const WeightType t) {
    size_t esize = t == WEIGHT_F32 ? sizeof(float) : sizeof(uint16_t);
    if (N == 1) {
#pragma omp parallel for schedule(static)
        for (int o = 0; o < OC; o += ROW_STEP) {
            const void* w = (const char*)weight + (size_t)o * C * esize;
            if (OC - o >= ROW_STEP)
                few_rows_tile(out + o, inp, w, C, OC, 1, ROW_STEP, t, ROW_STEP);
            else
                for (int i = o; i < OC; i++) few_rows_tile(out + i, inp, (const char*)weight + (size_t)i * C * esize, C, OC, 1, 1, t, 0);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; o += 2) {
        const void* w = (const char*)weight + (size_t)o * C * esize;
        int left = OC - o < 2 ? OC - o : 2;
        for (int n = 0; n < N; n += 4) {
            const float* x = inp + (size_t)n * C;
            float* y = out + (size_t)n * OC + o;
            switch ((N - n < 4 ? N - n : 4) * 2 + (left == 2)) {
            case 2: few_rows_tile(y, x, w, C, OC, 1, 1, t, 0); break;
            case 3: few_rows_tile(y, x, w, C, OC, 1, 2, t, 0); break;
            case 4: few_rows_tile(y, x, w, C, OC, 2, 1, t, 0); break;
            case 5: few_rows_tile(y, x, w, C, OC, 2, 2, t, 0); break;
            case 6: few_rows_tile(y, x, w, C, OC, 3, 1, t, 0); break;
            case 7: few_rows_tile(y, x, w, C, OC, 3, 2, t, 0); break;
            case 8: few_rows_tile(y, x, w, C, OC, 4, 1, t, 0); break;
            default: few_rows_tile(y, x, w, C, OC, 4, 2, t, 0); break;
            }
        }
    }
}

// out (N,OC) = inp (N,C) @ weight (OC,C)^T for N < FEW_ROWS, weight of type t
static void matmul_few_rows(float* out, const float* inp, const void* weight, WeightType t, int N, int C, int OC) {
    switch (t) {
    case WEIGHT_F32: few_rows_typed(out, inp, weight, N, C, OC, WEIGHT_F32); break;
    case WEIGHT_BF16: few_rows_typed(out, inp, weight, N, C, OC, WEIGHT_BF16); break;
    case WEIGHT_F16: few_rows_typed(out, inp, weight, N, C, OC, WEIGHT_F16); break;
    }
}

static void add_bias(float* out, const float* bias, int N, int OC) {
    if (!bias) return;
#pragma omp parallel for if (N * OC > 65536)
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] += bias[o];
}

void matmul_forward_cpu(float* out, const float* inp, const float* weight, const float* bias, int N, int C, int OC) {
    if (N < FEW_ROWS)
        matmul_few_rows(out, inp, weight, WEIGHT_F32, N, C, OC);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, out, OC);
    add_bias(out, bias, N, OC);
}

// dst (C) fp32 = src (C) of the 16-bit type t
static void widen_row(float* dst, const uint16_t* src, WeightType t, int C) {
    int c = 0;
    for (; c + 8 <= C; c += 8) {
        f32x8 v;
        load_w8(&v, src, (size_t)c, t);
        memcpy(dst + c, &v, sizeof v);
    }
    for (; c < C; c++) dst[c] = f32_from_16(src[c], t);
}

void matmul_forward_16_cpu(float* out, const float* inp, const uint16_t* weight, WeightType t, const float* bias, int N,
                           int C, int OC, float* scratch) {
    if (N < FEW_ROWS) {
        matmul_few_rows(out, inp, weight, t, N, C, OC);
    } else {
        for (int o = 0; o < OC; o += WIDEN_ROWS) {  // out[:, o:o+R] = inp @ widened(weight[o:o+R])^T
            int R = OC - o < WIDEN_ROWS ? OC - o : WIDEN_ROWS;
#pragma omp parallel for schedule(static)
            for (int r = 0; r < R; r++) widen_row(scratch + (size_t)r * C, weight + (size_t)(o + r) * C, t, C);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, R, C, 1.0f, inp, C, scratch, C, 0.0f, out + o, OC);
        }
    }
    add_bias(out, bias, N, OC);
}

void embedding_forward_16_cpu(float* out, const int* tokens, const uint16_t* wte, WeightType t, int N, int C) {
    for (int n = 0; n < N; n++) widen_row(out + (size_t)n * C, wte + (size_t)tokens[n] * C, t, C);
}
