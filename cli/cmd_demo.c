// cmd_demo.c: arbor demo — the whole study on a laptop, no downloads: a synthetic world of invented
// facts (harness/demo_data.c) with an MMLU-format benchmark and a word tokenizer; a teacher trained on
// it with the training loop; a sweep of depth strategies and widths, each pruned, scored before and
// after distillation (one-shot, and in two rounds), against students of the same shapes trained from
// scratch on the same budget; an architecture search whose finalists are distilled before they are
// ranked; results.csv and the frontier plots.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../distill/trainer.h"
#include "../kernels/clock.h"
#include "../models/file_io.h"
#include "../models/tokenizer/tokenizer.h"
#include "commands.h"
#include "../harness/content_hash.h"
#include "../harness/demo_data.h"
#include "../harness/results_table.h"
#include "../harness/sweep_config.h"
#include "../harness/sweep_run.h"

int cmd_plot(int argc, char** argv);
int cmd_paper(int argc, char** argv);
int cmd_prune(int argc, char** argv);

typedef struct {
    int entities, name_words, repeats, teacher_steps, distill_steps, layers, hidden, ffn;
} DemoSize;

static int train_teacher(const char* out, const DemoSize* z, uint64_t seed, int vocab, Err* e) {
    ModelConfig c;
    config_preset("tiny", &c, e);
    c.n_layers = z->layers, c.hidden = z->hidden, c.ffn = z->ffn, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = z->hidden / 4;
    c.vocab = (vocab + 63) / 64 * 64;
    c.max_positions = 512;
    Model m;
    model_create(&m, &c);
    model_init_random(&m, seed);
    char path[4200];
    snprintf(path, sizeof path, "%s/data/train.shard", out);
    Shard s;
    if (shard_open(&s, path, e)) {
        model_free(&m);
        return -1;
    }
    TrainConfig tc = {0};
    tc.steps = z->teacher_steps, tc.batch = 16, tc.grad_accum = 1, tc.seq_len = 64;
    tc.optim = (OptimConfig){3e-3f, 3e-4f, 30, tc.steps, 1, 0.9f, 0.95f, 1e-8f, 0.01f, 1.0f};
    tc.loss = (LossConfig){1.0f, 0.0f, KD_NONE, 1.0f, 0, 0, 0.0f};
    tc.val_fraction = 0.02, tc.seed = seed, tc.log_every = tc.steps / 5 > 0 ? tc.steps / 5 : 1;
    snprintf(path, sizeof path, "%s/teacher", out);
    tc.out_dir = path;
    int rc = train_run(&m, NULL, &s, &tc, NULL, e);
    shard_close(&s);
    model_free(&m);
    return rc;
}

static int write_sweep_config(const char* out, const DemoSize* z, Err* e) {
    char text[4096];
    int len = snprintf(text, sizeof text,
                       "; written by arbor demo\n[sweep]\nname = demo\nout = %s\n\n[teacher]\nmodel = %s/teacher/model\n"
                       "tokenizer = %s/data/tokenizer\n\n[data]\ncalib = %s/data/train.shard\ndistill = %s/data/train.shard\n"
                       "val = %s/data/val.shard\n\n[prune]\ncalib_windows = 32\nseq_len = 64\n\n"
                       "[distill]\nsteps = %d\nround_steps = %d\nseq_len = 64\nbatch = 16\nlr = 2e-3\nmin_lr = 2e-4\nwarmup = 10\n"
                       "loss = kl\n\n"
                       "[eval]\nmmlu = %s/data/mmlu\nshots = 0\nsubjects = miscellaneous\nppl_seq_len = 64\nppl_tokens = 4096\n\n"
                       "[bench]\nbatch = 1\nprompt_len = 32\ngen_len = 16\nrepeats = 3\n\n"
                       "[matrix]\nstrategies = bi, last\nlayers = %d, %d, %d>%d\nffn = %d\n\n[scratch]\nenabled = true\n",
                       out, out, out, out, out, out, z->distill_steps, (z->distill_steps + 1) / 2, out,
                       z->layers / 2, z->layers - 1, z->layers - 1, z->layers / 2,
                       z->ffn / 2);
    char path[4200];
    snprintf(path, sizeof path, "%s/demo.ini", out);
    return file_write_atomic(path, text, (size_t)len, e);
}

