// cuda_probe.h: the C side of the first CUDA translation unit. It proves the CUDA path builds and
// links in CI; the CUDA backend (kernels/cuda, issue 7) grows behind the same extern "C" seam.
#pragma once

// Number of usable CUDA devices; 0 when there is none or no driver. why (may be NULL) receives
// the runtime's reason when 0.
int arbor_cuda_device_count(char* why, int why_len);
// Runs y = a*x + y for n elements on device 0 and compares with the same loop on the CPU.
// Returns 0 and the max abs difference, or -1 with why filled.
int arbor_cuda_axpy_parity(int n, float* max_abs_diff, char* why, int why_len);
