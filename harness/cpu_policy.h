// cpu_policy.h: how arbor's OpenMP threads wait when they do not own the cores. libgomp spins idle
// threads for a while before sleeping; with another busy process on the machine those spins steal the
// cores the working threads need (measured on 2 cores with one competing busy process: decode 14.7-17.7
// tokens/s spinning, 22.0-27.8 passive). OMP_WAIT_POLICY is read when libgomp loads, before main, so
// the choice is made by re-executing arbor once with it set.
//
//   ARBOR_CPU_POLICY=auto       (default) passive waiting when other runnable processes are seen at start
//   ARBOR_CPU_POLICY=shared     always passive
//   ARBOR_CPU_POLICY=dedicated  libgomp's default (spin, then sleep): fastest on an otherwise idle machine
// An OMP_WAIT_POLICY set by the user is always kept. The thread count is never changed here (results of
// a fixed thread count are bit-identical; set OMP_NUM_THREADS to use fewer cores).
#pragma once

//
// The same re-exec sets OPENBLAS_CORETYPE when OpenBLAS chose kernels older than the CPU (blas_core.h).
#include <stddef.h>

// Called first thing in main. May not return (re-exec with OMP_WAIT_POLICY and/or OPENBLAS_CORETYPE set).
void cpu_policy_apply(int argc, char** argv);
// The OpenBLAS kernels running, and whether arbor chose them: "SkylakeX (OpenBLAS chose Prescott ...)".
const char* cpu_blas_note(char* buf, size_t n);
// What is in effect: "passive", "active" or "default", and the runnable processes seen besides arbor.
const char* cpu_wait_policy(void);
double cpu_other_runnable(void);