// A demo step's result is reused while OUT/NAME.key holds the key of what made it and `output` exists:
// 1 to reuse; 0 to redo, the stale key removed first (-1 when it cannot be); the step writes the key last.
static int reuse_or_forget(const char* key_path, const char* key, const char* output, Err* e) {
    char* have = access(key_path, F_OK) == 0 ? file_read_all(key_path, NULL, e) : NULL;
    int reuse = have && !strcmp(have, key) && access(output, F_OK) == 0;
    free(have);
    if (reuse) return 1;
    if (unlink(key_path) != 0 && errno != ENOENT) return err_set(e, "%s: cannot remove (%s)", key_path, strerror(errno));
    return 0;
}

// An architecture search under 60% of the teacher's parameters: every shape on the grid pruned and ranked
// by validation loss, the best two distilled (a third of the sweep's steps) and ranked again by MMLU
// validation accuracy. Reused while `key` (the teacher's) and these settings stay the same.
static int demo_search(const char* out, const char* key, const DemoSize* z, Err* e) {
    char dir[4200], key_path[4200], csv[4300], full_key[512];
    snprintf(dir, sizeof dir, "%s/search", out);
    snprintf(key_path, sizeof key_path, "%s/search.key", out);
    snprintf(csv, sizeof csv, "%s/search.csv", dir);
    int steps = z->distill_steps / 3 > 0 ? z->distill_steps / 3 : 1;
    snprintf(full_key, sizeof full_key, "search v2 ratio=0.6 finalists=2 steps=%d | %s", steps, key);
    int reuse = reuse_or_forget(key_path, full_key, csv, e);
    if (reuse) return reuse < 0 ? -1 : 0;
    char a[48][4200];
    int n = 0;
#define ARG(...) snprintf(a[n++], sizeof a[0], __VA_ARGS__)
    ARG("--model"), ARG("%s/teacher/model", out), ARG("--calib"), ARG("%s/data/train.shard", out), ARG("--val");
    ARG("%s/data/val.shard", out), ARG("--seq-len"), ARG("64"), ARG("--calib-windows"), ARG("32"), ARG("--search");
    ARG("--ratio"), ARG("0.6"), ARG("--layer-step"), ARG("1"), ARG("--hidden-step"), ARG("16"), ARG("--ffn-step"), ARG("48");
    ARG("--max-depth-cut"), ARG("0.5"), ARG("--max-width-cut"), ARG("0.5"), ARG("--finalists"), ARG("2"), ARG("--finalist-steps");
    ARG("%d", steps), ARG("--finalist-batch"), ARG("16"), ARG("--finalist-lr"), ARG("2e-3"), ARG("--score-with"), ARG("mmlu-val");
    ARG("--mmlu"), ARG("%s/data/mmlu", out), ARG("--tokenizer"), ARG("%s/data/tokenizer", out), ARG("--mmlu-shots"), ARG("0");
    ARG("--mmlu-subjects"), ARG("miscellaneous");
    ARG("--force"), ARG("--out"), ARG("%s", dir);
#undef ARG
    char* argv[48];
    for (int i = 0; i < n; i++) argv[i] = a[i];
    fprintf(stderr, "demo: architecture search, 2 finalists distilled %d steps each\n", steps);
    if (cmd_prune(n, argv) != 0) return err_set(e, "demo: the architecture search failed (its message is above)");
    return file_write_atomic(key_path, full_key, strlen(full_key), e);
}

