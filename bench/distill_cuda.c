// distill_cuda.c: distillation step throughput on the GPU (issue 8's benchmark). A teacher and a
// student preset with random weights drawn on the device; steps of B x T tokens: teacher forward,
// student forward, CE + KL loss through the lm_head, backward, clipping, AdamW. Prints tokens/s,
// achieved TFLOP/s, MFU against the bf16 GEMM rate measured in the same run, peak memory, and the
// GPU-hours a 90B-token run would take at this rate. FLOPs per token: 6 x student matmul params
// + 2 x teacher matmul params (lm_heads included) + causal attention (student x 3, teacher x 1).
//
//   bench_distill_cuda TEACHER STUDENT [--student-layers N] [--batch B] [--seq T] [--steps S] [--recompute]
//                      [--csv FILE]
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/clock.h"
#include "../kernels/hash.h"
#include "../distill/optim.h"
#include "../models/config.h"

#ifndef ARBOR_HAVE_CUDA
int main(void) {
    fprintf(stderr, "bench_distill_cuda: built without CUDA\n");
    return 2;
}
#else
#include "../kernels/cuda/cuda_train_ops.h"
#include "../models/cuda_train.h"
#include "../models/file_io.h"

static double matmul_params(const ModelConfig* c) {
    double C = c->hidden, F = c->ffn, Q = (double)c->n_heads * c->head_dim, KV = (double)c->n_kv_heads * c->head_dim;
    return c->n_layers * (C * (Q + 2 * KV) + Q * C + 3 * C * F) + (double)c->vocab * C;
}

