// fast_exp.h: expf that the compiler can vectorise (glibc's expf is a scalar call unless
// -ffast-math). Range reduction x = k ln2 + r with a two-part ln2, a degree-6 polynomial for e^r on
// |r| <= ln2/2 (relative error about 2e-7, a couple of ulp), and 2^k built in the exponent bits.
// Inputs are clamped to [-87.3, 88.3]: results below 1.2e-38 come out as that, never 0 or inf.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma omp declare simd
static inline float exp_fast(float x) {
    x = x > -87.3f ? x : -87.3f;  // fmaxf/fminf's values (NaN -> -87.3), as compares: fminf is a libm call
    x = x < 88.3f ? x : 88.3f;    // that stops vectorisation unless -ffinite-math-only
    // k = x log2(e) rounded to the nearest integer by adding 1.5 x 2^23 (whose ulp is 1) in one fma:
    // floorf does not vectorise under GCC's default -ftrapping-math, and left every loop calling this scalar
    float k = fmaf(x, 1.44269504088896341f, 12582912.0f) - 12582912.0f;
    float r = fmaf(k, -0.693145751953125f, x);
    r = fmaf(k, -1.428606765330187045e-06f, r);
    float p = 1.0f / 720.0f;
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    uint32_t bits = (uint32_t)((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

// x[i] = exp(x[i] - maxv) in place for i < n; returns their sum (the softmax's denominator)
static inline float exp_shifted_sum(float* x, int n, float maxv) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; i++) {
        x[i] = exp_fast(x[i] - maxv);
        sum += x[i];
    }
    return sum;
}
