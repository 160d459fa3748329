// test_train_loop.c: the optimizer loop against torch (10 AdamW steps with warmup, cosine decay,
// clipping and accumulation, tools/make_train_fixtures.py), bit-identical resume, and bad input.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "distill/trainer.h"
#include "helpers.h"
#include "models/file_io.h"

// tests/fixtures/train/qwen3 (tools/make_train_fixtures.py): its folder into dir, its batch shape, and
// its reference.json (the caller deletes it)
static cJSON* train_fixture(char dir[512], int* B, int* T) {
    char path[700];
    snprintf(dir, 512, "%s/train/qwen3", ARBOR_FIXTURES);
    snprintf(path, sizeof path, "%s/reference.json", dir);
    cJSON* ref = read_json(path);
    *B = cJSON_GetObjectItem(ref, "B")->valueint, *T = cJSON_GetObjectItem(ref, "T")->valueint;
    return ref;
}

Test(train_loop, adamw_trajectory_matches_torch) {
    char dir[512], path[700];
    int B, T;
    cJSON* ref = train_fixture(dir, &B, &T);
    const cJSON* tj = cJSON_GetObjectItem(ref, "trajectory");
    int steps = cJSON_GetObjectItem(tj, "steps")->valueint, K = cJSON_GetObjectItem(tj, "accum")->valueint;
    Model s, t;
    Err e;
    load_model_at(&s, dir, "student");
    load_model_at(&t, dir, "teacher");
    const cJSON* lr = cJSON_GetObjectItem(tj, "lr");
    TrainConfig cfg = {0};
    cfg.steps = steps, cfg.batch = B, cfg.grad_accum = K, cfg.seq_len = T;
    cfg.optim = (OptimConfig){(float)lr->valuedouble, (float)cJSON_GetObjectItem(tj, "min_lr")->valuedouble,
                              cJSON_GetObjectItem(tj, "warmup")->valueint, steps, 1,
                              (float)cJSON_GetObjectItem(tj, "beta1")->valuedouble,
                              (float)cJSON_GetObjectItem(tj, "beta2")->valuedouble,
                              (float)cJSON_GetObjectItem(tj, "eps")->valuedouble,
                              (float)cJSON_GetObjectItem(tj, "wd")->valuedouble,
                              (float)cJSON_GetObjectItem(tj, "clip")->valuedouble};
    cfg.loss = (LossConfig){0.5f, 1.0f, KD_KL, 2.0f, 1, 0, 0.0f};
    Trainer tr;
    cr_assert_eq(trainer_init(&tr, &s, &t, B, T, 0, 0, NULL, &e), 0, "%s", e.msg);
    int* windows = malloc(sizeof(int) * (size_t)K * B * (T + 1));
    double worst_loss = 0;
    for (int st = 0; st < steps; st++) {
        const cJSON* ws = cJSON_GetArrayItem(cJSON_GetObjectItem(tj, "windows"), st);
        int at = 0;
        for (int k = 0; k < K; k++)
            for (int b = 0; b < B; b++)
                for (int i = 0; i <= T; i++)
                    windows[at++] = cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetArrayItem(ws, k), b), i)->valueint;
        LossValues lv;
        double gnorm;
        float lr_used;
        cr_assert_eq(trainer_step(&tr, &cfg, windows, &lv, &gnorm, &lr_used, &e), 0, "%s", e.msg);
        double want = cJSON_GetArrayItem(cJSON_GetObjectItem(tj, "losses"), st)->valuedouble;
        double want_norm = cJSON_GetArrayItem(cJSON_GetObjectItem(tj, "grad_norms"), st)->valuedouble;
        worst_loss = fmax(worst_loss, fabs(lv.total - want) / want);
        cr_expect(fabs(lv.total - want) <= 1e-4 * want, "step %d: loss %.6f, torch %.6f", st + 1, lv.total, want);
        cr_expect(fabs(gnorm - want_norm) <= 1e-4 * want_norm, "step %d: grad norm %.6f, torch %.6f", st + 1, gnorm, want_norm);
    }
    snprintf(path, sizeof path, "%s/trajectory_params.safetensors", dir);
    StFile f;
    cr_assert_eq(st_open(&f, path, &e), 0, "%s", e.msg);
    double worst = 0;
    for (int i = 0; i < s.table.n_params; i++) {
        const ParamInfo* p = &s.table.params[i];
        float* want = malloc(sizeof(float) * p->numel);
        cr_assert_eq(st_read_f32(&f, st_find(&f, p->name), want, &e), 0);
        double err = rel_l2(s.arena + p->offset, want, p->numel);
        worst = fmax(worst, err);
        cr_expect_leq(err, 1e-4, "%s after %d steps: rel L2 %.3g", p->name, steps, err);
        free(want);
    }
    cr_log_info("10-step trajectory: worst loss rel diff %.2e, worst parameter rel L2 %.2e", worst_loss, worst);
    st_close(&f);
    free(windows);
    trainer_free(&tr);
    model_free(&s);
    model_free(&t);
    cJSON_Delete(ref);
}