// forward attention FLOPs per token at sequence length T (causal: T/2 keys on average)
static double attention_flops(const ModelConfig* c, int T) {
    return 4.0 * c->head_dim * c->n_heads * c->n_layers * ((T + 1) / 2.0);
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_distill_cuda TEACHER STUDENT [--student-layers N] [--batch B] [--seq T] [--steps S] "
                        "[--recompute] [--csv FILE]\n");
        return 2;
    }
    Err e;
    ModelConfig tc, sc;
    if (config_preset(argv[1], &tc, &e) || config_preset(argv[2], &sc, &e)) {
        fprintf(stderr, "bench_distill_cuda: %s\n", e.msg);
        return 2;
    }
    int B = 4, T = 1024, steps = 6, recompute = 0;
    const char* csv = NULL;
    for (int i = 3; i < argc; i += 2) {
        if (!strcmp(argv[i], "--recompute")) {
            recompute = 1, i--;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_distill_cuda: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--student-layers")) sc.n_layers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seq")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--csv")) csv = argv[i + 1];
        else {
            fprintf(stderr, "bench_distill_cuda: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (B < 1 || T < 2 || steps < 2 || sc.n_layers < 1 || sc.n_layers > tc.n_layers + 64) {
        fprintf(stderr, "bench_distill_cuda: batch, seq, steps (>= 2) and layers must be positive\n");
        return 2;
    }
    char why[256];
    if (cuda_device_count(why, sizeof why) == 0) {
        fprintf(stderr, "bench_distill_cuda: no CUDA device: %s\n", why);
        return 1;
    }
    CudaContext* ctx = cuda_context_create(0);
    double gemm = cuda_gemm_tflops(ctx, 8192, 8192, 8192, 10);
    CudaModel tg, sg;
    cuda_model_create(&tg, ctx, &tc);
    cuda_model_init_random(&tg, 1);
    cuda_model_create(&sg, ctx, &sc);
    CudaTrainModel t;
    cuda_train_model_create_random(&t, &sg, 2);
    CudaTrainActs a;
    cuda_train_acts_create(&a, ctx, &sc, B, T, recompute);
    CudaTeacher teacher;
    cuda_teacher_create(&teacher, &tg, B, T);
    // peak: after every step too (cuda_scratch buffers grow on first use, inside the first steps)
    double peak = cuda_memory_used() / 1e9;
    int N = B * T;
    int* tokens = xmalloc(sizeof(int) * (size_t)(N + 1));
    LossConfig lc = {0.5f, 0.5f, KD_KL, 1.0f, 0, 0, 0.0f};
    OptimConfig o = {1e-4f, 1e-5f, 2, steps, 1, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    uint64_t x = 12345;
    double* sec = xmalloc(sizeof(double) * (size_t)steps);
    double last_loss = 0;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i <= N; i++) tokens[i] = (int)(splitmix64_next(&x) % (uint64_t)sc.vocab);
        cuda_synchronize(ctx);
        double t0 = now_seconds();
        LossValues lv;
        if (cuda_teacher_forward(&teacher, tokens, B, T, &e) || cuda_train_forward(&sg, &a, tokens, &e) ||
            cuda_train_loss(&t, &a, &lc, tokens + 1, teacher.rs.xn, tg.lm_head, tc.hidden, 1.0f, &lv, &e)) {
            fprintf(stderr, "bench_distill_cuda: %s\n", e.msg);
            return 1;
        }
        cuda_train_backward(&t, &a, tokens, NULL);
        cuda_train_optimizer_step(&t, &o, lr_at(&o, s));
        cuda_synchronize(ctx);
        sec[s] = now_seconds() - t0;
        double used = cuda_memory_used() / 1e9;
        if (used > peak) peak = used;
        last_loss = lv.total;
        fprintf(stderr, "step %d: loss %.4f, %.3f s\n", s, lv.total, sec[s]);
    }
    double step_s = median_inplace(sec + 1, steps - 1);  // the first step pays for plans and module loads
    double flops_token = 6 * matmul_params(&sc) + 2 * matmul_params(&tc) + 3 * attention_flops(&sc, T) +
                         attention_flops(&tc, T);
    double tps = N / step_s, tflops = flops_token * tps / 1e12;
    double hours = 90e9 / tps / 3600;
    fprintf(stderr, "distill %s -> %s (%d layers%s), batch %d x %d: %.0f tokens/s, %.1f TFLOP/s, MFU %.1f%% of the "
                    "measured %.0f TFLOP/s GEMM, peak %.1f GB; 90B tokens = %.0f GPU-hours\n",
            argv[1], argv[2], sc.n_layers, recompute ? ", recompute" : "", B, T, tps, tflops, 100 * tflops / gemm, gemm,
            peak, hours);
    printf("teacher=%s\nstudent=%s\nstudent_layers=%d\nbatch=%d\nseq=%d\nstep_seconds=%.4f\ntokens_per_s=%.1f\n"
           "tflops=%.2f\ngemm_tflops=%.1f\nmfu=%.4f\npeak_gb=%.2f\ngpu_hours_90b=%.0f\nlast_loss=%.5f\n",
           argv[1], argv[2], sc.n_layers, B, T, step_s, tps, tflops, gemm, tflops / gemm, peak, hours, last_loss);
    if (csv) {
        char row[1024];
        int len = snprintf(row, sizeof row,
                           "teacher,student,student_layers,batch,seq,tokens_per_s,tflops,mfu,peak_gb,gpu_hours_90b\n"
                           "%s,%s,%d,%d,%d,%.1f,%.2f,%.4f,%.2f,%.0f\n",
                           argv[1], argv[2], sc.n_layers, B, T, tps, tflops, tflops / gemm, peak, hours);
        if (file_write_atomic(csv, row, (size_t)len, &e)) {
            fprintf(stderr, "bench_distill_cuda: %s\n", e.msg);
            return 1;
        }
    }
    free(tokens), free(sec);
    cuda_teacher_free(&teacher);
    cuda_train_acts_free(&a);
    cuda_train_model_free(&t);
    cuda_model_free(&sg), cuda_model_free(&tg);
    cuda_context_free(ctx);
    return 0;
}
#endif
