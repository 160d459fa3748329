// dtype.h: scalar conversions between fp32 and the 16-bit float formats found in checkpoints.
// bf16 = the top 16 bits of an fp32; fp16 = IEEE binary16. Conversions to 16 bits round to nearest
// even and keep NaN a NaN, as torch's .to(torch.bfloat16) does.
#pragma once
#include <stdint.h>
#include <string.h>

// How a weight matrix is held in memory for the CPU kernels: fp32, or 16-bit and widened in registers.
typedef enum { WEIGHT_F32, WEIGHT_BF16, WEIGHT_F16 } WeightType;

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

// f rounded to the nearest bf16 value, as fp32 (what a bf16 tensor would hold)
static inline float bf16_round(float f) { return bf16_to_f32(f32_to_bf16(f)); }

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);  // inf or NaN
    } else if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// fp32 to IEEE binary16, round to nearest even: past the largest half (65504) by half an ulp or more
// gives inf, below the smallest subnormal's half 0, NaN stays a (quiet) NaN
static inline uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) {                     // below 2^-14: a subnormal half (or zero)
        if (a <= 0x33000000u) return (uint16_t)sign;  // at most 2^-25, half the smallest subnormal: ties to 0
        int shift = 126 - (int)(a >> 23);      // value / 2^-24 = mantissa >> shift
        uint32_t m = (a & 0x7fffffu) | 0x800000u, q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u;  // round at bit 13, exponent 127 -> 15
    return (uint16_t)(sign | (r >> 13));
}

// fp32 to the 16-bit type t (WEIGHT_BF16 or WEIGHT_F16)
static inline uint16_t f32_to_16(float f, WeightType t) { return t == WEIGHT_BF16 ? f32_to_bf16(f) : f32_to_f16(f); }
static inline float f32_from_16(uint16_t h, WeightType t) { return t == WEIGHT_BF16 ? bf16_to_f32(h) : f16_to_f32(h); }
