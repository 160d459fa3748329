// blas_core.h: which OpenBLAS kernels run on this CPU. Debian's OpenBLAS (DYNAMIC_ARCH) picks its
// kernels by CPU model when it loads. A CPU newer than the library gets a fallback: on this project's
// machine ("Intel(R) Xeon(R) Processor" with AVX-512, unknown to OpenBLAS 0.3.21) that is Prescott, the
// SSE3 kernels, and sgemm ran at a fraction of the cores' rate. The choice is made before main, from
// OPENBLAS_CORETYPE, so arbor re-executes itself once with it set (harness/cpu_policy.c).
#pragma once

// The kernels OpenBLAS should run here when the ones it chose are older than the CPU: "SkylakeX"
// (AVX-512 F/BW/DQ/VL) or "Haswell" (AVX2 + FMA). NULL when its choice already uses what the CPU has,
// or OPENBLAS_CORETYPE is set (the user's choice, or ours after the re-exec).
const char* blas_core_wanted(void);
// The kernels OpenBLAS runs now.
const char* blas_core_name(void);