// a tiny random model and a shard of random tokens in a temp dir
static char dir[256], shard_path[512];
static void setup(void) {
    make_temp_dir(dir, sizeof dir);
    snprintf(shard_path, sizeof shard_path, "%s/data.shard", dir);
    write_test_shard(shard_path, 4000, 512, 42, NULL);
}
TestSuite(train_run, .init = setup);

static TrainConfig small_cfg(const char* out) {
    TrainConfig c = {0};
    c.steps = 6, c.batch = 2, c.grad_accum = 2, c.seq_len = 16;
    c.optim = (OptimConfig){1e-3f, 1e-4f, 2, 6, 1, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    c.loss = (LossConfig){1.0f, 0.0f, KD_NONE, 1.0f, 0, 0, 0.0f};
    c.val_every = 3, c.val_windows = 4, c.val_fraction = 0.1, c.seed = 7, c.out_dir = out, c.log_every = 100;
    return c;
}

static void tiny_model(Model* m) {
    ModelConfig c;
    Err e;
    config_preset("tiny", &c, &e);
    c.n_layers = 2;
    model_create(m, &c);
    model_init_random(m, 5);
}

Test(train_run, resume_is_bit_identical) {
    Shard shard;
    Err e;
    cr_assert_eq(shard_open(&shard, shard_path, &e), 0, "%s", e.msg);
    char out_a[512], out_b[512], path[700];
    snprintf(out_a, sizeof out_a, "%s/a", dir);
    snprintf(out_b, sizeof out_b, "%s/b", dir);
    Model a, b;
    tiny_model(&a);
    tiny_model(&b);
    TrainConfig ca = small_cfg(out_a), cb = small_cfg(out_b);
    cr_assert_eq(train_run(&a, NULL, &shard, &ca, NULL, &e), 0, "%s", e.msg);
    cb.stop_at = 3;  // "killed" after step 3 (its state saved), then resumed
    cr_assert_eq(train_run(&b, NULL, &shard, &cb, NULL, &e), 0, "%s", e.msg);
    model_free(&b);
    tiny_model(&b);
    for (size_t i = 0; i < b.table.n_floats; i += 97) b.arena[i] += 1.0f;  // resume must not rely on these
    cb.stop_at = 0;
    cb.resume = 1;
    cr_assert_eq(train_run(&b, NULL, &shard, &cb, NULL, &e), 0, "%s", e.msg);
    cr_expect_eq(memcmp(a.arena, b.arena, sizeof(float) * a.table.n_floats), 0, "parameters differ after resume");
    snprintf(path, sizeof path, "%s/model/config.json", out_b);
    cr_expect_eq(access(path, F_OK), 0, "the student is saved as a HF checkpoint");
    snprintf(path, sizeof path, "%s/log.csv", out_b);
    char* log = file_read_all(path, NULL, &e);
    cr_assert_not_null(log);
    int lines = 0;
    for (char* p = log; *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, 7, "header + 6 steps across both runs: %s", log);
    free(log);
    // a state file from another model is refused
    Model other;
    ModelConfig oc;
    config_preset("tiny", &oc, &e);
    oc.n_layers = 1;
    model_create(&other, &oc);
    Trainer tr;
    cr_assert_eq(trainer_init(&tr, &other, NULL, 2, 16, 0, 0, NULL, &e), 0);
    snprintf(path, sizeof path, "%s/train_state.bin", out_b);
    cr_expect_eq(trainer_load(&tr, NULL, path, &e), -1);
    cr_expect(contains(e.msg, "parameters (in ") && contains(e.msg, "the student has"), "%s", e.msg);
    trainer_free(&tr);
    model_free(&other);
    // a corrupt or crafted state is refused before use: a flipped byte fails the checksum; a version-1
    // file (no checksum) with a data cursor of 2^40 fails the field checks (it crashed the loader once)
    {
        size_t len;
        char* bytes = file_read_all(path, &len, &e);
        cr_assert_not_null(bytes);
        bytes[len - 5] ^= 0x40;
        write_bytes(path, bytes, len);
        Model c;
        tiny_model(&c);
        TrainConfig cc = small_cfg(out_b);
        cc.resume = 1;
        cr_expect_eq(train_run(&c, NULL, &shard, &cc, NULL, &e), -1);
        cr_expect(contains(e.msg, "checksum mismatch"), "%s", e.msg);
        bytes[len - 5] ^= 0x40;
        uint32_t v1 = 1;
        uint64_t cursor = 1ull << 40;
        memcpy(bytes + 8, &v1, 4);
        memcpy(bytes + 16 + 3 * 8, &cursor, 8);
        write_bytes(path, bytes, len);
        model_free(&c);
        tiny_model(&c);
        cr_expect_eq(train_run(&c, NULL, &shard, &cc, NULL, &e), -1, "a crafted cursor is refused, not followed");
        cr_expect(contains(e.msg, "outside the") && contains(e.msg, "training windows"), "%s", e.msg);
        model_free(&c);
        free(bytes);
    }
    // a save interrupted mid-write leaves the previous state intact: the temp file never replaces it
    AtomicFile f;
    cr_assert_eq(atomic_open(&f, path, &e), 0);
    cr_assert_eq(atomic_write(&f, "partial", 7, &e), 0);
    atomic_abort(&f);  // what a killed process amounts to: the rename never happens
    Trainer again;
    Model c;
    tiny_model(&c);
    cr_assert_eq(trainer_init(&again, &c, NULL, 2, 16, 0, 0, NULL, &e), 0);
    cr_expect_eq(trainer_load(&again, NULL, path, &e), 0, "%s", e.msg);
    cr_expect_eq(again.step, 6);
    cr_expect_eq(memcmp(c.arena, b.arena, sizeof(float) * c.table.n_floats), 0);
    trainer_free(&again);
    model_free(&c);
    model_free(&a);
    model_free(&b);
    shard_close(&shard);
}

Test(train_run, bad_input_is_refused) {
    Shard shard;
    Err e;
    cr_assert_eq(shard_open(&shard, shard_path, &e), 0, "%s", e.msg);
    char out[512];
    snprintf(out, sizeof out, "%s/bad", dir);
    Model m, t;
    tiny_model(&m);
    TrainConfig c = small_cfg(out);
    m.cfg.vocab = 256;  // a shard whose vocabulary exceeds the model's
    cr_expect_eq(train_run(&m, NULL, &shard, &c, NULL, &e), -1);
    cr_expect(contains(e.msg, "shard's vocabulary (512) exceeds the student's (256)"), "%s", e.msg);
    m.cfg.vocab = 512;
    c.seq_len = 5000;  // longer than the shard
    cr_expect_eq(train_run(&m, NULL, &shard, &c, NULL, &e), -1);
    cr_expect(contains(e.msg, "fewer than two windows"), "%s", e.msg);
    m.cfg.max_positions = 8;  // longer than the model's context
    c = small_cfg(out);
    cr_expect_eq(train_run(&m, NULL, &shard, &c, NULL, &e), -1);
    cr_expect(contains(e.msg, "seq_len 16 exceeds the student's context of 8"), "%s", e.msg);
    m.cfg.max_positions = 40960;
    c = small_cfg(out);
    ModelConfig tc;
    config_preset("tiny", &tc, &e);
    tc.vocab = 600;
    model_create(&t, &tc);
    c.loss = (LossConfig){0.0f, 1.0f, KD_KL, 1.0f, 0, 0, 0.0f};
    cr_expect_eq(train_run(&m, &t, &shard, &c, NULL, &e), -1);
    cr_expect(contains(e.msg, "vocabularies differ (600 vs 512)"), "%s", e.msg);
    model_free(&t);
    c = small_cfg(out);
    m.w.final_norm[0] = NAN;  // a NaN loss stops the run at its step
    cr_expect_eq(train_run(&m, NULL, &shard, &c, NULL, &e), -1);
    cr_expect(contains(e.msg, "step 1") && contains(e.msg, "not finite"), "%s", e.msg);
    model_free(&m);
    shard_close(&shard);
}

// --kd-scale auto:S: each micro-batch's KD weight is S x its LM loss / its KD loss (taken before the
// gradient), and the step is exactly the step of a fixed loss with that weight
Test(train_loop, kd_scale_auto_balances_kd_against_the_lm_loss) {
    char fdir[512];
    int B, T;
    cJSON* ref = train_fixture(fdir, &B, &T);
    const cJSON* tj = cJSON_GetObjectItem(ref, "trajectory");
    Model s[2], t;
    Err e;
    load_model_at(&s[0], fdir, "student");
    load_model_at(&s[1], fdir, "student");
    load_model_at(&t, fdir, "teacher");
    int* windows = malloc(sizeof(int) * (size_t)B * (T + 1));
    const cJSON* w0 = cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(tj, "windows"), 0), 0);
    for (int b = 0, at = 0; b < B; b++)
        for (int i = 0; i <= T; i++) windows[at++] = cJSON_GetArrayItem(cJSON_GetArrayItem(w0, b), i)->valueint;
    TrainConfig cfg = {0};
    cfg.steps = 1, cfg.batch = B, cfg.grad_accum = 1, cfg.seq_len = T;
    cfg.optim = (OptimConfig){1e-3f, 1e-3f, 0, 1, 0, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    cr_assert_eq(loss_parse("mix:0.5,kl", 1, &cfg.loss, &e), 0, "%s", e.msg);
    cfg.loss.temperature = 2.0f;
    cr_assert_eq(kd_scale_parse("auto:1.5", &cfg.loss, &e), 0, "%s", e.msg);
    LossValues lv[2];
    for (int run = 0; run < 2; run++) {
        if (run == 1) cfg.loss.kd_auto_scale = 0, cfg.loss.kd_weight = (float)lv[0].kd_weight;  // the weight auto chose, fixed
        Trainer tr;
        double gnorm;
        float lr;
        cr_assert_eq(trainer_init(&tr, &s[run], &t, B, T, 0, 0, NULL, &e), 0, "%s", e.msg);
        cr_assert_eq(trainer_step(&tr, &cfg, windows, &lv[run], &gnorm, &lr, &e), 0, "%s", e.msg);
        trainer_free(&tr);
    }
    double want = 1.5 * lv[0].ce / lv[0].kd;
    cr_expect(fabs(lv[0].kd_weight - want) <= 1e-6 * want, "kd weight %.8g, 1.5 ce/kd %.8g", lv[0].kd_weight, want);
    cr_expect(fabs(lv[0].kd_weight - 1.0) > 0.05, "the test needs a weight away from the fixed one: %g", lv[0].kd_weight);
    cr_expect_float_eq(lv[0].total, 0.5 * lv[0].ce + lv[0].kd_weight * lv[0].kd, 1e-9 * lv[0].total);
    cr_expect_eq(lv[0].total, lv[1].total);
    cr_expect_arr_eq(s[0].arena, s[1].arena, sizeof(float) * s[0].table.n_floats, "the same update as the fixed weight");
    // refused where there is nothing to balance, and malformed specs
    LossConfig l;
    cr_assert_eq(loss_parse("kl", 1, &l, &e), 0);
    cr_expect_eq(kd_scale_parse("auto", &l, &e), -1);
    cr_expect(strstr(e.msg, "no LM term") != NULL, "%s", e.msg);
    cr_assert_eq(loss_parse("mix:0.5,kl", 1, &l, &e), 0);
    cr_expect_eq(kd_scale_parse("auto:0", &l, &e), -1);
    cr_expect_eq(kd_scale_parse("automatic", &l, &e), -1);
    cr_expect(strstr(e.msg, "expected none, auto or auto:S") != NULL, "%s", e.msg);
    free(windows);
    model_free(&s[0]), model_free(&s[1]), model_free(&t);
    cJSON_Delete(ref);
}
