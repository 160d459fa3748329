// test_cuda.c: the CUDA build path: a kernel compiled by nvcc, linked into arbor, run against the
// same loop on the CPU. Skips with the reason when arbor was built without CUDA or no device exists.
#include <criterion/criterion.h>

#ifdef ARBOR_HAVE_CUDA
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_probe.h"
#endif

Test(cuda, axpy_matches_cpu) {
#ifndef ARBOR_HAVE_CUDA
    cr_skip_test("arbor was built without CUDA (ARBOR_CUDA=OFF or no nvcc)");
#else
    char why[256] = "";
    int n = cuda_device_count(why, sizeof why);
    if (n == 0) cr_skip_test("no CUDA device: %s", why);
    float diff = -1;
    cr_assert_eq(arbor_cuda_axpy_parity(1 << 20, &diff, why, sizeof why), 0, "%s", why);
    cr_expect_leq(diff, 1e-6f, "max |gpu - cpu| = %g", diff);
#endif
}
