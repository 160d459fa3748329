// test_dtype.c: 16-bit float conversions against IEEE 754 facts (bit patterns from the standard).
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "kernels/dtype.h"

Test(dtype, f16_special_values) {
    cr_expect_eq(f16_to_f32(0x3c00), 1.0f);
    cr_expect_eq(f16_to_f32(0xc000), -2.0f);
    cr_expect_eq(f16_to_f32(0x7bff), 65504.0f);             // largest finite
    cr_expect_eq(f16_to_f32(0x0001), ldexpf(1.0f, -24));    // smallest subnormal
    cr_expect_eq(f16_to_f32(0x03ff), ldexpf(1023.0f, -24)); // largest subnormal
    cr_expect_eq(f16_to_f32(0x0400), ldexpf(1.0f, -14));    // smallest normal
    cr_expect(isinf(f16_to_f32(0x7c00)) && f16_to_f32(0x7c00) > 0);
    cr_expect(isnan(f16_to_f32(0x7e00)));
    cr_expect(signbit(f16_to_f32(0x8000)) && f16_to_f32(0x8000) == 0.0f);
    cr_expect_eq(f16_to_f32(0x3555), 0.333251953125f);
}

Test(dtype, bf16_exact_values_round_trip) {
    float exact[] = {1.0f, -2.0f, 0.5f, 3.0f, 1.0078125f, -65536.0f, 0.0f};
    for (unsigned i = 0; i < sizeof exact / sizeof exact[0]; i++) cr_expect_eq(bf16_to_f32(f32_to_bf16(exact[i])), exact[i]);
}

Test(dtype, bf16_rounds_to_nearest_even) {
    // bf16 has 8 significand bits: the spacing above 1.0 is 2^-7
    float ulp = ldexpf(1.0f, -7);
    cr_expect_eq(bf16_to_f32(f32_to_bf16(1.0f + ulp / 2)), 1.0f);             // tie -> even (1.0)
    cr_expect_eq(bf16_to_f32(f32_to_bf16(1.0f + 3 * ulp / 2)), 1.0f + 2 * ulp); // tie -> even (1+2ulp)
    cr_expect_eq(bf16_to_f32(f32_to_bf16(1.0f + ulp * 0.51f)), 1.0f + ulp);    // above the tie -> up
    cr_expect_eq(bf16_to_f32(f32_to_bf16(1.0f + ulp * 0.49f)), 1.0f);          // below the tie -> down
    cr_expect(isnan(bf16_to_f32(f32_to_bf16(NAN))));
    cr_expect(isinf(bf16_to_f32(f32_to_bf16(INFINITY))));
}

#if defined(__F16C__)
#include <immintrin.h>
static uint16_t f16_hardware(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
static float f32_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
#endif

// f32_to_f16 against the CPU's own conversion (F16C vcvtps2ph, round to nearest even): every half
// value, the fp32 values one ulp either side of it and of every midpoint between neighbours (where
// the rounding decides), and a million random bit patterns, NaNs and infinities included.
Test(dtype, f16_rounding_matches_the_hardware_conversion) {
#if defined(__F16C__)
    long checked = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float v = f16_to_f32((uint16_t)h);
        if (!isnan(v)) cr_assert_eq(f32_to_f16(v), (uint16_t)h, "half 0x%04x does not round-trip", h);
        uint32_t u;
        memcpy(&u, &v, 4);
        float next = f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)v + (double)next) / 2);  // exact in fp32 between finite neighbours
        uint32_t m;
        memcpy(&m, &mid, 4);
        uint32_t probes[] = {u - 1, u + 1, m - 1, m, m + 1};
        for (int k = 0; k < 5; k++) {
            float x = f32_bits(probes[k]);
            uint16_t got = f32_to_f16(x), want = f16_hardware(x);
            cr_assert_eq(got, want, "%a (0x%08x): 0x%04x, hardware 0x%04x", (double)x, probes[k], got, want);
            checked++;
        }
    }
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 1000000; i++, checked++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        float x = f32_bits((uint32_t)s);
        cr_assert_eq(f32_to_f16(x), f16_hardware(x), "0x%08x", (uint32_t)s);
    }
    cr_log_info("%ld conversions equal the hardware's", checked);
#else
    cr_skip_test("this build has no F16C instructions (-march=native on a CPU without them) to compare against");
#endif
}