// the search's ranking: the finalists first, by MMLU validation accuracy after distillation
static void print_search(const char* out) {
    char csv[4300];
    snprintf(csv, sizeof csv, "%s/search/search.csv", out);
    Table t;
    Err e;
    if (table_read(csv, &t, &e)) {
        fprintf(stderr, "demo: %s\n", e.msg);
        return;
    }
    const char* names[] = {"rank", "layers", "hidden", "ffn", "heads", "params", "val_loss", "rank_pruned", "final_mmlu_val"};
    int cols[9];
    for (int k = 0; k < 9; k++) cols[k] = table_col(&t, names[k]);
    printf("\narchitecture search (<= 60%% of the teacher's parameters; %d shapes): the 2 best by validation loss after pruning,\n"
           "distilled, then ranked by MMLU validation accuracy\n%-5s %-22s %8s %14s %12s %14s\n", t.n_rows - 1, "rank",
           "layers/hidden/ffn/heads", "params", "val loss", "pruned rank", "MMLU val");
    for (int r = 1; r < t.n_rows && r <= 4; r++) {
        char shape[64], score[32] = "-";
        snprintf(shape, sizeof shape, "%s/%s/%s/%s", table_cell(&t, r, cols[1]), table_cell(&t, r, cols[2]), table_cell(&t, r, cols[3]),
                 table_cell(&t, r, cols[4]));
        if (strcmp(table_cell(&t, r, cols[8]), "nan")) snprintf(score, sizeof score, "%.1f%%", 100 * atof(table_cell(&t, r, cols[8])));
        printf("%-5s %-22s %8s %14.4f %12s %14s\n", table_cell(&t, r, cols[0]), shape, table_cell(&t, r, cols[5]),
               atof(table_cell(&t, r, cols[6])), table_cell(&t, r, cols[7]), score);
    }
    table_free(&t);
}

