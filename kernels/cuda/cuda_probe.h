// cuda_probe.h: the C side of the first CUDA translation unit. It proves the CUDA path builds and
// links in CI; the CUDA backend (cuda_ops.h) sits behind the same extern "C" seam.
#pragma once

// Runs y = a*x + y for n elements on device 0 and compares with the same loop on the CPU.
// Returns 0 and the max abs difference, or -1 with why filled.
int arbor_cuda_axpy_parity(int n, float* max_abs_diff, char* why, int why_len);
