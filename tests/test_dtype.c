// test_dtype.c: 16-bit float conversions against IEEE 754 facts (bit patterns from the standard).
#include <criterion/criterion.h>
#include <math.h>

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