int cmd_demo(int argc, char** argv) {
    Option opts[] = {
        {"out", "DIR", "where everything goes", "results/demo"},
        {"seed", "S", "random seed of the world and the runs", "0"},
        {"small", NULL, "a smaller, faster setting (tests)", NULL},
        {"entities", "N", "override: invented entities (x 4 facts each)", NULL},
        {"name-words", "N", "override: words per entity name (1: one token; more: shared syllable words)", NULL},
        {"teacher-steps", "N", "override: teacher training steps", NULL},
        {"distill-steps", "N", "override: distillation (and scratch training) steps", NULL},
    };
    Command cmd = {"demo", "The built-in study on a synthetic benchmark: no downloads, a few minutes on 2 cores.", opts,
                   sizeof opts / sizeof opts[0]};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    long seed;
    if (arg_long(&cmd, "seed", 0, 0x7fffffffL, &seed, &e)) return fail(&e);
    const char* out = arg_str(&cmd, "out");
    DemoSize z = arg_flag(&cmd, "small") ? (DemoSize){96, 3, 30, 2500, 150, 4, 64, 192}
                                         : (DemoSize){128, 3, 30, 3000, 150, 4, 64, 192};
    long v;  // an override is used or refused, never ignored
    if (arg_str(&cmd, "entities")) {
        if (arg_long(&cmd, "entities", 4, 10000, &v, &e)) return fail(&e);
        z.entities = (int)v;
    }
    if (arg_str(&cmd, "name-words")) {
        if (arg_long(&cmd, "name-words", 1, 6, &v, &e)) return fail(&e);
        z.name_words = (int)v;
    }
    if (arg_str(&cmd, "teacher-steps")) {
        if (arg_long(&cmd, "teacher-steps", 1, 1 << 24, &v, &e)) return fail(&e);
        z.teacher_steps = (int)v;
    }
    if (arg_str(&cmd, "distill-steps")) {
        if (arg_long(&cmd, "distill-steps", 1, 1 << 24, &v, &e)) return fail(&e);
        z.distill_steps = (int)v;
    }
    double t0 = now_seconds();
    char path[4200];
    snprintf(path, sizeof path, "%s/data", out);
    DemoDataOptions dd = {z.entities, z.repeats, z.name_words, (uint64_t)seed};
    fprintf(stderr, "demo: a synthetic world of %d entities x 4 attributes -> %s\n", z.entities, path);
    if (make_dirs(out, &e) || demo_data_write(path, &dd, &e)) return fail(&e);
    Tokenizer tok;
    snprintf(path, sizeof path, "%s/data/tokenizer", out);
    if (tokenizer_load(&tok, path, &e)) return fail(&e);
    int vocab = tok.n_ids;
    tokenizer_free(&tok);
    // the teacher is trained once per (seed, sizes, training data); a re-run with the same ones reuses it
    char data_hash[CONTENT_HASH_HEX], key[256], key_path[4200];
    HashMemo memo;
    hash_memo_open(&memo, NULL);
    snprintf(path, sizeof path, "%s/data/train.shard", out);
    int hrc = content_hash(&memo, path, data_hash, &e);
    hash_memo_free(&memo);
    if (hrc) return fail(&e);
    snprintf(key, sizeof key, "teacher v2 seed=%ld entities=%d name_words=%d repeats=%d steps=%d shape=%d,%d,%d vocab=%d data=%s\n", seed,
             z.entities, z.name_words, z.repeats, z.teacher_steps, z.layers, z.hidden, z.ffn, vocab, data_hash);
    snprintf(key_path, sizeof key_path, "%s/teacher.key", out);
    snprintf(path, sizeof path, "%s/teacher/model/config.json", out);
    int reuse = reuse_or_forget(key_path, key, path, &e);
    if (reuse < 0) return fail(&e);
    if (!reuse) {
        snprintf(path, sizeof path, "%s/teacher", out);
        if (remove_tree(path, &e)) return fail(&e);
        fprintf(stderr, "demo: training the teacher (%d steps)\n", z.teacher_steps);
        if (train_teacher(out, &z, (uint64_t)seed, vocab, &e) || file_write_atomic(key_path, key, strlen(key), &e))
            return fail(&e);
    }
    if (write_sweep_config(out, &z, &e) || demo_search(out, key, &z, &e)) return fail(&e);
    snprintf(path, sizeof path, "%s/demo.ini", out);
    SweepConfig c;
    if (sweep_config_load(path, &c, &e)) return fail(&e);
    Cell* cells;
    int n;
    sweep_cells(&c, &cells, &n);
    fprintf(stderr, "demo: sweeping %d cells\n", n);
    int rc = sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e);
    free(cells);
    if (rc) return fail(&e);
    char csv[4300];
    snprintf(csv, sizeof csv, "%s/demo/results.csv", out);
    char* plot_argv[1] = {csv};
    if (cmd_plot(1, plot_argv) != 0) fprintf(stderr, "demo: plotting failed (is gnuplot installed?)\n");
    char results_dir[4300];
    snprintf(results_dir, sizeof results_dir, "%s/demo", out);
    char* paper_argv[1] = {results_dir};
    int paper_rc = cmd_paper(1, paper_argv);
    // a short table of what happened
    Table t;
    if (table_read(csv, &t, &e)) return fail(&e);
    enum { K = 9 };
    const char* names[K] = {"label", "kind", "kept_layers", "params", "eval_pruned.mmlu_micro", "eval.mmlu_micro", "eval.mmlu_ci_low",
                            "eval.mmlu_ci_high", "bench.decode_tps_b1"};
    int cols[K];
    for (int k = 0; k < K; k++) cols[k] = table_col(&t, names[k]);
    printf("\n%-18s %-8s %-12s %8s %12s %20s %14s\n", "cell", "kind", "layers kept", "params", "MMLU pruned", "MMLU final (95% CI)",
           "decode t/s");
    for (int r = 1; r < t.n_rows; r++) {
        const char* f[K];
        for (int k = 0; k < K; k++) f[k] = table_cell(&t, r, cols[k])[0] ? table_cell(&t, r, cols[k]) : "-";
        char before[32] = "-", after[48] = "-", speed[32] = "-";
        if (strcmp(f[4], "-")) snprintf(before, sizeof before, "%.1f%%", 100 * atof(f[4]));
        if (strcmp(f[5], "-")) snprintf(after, sizeof after, "%.1f%% (%.0f-%.0f)", 100 * atof(f[5]), 100 * atof(f[6]), 100 * atof(f[7]));
        if (strcmp(f[8], "-")) snprintf(speed, sizeof speed, "%.0f", atof(f[8]));
        printf("%-18s %-8s %-12s %8s %12s %20s %14s\n", f[0], f[1], f[2], f[3], before, after, speed);
    }
    table_free(&t);
    print_search(out);
    printf("\nresults: %s (rounds: rounds.csv beside it)\nsearch:  %s/search/search.csv\nplots:   %s/demo/frontier_speed.png, "
           "frontier_params.png\n", csv, out, out);
    if (paper_rc == 0) printf("paper:   %s/demo/paper/paper.pdf\n", out);
    fprintf(stderr, "demo: done in %.0f s\n", now_seconds() - t0);
    return 0;
}
