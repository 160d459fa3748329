// train_throughput.c: training and distillation tokens/s of a ~20M-parameter Qwen3-shaped model on
// the CPU backend (random weights and tokens), with the matmul share of the time, the matmuls'
// GFLOP/s against cblas_sgemm's peak measured in the same run, and achieved GFLOP/s on the
// (6 x student + 2 x teacher) x parameters per token basis.
// Usage: bench_train_throughput [steps] [seq_len] [batch]
#include <stdio.h>
#include <stdlib.h>

#include "harness/cpu_policy.h"
#include "distill/trainer.h"
#include "kernels/clock.h"
#include "kernels/cpu/sgemm_rate.h"

static void make_model(Model* m, int layers, uint64_t seed) {
    ModelConfig c;
    Err e;
    config_preset("tiny", &c, &e);
    c.n_layers = layers, c.hidden = 384, c.ffn = 1024, c.n_heads = 6, c.n_kv_heads = 2, c.head_dim = 64;
    c.vocab = 32000, c.tie_embeddings = true;
    model_create(m, &c);
    model_init_random(m, seed);
}

static void run(const char* what, Model* s, Model* t, int steps, int T, int B, int recompute) {
    Trainer tr;
    Err e;
    TrainConfig cfg = {0};
    cfg.steps = steps, cfg.batch = B, cfg.grad_accum = 1, cfg.seq_len = T;
    cfg.optim = (OptimConfig){3e-4f, 3e-5f, 1, steps, 1, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    cfg.loss = t ? (LossConfig){0.0f, 1.0f, KD_KL, 1.0f, 0, 0, 0.0f} : (LossConfig){1.0f, 0.0f, KD_NONE, 1.0f, 0, 0, 0.0f};
    if (trainer_init(&tr, s, t, B, T, recompute, 0, NULL, &e)) {
        fprintf(stderr, "arbor: %s\n", e.msg);
        exit(1);
    }
    int* windows = malloc(sizeof(int) * (size_t)B * (T + 1));
    uint64_t x = 1;
    double best = 1e30, mm_s = 0, mm_f = 0;
    for (int st = 0; st <= steps; st++) {  // step 0 warms up (page faults)
        for (int i = 0; i < B * (T + 1); i++) x = x * 6364136223846793005ull + 1, windows[i] = (int)((x >> 33) % 32000);
        tr.sa.matmul_seconds = tr.sa.matmul_flops = 0;
        if (t) tr.trs.matmul_seconds = tr.trs.matmul_flops = 0;
        LossValues lv;
        double gnorm;
        float lr;
        double t0 = now_seconds();
        if (trainer_step(&tr, &cfg, windows, &lv, &gnorm, &lr, &e)) {
            fprintf(stderr, "arbor: %s\n", e.msg);
            exit(1);
        }
        double dt = now_seconds() - t0;
        if (st > 0 && dt < best) {
            best = dt;
            mm_s = tr.sa.matmul_seconds + (t ? tr.trs.matmul_seconds : 0) + lv.matmul_seconds;
            mm_f = tr.sa.matmul_flops + (t ? tr.trs.matmul_flops : 0) + lv.matmul_flops;
        }
    }
    double tokens = (double)B * T, ps = (double)s->table.n_floats, pt = t ? (double)t->table.n_floats : 0;
    double model_flops = (6.0 * ps + 2.0 * pt) * tokens;
    double peak = sgemm_gflops(1024, 1024, 1024, 5);
    printf("%-8s %8.0f tokens/s | step %.3f s | matmuls %4.0f%% of time at %6.1f GFLOP/s = %3.0f%% of sgemm peak %.1f | "
           "(6S+2T)xP basis %6.1f GFLOP/s\n",
           what, tokens / best, best, 100 * mm_s / best, mm_f / mm_s * 1e-9, 100 * mm_f / mm_s * 1e-9 / peak, peak,
           model_flops / best * 1e-9);
    free(windows);
    trainer_free(&tr);
}

int main(int argc, char** argv) {
    cpu_policy_apply(argc, argv);  // OpenBLAS kernels for this CPU (and the wait policy), as arbor runs
    int steps = argc > 1 ? atoi(argv[1]) : 3, T = argc > 2 ? atoi(argv[2]) : 256, B = argc > 3 ? atoi(argv[3]) : 8;
    Model s, t;
    make_model(&s, 6, 1);
    make_model(&t, 12, 2);
    printf("student %.1fM parameters (6 layers), teacher %.1fM (12 layers); batch %d x seq %d\n",
           s.table.n_floats * 1e-6, t.table.n_floats * 1e-6, B, T);
    run("train", &s, NULL, steps, T, B, 0);
    run("distill", &s, &t, steps, T, B, 0);
    run("recomp.", &s, &t, steps, T, B, 1);
    model_free(&s);
    model_free(&t);
    return 0;
}
