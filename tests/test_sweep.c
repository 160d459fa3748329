// test_sweep.c: sweep configs: every key typed and known, file:line errors before any work, the
// matrix expanded into cells with stable ids.
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/results_table.h"
#include "harness/sweep_config.h"
#include "harness/sweep_describe.h"
#include "harness/sweep_graph.h"
#include "harness/sweep_plan.h"
#include "harness/sweep_ranks.h"
#include "harness/sweep_run.h"
#include "harness/sweep_slurm.h"
#include "harness/sweep_store.h"
#include "helpers.h"
#include "distill/trainer.h"
#include "models/dir_lock.h"
#include "models/file_io.h"
#include "mmlu/subjects.h"
#include "models/model.h"
#include "prune/importance.h"

static char dir[256], teacher[512], shard[512], cfg_path[512];

static int count_char(const char* s, char c) {
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}


static void setup(void) {
    make_temp_dir(dir, sizeof dir);
    snprintf(teacher, sizeof teacher, "%s/teacher", dir);
    Err e;
    ModelConfig c;
    config_preset("tiny", &c, &e);
    cr_assert_eq(checkpoint_write_random(&c, 1, teacher, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, &e), 0, "%s", e.msg);
    snprintf(shard, sizeof shard, "%s/data.shard", dir);
    write_test_shard(shard, 1000, 512, 1, NULL);
    snprintf(cfg_path, sizeof cfg_path, "%s/sweep.ini", dir);
}
TestSuite(sweep, .init = setup);

static void write_cfg(const char* body) {
    char text[8192];
    snprintf(text, sizeof text,
             "[sweep]\nname = t\nout = %s/results\n\n[teacher]\nmodel = %s\n\n[data]\ncalib = %s\ndistill = %s\n\n%s", dir,
             teacher, shard, shard, body);
    write_text(cfg_path, text);
}

// the store folder of a cell's stage (or a file in it), from the sweep's manifest: DIR/RESULTS/t/stages/KEY[/file]
static void at(char* out, size_t n, const char* results, const char* cell, const char* stage, const char* file) {
    char sweep_dir[600], d[2600];
    Err e;
    snprintf(sweep_dir, sizeof sweep_dir, "%s/%s/t", dir, results);
    cr_assert_eq(sweep_stage_dir(sweep_dir, cell, stage, d, sizeof d, &e), 0, "%s", e.msg);
    snprintf(out, n, "%s%s%s", d, file[0] ? "/" : "", file);
}

// MMLU stand-in files for these subjects (test and dev splits) under root: the config checks they are there
static void mmlu_stand_in(const char* root, const char* const* subjects, int n) {
    const char* splits[] = {"test", "dev"};
    for (int k = 0; k < 2; k++) {
        char path[900];
        Err e;
        snprintf(path, sizeof path, "%s/%s", root, splits[k]);
        cr_assert_eq(make_dirs(path, &e), 0, "%s", e.msg);
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s/%s_%s.csv", root, splits[k], subjects[i], splits[k]);
            write_text(path, "Q?,a,b,c,d,A\n");
        }
    }
}

// fast stage settings for sweeps that really run
#define TINY_STAGES "[distill]\nsteps = 1\nseq_len = 16\nbatch = 2\n\n[prune]\ncalib_windows = 2\nseq_len = 16\n\n"

// writes the config, reads it and expands its cells (n_expected of them)
static Cell* sweep_from(const char* body, SweepConfig* c, int n_expected, int* n) {
    write_cfg(body);
    Err e;
    cr_assert_eq(sweep_config_load(cfg_path, c, &e), 0, "%s", e.msg);
    Cell* cells;
    sweep_cells(c, &cells, n);
    cr_assert_eq(*n, n_expected);
    return cells;
}


Test(sweep, matrix_expands_into_cells_with_stable_ids) {
    write_cfg("[distill]\nsteps = 5\n\n[matrix]\nstrategies = bi, last\nlayers = 2, 3\nffn = 0, 96\n\n[scratch]\nenabled = true\n"
              "\n[baseline.copy]\nmodel = ");
    FILE* f = fopen(cfg_path, "a");
    fprintf(f, "%s\n", teacher);
    fclose(f);
    SweepConfig c;
    Err e;
    cr_assert_eq(sweep_config_load(cfg_path, &c, &e), 0, "%s", e.msg);
    Cell* cells;
    int n;
    cr_assert_eq(sweep_cells(&c, &cells, &n), 0);
    cr_expect_eq(n, 1 + 1 + 8 + 4, "teacher, baseline, 2x2x2 pruned, 4 distinct shapes from scratch");
    cr_expect_str_eq(cells[0].label, "teacher");
    cr_expect_str_eq(cells[1].label, "baseline-copy");
    cr_expect_str_eq(cells[2].label, "bi-L2");
    cr_expect_str_eq(cells[3].label, "bi-L2-ffn96");
    cr_expect_str_eq(cells[10].label, "scratch-L2");
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) cr_expect_str_neq(cells[i].id, cells[j].id, "cells %d and %d share an id", i, j);
    // the same config gives the same ids; a changed distillation setting keeps them (a cell is what it is:
    // its distill stage gets a new key instead, and its prune keeps its own)
    Cell* again;
    int m;
    SweepConfig c2;
    cr_assert_eq(sweep_config_load(cfg_path, &c2, &e), 0);
    sweep_cells(&c2, &again, &m);
    cr_expect_str_eq(again[5].id, cells[5].id);
    InputHashes in;
    cr_assert_eq(sweep_hash_inputs(&c2, 0, &in, &e), 0, "%s", e.msg);
    SweepPlan p1, p2;
    sweep_plan_build(&c2, again, m, &in, &p1);
    c2.lr = 5e-4;
    free(again);
    sweep_cells(&c2, &again, &m);
    sweep_plan_build(&c2, again, m, &in, &p2);
    cr_expect_str_eq(again[5].id, cells[5].id);
    cr_expect_str_neq(plan_stage(&p2.cells[5], "distill")->key, plan_stage(&p1.cells[5], "distill")->key);
    cr_expect_str_eq(plan_stage(&p2.cells[5], "prune")->key, plan_stage(&p1.cells[5], "prune")->key);
    sweep_plan_free(&p1), sweep_plan_free(&p2);
    free(again);
    free(cells);
}

static void expect_refused(const char* body, const char* phrase) {
    write_cfg(body);
    SweepConfig c;
    Err e = {{0}, 0};
    cr_assert_eq(sweep_config_load(cfg_path, &c, &e), -1, "should refuse: %s", body);
    cr_expect(contains(e.msg, phrase), "says '%s': %s", phrase, e.msg);
    cr_expect(contains(e.msg, "sweep.ini:"), "names the file and line: %s", e.msg);
}

Test(sweep, bad_configs_name_file_and_line) {
    expect_refused("[distill]\nstepz = 5\n", ":13: unknown key 'stepz' in [distill]");
    expect_refused("[distill]\nsteps = many\n", ":13: steps = 'many' is not a non-negative integer");
    expect_refused("[matrix]\nstrategies = bi, magic\nlayers = 2\n", ":13: strategy 'magic' is not one of");
    expect_refused("[matrix]\nstrategies = bi\n", ":13: strategies need [matrix] layers");
    // messages that say what is wrong: a chain ending in 0, an unknown section, a default that cannot work
    expect_refused("[matrix]\nstrategies = bi\nlayers = 3>0\n", ":14: layers: '3>0' ends a round at 0, which is no layer count");
    expect_refused("[bogus]\nx = 1\n", ":13: unknown section [bogus] (the sections are sweep, teacher,");
    expect_refused("[distill]\nranks_per_node = 2\n", "sweep.ini: [distill] grad_accum (not set: its default): grad_accum 1 is the global");
    expect_refused("[distill]\nschedule = wavy\n", ":13: schedule must be cosine or linear");
    expect_refused("[matrix]\nstrategies = ablation\nlayers = 2\n", ":13: strategy 'ablation' needs [prune] ablation_windows");
    expect_refused("[sweep]\ndevice = cuda\n[prune]\nbi_after_norm = true\n", "run on the CPU calibration path");
    expect_refused("[eval]\ntruncate = middle\n", ":13: truncate must be tokens (lm-eval's left truncation) or shots");
    // impossible against the teacher (tiny: 4 layers, hidden 64, ffn 192, 4 heads in 2 KV groups)
    expect_refused("[matrix]\nstrategies = bi\nlayers = 10\n", ":14: layers 10: the teacher has 4 layers");
    expect_refused("[matrix]\nstrategies = bi\nlayers = 2\nffn = 1000\n", ":15: ffn: --ffn 1000 is larger than the model's 192");
    expect_refused("[matrix]\nstrategies = bi\nlayers = 2\nheads = 3\n", ":15: heads: --heads 3 is not a multiple of the 2 KV groups");
    expect_refused("[matrix]\nstrategies = bi\nlayers = 2, 2\n", ":14: layers: 2 is listed twice");
    expect_refused("[matrix]\nstrategies = bi, bi\nlayers = 2\n", ":13: strategy 'bi' is listed twice");
    expect_refused("[matrix]\nffn = 96\n", "width axes need [matrix] strategies");
    expect_refused("[distill]\nsteps = 2\nsteps = 3\n", ":14: duplicate key 'steps' in [distill]");
    expect_refused("[eval]\nsubjects = anatomy, astronomi\n", ":13: 'astronomi' is not one of MMLU's 57 subjects");
    expect_refused("[bench]\nbatch = 0\n", ":13: bench batch sizes must be at least 1");
    expect_refused("[bench]\nprompt_len = 0\n", ":13: prompt_len must be at least 1");
    expect_refused("[bench]\ngen_len = 0\n", ":13: gen_len must be at least 1");
    expect_refused("[bench]\nrepeats = 0\n", ":13: repeats must be at least 1");
    expect_refused("[bench]\nprompt_len = 40000\ngen_len = 1000\n", ":14: prompt_len + gen_len = 41000 is past the teacher's 40960 positions");
    expect_refused("[prune]\ncalib_windows = 0\n", ":13: calib_windows must be at least 1");
    expect_refused("[eval]\nppl_seq_len = 1\n", ":13: ppl_seq_len must be at least 2");
    expect_refused("[distill]\nseq_len = 50000\n", ":13: seq_len 50000 is past the teacher's 40960 positions");
    expect_refused("[distill]\nseq_len = 500\n[matrix]\nstrategies = bi\nlayers = 2\n", "fewer than the 1001 its settings need");
    expect_refused("[teacher]\ntokenizer = /nonexistent/tok\n", ":13: '/nonexistent/tok' does not exist");
    expect_refused("[distill]\ntokens = 1e300\n", ":13: tokens = 1e+300 is");
    expect_refused("[distill]\nlr = nan\n", ":13: lr = 'nan' is not a finite non-negative number");
    expect_refused("[distill]\nclip = inf\n", ":13: clip = 'inf' is not a finite");
    expect_refused("[distill]\nlr = 0\n", ":13: lr must be positive");
    expect_refused("[matrix]\nstrategies = bi, last, block, ppl\nlayers = 1, 2, 3, 4\nffn = 8, 16, 32, 64, 96, 128\n"
                   "hidden = 8, 16, 32, 48, 64\nheads = 2, 4\nkv_heads = 1, 2\n",
                   ":13: the matrix makes up to 1921 cells, more than max_cells");
    expect_refused("[distill]\nloss = bogus\n", ":13: loss 'bogus': expected kl, rkl, topk:K");
    expect_refused("[distill]\nloss = topk:8x\n", ":13: loss 'topk:8x'");
    expect_refused("[distill]\nkd_temp = 0\n", ":13: kd_temp 0 must be in");
    expect_refused("[distill]\nlr = 1e-4\nmin_lr = 1e-3\n", ":14: min_lr 0.001 is above lr 0.0001");
    expect_refused("[eval]\nmmlu = /nonexistent/mmlu\n", ":13: '/nonexistent/mmlu' does not exist");
    expect_refused("[baseline.x]\nmodel = /nonexistent/ckpt\n", ":13: baseline checkpoint '/nonexistent/ckpt' has no config.json");
    expect_refused("[matrix]\nlayers = 2, x\n", ":13: layers: 'x' is not a non-negative integer");
    expect_refused("[bench]\nprecision = q8\n", ":13: precision 'q8' with device cpu: the cpu backend runs fp32, bf16 or f16");
    expect_refused("[sweep]\ndevice = tpu\n", ":13: device must be cpu or cuda, not 'tpu'");
    expect_refused("[sweep]\ndevice = cuda\n[bench]\nprecision = fp32\n", ":15: precision 'fp32' with device cuda");
    // rounds and teacher correction
    expect_refused("[matrix]\nstrategies = bi\nlayers = 2>3\n", ":14: layers: rounds must shrink: 3 after 2");
    expect_refused("[matrix]\nstrategies = bi\nlayers = 4>2\n", ":14: layers: the first round's 4 does not prune the teacher's 4");
    expect_refused("[matrix]\nstrategies = bi\nlayers = 3>2\nffn = 128>96>64\n", ":15: layers and ffn both have chains of rounds, of "
                   "different lengths");
    expect_refused("[matrix]\nstrategies = bi\nlayers = 3>2, 2>1\nffn = 128>96\nhidden = 48>32>16\n", "both have chains of rounds");
    expect_refused("[matrix]\nstrategies = bi\nlayers = 3>2\nheads = 3>2\n", ":15: cell bi-L3>2-heads3>2, round 1: --heads 3 is not a "
                   "multiple of the 2 KV groups");
    expect_refused("[matrix]\nstrategies = bi\nlayers = 3>2, 3>2\n", ":14: layers: 2 is listed twice");
    expect_refused("[bench]\nbatch = 2>1\n", ":13: batch: '2>1': only [matrix] values take rounds");
    expect_refused("[matrix]\nstrategies = bi\nlayers = 3>2>1>0\n", ":14: layers: '3>2>1>0' ends a round at 0, which is no layer count");
    expect_refused("[distill]\nround_steps = 2\n[matrix]\nstrategies = bi\nlayers = 2\n", ":13: round_steps: no cell has rounds");
    expect_refused("[teacher]\ncorrect_lr = 1e-4\n", ":13: correct_lr without correct_steps");
    expect_refused("[teacher]\ncorrect_steps = 3\n", ":13: teacher correction serves the pruned cells: the sweep has no [matrix]");
}

Test(sweep, token_budget_sets_the_steps) {
    write_cfg("[distill]\ntokens = 10000\nseq_len = 16\nbatch = 4\ngrad_accum = 2\n");
    SweepConfig c;
    Err e;
    cr_assert_eq(sweep_config_load(cfg_path, &c, &e), 0, "%s", e.msg);
    cr_expect_eq(c.steps, 79, "ceil(10000 / (16 * 4 * 2))");
}

Test(sweep, cli_dry_run_and_slurm_script) {
    write_cfg(TINY_STAGES "[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n\n[matrix]\nstrategies = bi\nlayers = 2, 3\n\n"
              "[slurm]\ntime = 02:00:00\nmem = 8G\npartition = debug\ncpus_per_task = 2\n");
    char args[2048], out[512], path[700];
    snprintf(out, sizeof out, "%s/dry.txt", dir);
    snprintf(args, sizeof args, "sweep %s --dry-run 2>/dev/null", cfg_path);
    cr_assert_eq(run_arbor(args, out), 0);
    Err e;
    char* text = file_read_all(out, NULL, &e);
    cr_assert_not_null(text);
    cr_expect(contains(text, "teacher") && contains(text, "bi-L2") && contains(text, "bi-L3"), "%s", text);
    free(text);
    // running options with a plan-only mode are refused, not ignored
    snprintf(args, sizeof args, "sweep %s --dry-run --force 2>/dev/null", cfg_path);
    cr_expect_eq(run_arbor(args, "/dev/null"), 2);
    snprintf(args, sizeof args, "sweep %s --dry-run --emit-slurm 2>/dev/null", cfg_path);
    cr_expect_eq(run_arbor(args, "/dev/null"), 2);
    // the script is written from another folder: every path in it is absolute
    char cwd[1024];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir("/"), 0);
    snprintf(args, sizeof args, "sweep %s --emit-slurm", cfg_path);
    int rc = run_arbor(args, "/dev/null");
    cr_assert_eq(chdir(cwd), 0);
    cr_assert_eq(rc, 0);
    snprintf(path, sizeof path, "%s/results/t/sweep.slurm", dir);
    char* script = file_read_all(path, NULL, &e);
    cr_assert_not_null(script, "%s", e.msg);
    cr_expect(contains(script, "#SBATCH --array=1-3") && contains(script, cfg_path), "%s", script);
    cr_expect(contains(script, "#SBATCH --time=02:00:00\n") && contains(script, "#SBATCH --mem=8G\n") &&
                  contains(script, "#SBATCH --partition=debug\n") && contains(script, "#SBATCH --cpus-per-task=2\n") &&
                  !contains(script, "--gres"),
              "%s", script);
    cr_expect(contains(script, "cd '/'\n") && contains(script, "exec '/"), "absolute binary, the folder it was prepared in: %s", script);
    // [sweep] out is absolute here: it is used as written, never under the working folder (that gave '/x//x/...')
    char want[700];
    snprintf(want, sizeof want, "#SBATCH --output=%s/results/t/slurm-%%A_%%a.log\n", dir);
    cr_expect(contains(script, want), "%s in %s", want, script);
    snprintf(want, sizeof want, "'%s/results/t/cells.txt'", dir);
    cr_expect(contains(script, want) && !contains(script, "//"), "%s", script);
    free(script);
    // submit.sh: the array, then collect as a job that waits for every task to succeed
    snprintf(path, sizeof path, "%s/results/t/submit.sh", dir);
    char* submit = file_read_all(path, NULL, &e);
    cr_assert_not_null(submit, "%s", e.msg);
    snprintf(want, sizeof want, "job=$(sbatch --parsable '%s/results/t/sweep.slurm')", dir);
    cr_expect(contains(submit, want) && contains(submit, "--dependency=afterok\"$after\"") && contains(submit, "collect '"),
              "%s", submit);
    free(submit);
    // a relative out is under the folder the script was prepared in, once
    SweepConfig rel;
    cr_assert_eq(sweep_config_load(cfg_path, &rel, &e), 0, "%s", e.msg);
    snprintf(rel.out, sizeof rel.out, "res");
    Cell* rel_cells;
    int rel_n;
    sweep_cells(&rel, &rel_cells, &rel_n);
    static char rel_script[65536];
    cr_assert_eq(sweep_slurm_script(&rel, rel_cells, rel_n, 1, "cells.txt", "/opt/arbor", "/x/s.ini", "/x", rel_script, sizeof rel_script, &e), 0);
    cr_expect(contains(rel_script, "--output=/x/res/t/slurm-") && contains(rel_script, "'/x/res/t/cells.txt'"), "%s", rel_script);
    free(rel_cells);
    snprintf(path, sizeof path, "%s/results/t/cells.txt", dir);
    char* ids = file_read_all(path, NULL, &e);
    cr_assert_not_null(ids);
    int lines = 0;
    for (char* p = ids; *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, 3);
    char cell2[17];
    snprintf(cell2, sizeof cell2, "%.16s", strchr(ids, '\n') + 1);
    free(ids);
    // the script runs as array tasks would, two at once: tasks 2 and 3 are the second and third cells (both
    // need the teacher's reference measurement and write the same manifest)
    snprintf(args, sizeof args, "cd /tmp && (SLURM_ARRAY_TASK_ID=2 bash %s/results/t/sweep.slurm > /dev/null 2>&1 & "
             "SLURM_ARRAY_TASK_ID=3 bash %s/results/t/sweep.slurm > /dev/null 2>&1; a=$?; wait $!; b=$?; exit $((a | b)))", dir, dir);
    cr_assert_eq(system(args), 0);
    at(path, sizeof path, "results", cell2, "eval", "metrics.json");
    cr_expect_eq(access(path, F_OK), 0, "task 2 ran cell %s", cell2);
    at(path, sizeof path, "results", cell2, "bench", "metrics.json");
    cr_expect_eq(access(path, F_OK), 0, "and benched it beside the teacher");
    snprintf(args, sizeof args, "SLURM_ARRAY_TASK_ID=9 bash %s/results/t/sweep.slurm > /dev/null 2>&1", dir);
    cr_expect_neq(system(args), 0, "a task past the cells fails");
    // with device = cuda the tasks ask for a GPU
    SweepConfig c;
    cr_assert_eq(sweep_config_load(cfg_path, &c, &e), 0, "%s", e.msg);
    c.device = DEVICE_CUDA;
    Cell* cells;
    int n;
    sweep_cells(&c, &cells, &n);
    static char buf[65536];
    cr_assert_eq(sweep_slurm_script(&c, cells, n, 1, "cells.txt", "/opt/arbor", "/x/s.ini", "/x", buf, sizeof buf, &e), 0, "%s", e.msg);
    cr_expect(contains(buf, "#SBATCH --gres=gpu:1\n"), "%s", buf);
    cells[2] = cells[1];
    cr_expect_eq(sweep_slurm_script(&c, cells, n, 1, "cells.txt", "/opt/arbor", "/x/s.ini", "/x", buf, sizeof buf, &e), -1);
    cr_expect(contains(e.msg, "the same cell"), "%s", e.msg);
    free(cells);
}

Test(sweep, stages_run_once_resume_after_a_kill_and_collect) {
    write_cfg("[distill]\nsteps = 2\nseq_len = 16\nbatch = 2\n\n[prune]\ncalib_windows = 4\nseq_len = 16\n\n"
              "[eval]\nppl_seq_len = 16\nppl_tokens = 128\n\n[bench]\nprompt_len = 8\ngen_len = 2\nrepeats = 1\n\n"
              "[matrix]\nstrategies = bi\nlayers = 2\nffn = 0, 96\n\n[scratch]\nenabled = true\n");
    FILE* f = fopen(cfg_path, "a");
    fprintf(f, "\n[data]\nval = %s\n", shard);  // a second [data] section adds to the first
    fclose(f);
    SweepConfig c;
    Err e;
    cr_assert_eq(sweep_config_load(cfg_path, &c, &e), 0, "%s", e.msg);
    Cell* cells;
    int n;
    sweep_cells(&c, &cells, &n);
    cr_assert_eq(n, 5, "teacher, 2 pruned, 2 scratch");
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    char path[1024], results[512];
    snprintf(results, sizeof results, "%s/results/t/results.csv", dir);
    char* first = file_read_all(results, NULL, &e);
    cr_assert_not_null(first, "%s", e.msg);
    int lines = 0;
    for (char* p = first; *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, 6, "header + 5 cells: %s", first);
    cr_expect(contains(first, "bi-L2-ffn96,pruned,bi,"), "%s", first);
    // a second run finds every stage done and changes nothing
    at(path, sizeof path, "results", cells[1].id, "distill", "metrics.json");
    char* before = file_read_all(path, NULL, &e);
    cr_assert_not_null(before, "%s", e.msg);
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    char* after = file_read_all(path, NULL, &e);
    cr_expect_str_eq(after, before, "a done stage is not re-run");
    free(after);
    // a kill during bench: its folder never renamed into the store, a half-written KEY.tmp left behind
    at(path, sizeof path, "results", cells[1].id, "bench", "");
    cr_assert_eq(remove_tree(path, &e), 0);
    strcat(path, ".tmp");
    cr_assert_eq(make_dirs(path, &e), 0);
    cr_assert_eq(sweep_run(&c, cells, n, cells[1].id, NULL, 0, 0, &e), 0, "%s", e.msg);
    cr_expect_neq(access(path, F_OK), 0, "the half-written stage is gone");
    at(path, sizeof path, "results", cells[1].id, "bench", "metrics.json");
    cr_expect_eq(access(path, F_OK), 0, "bench ran again");
    at(path, sizeof path, "results", cells[1].id, "distill", "metrics.json");
    after = file_read_all(path, NULL, &e);
    cr_expect_str_eq(after, before, "the stages before it were kept");
    free(after);
    // a changed eval setting re-runs eval (and what follows), not pruning or distillation
    c.ppl_tokens = 64;
    cr_assert_eq(sweep_run(&c, cells, n, cells[1].id, NULL, 0, 0, &e), 0, "%s", e.msg);
    after = file_read_all(path, NULL, &e);
    cr_expect_str_eq(after, before);
    free(after);
    // --stage: only bench, forced; the earlier stages stay as they are
    cr_assert_eq(sweep_run(&c, cells, n, cells[1].id, "bench", 1, 0, &e), 0, "%s", e.msg);
    after = file_read_all(path, NULL, &e);
    cr_expect_str_eq(after, before);
    free(after);
    cr_expect_eq(sweep_run(&c, cells, n, NULL, "polish", 0, 0, &e), -1);
    cr_expect(contains(e.msg, "--stage polish: not a stage"), "%s", e.msg);
    at(path, sizeof path, "results", cells[1].id, "distill", "metrics.json");
    cr_assert_eq(unlink(path), 0);
    cr_expect_eq(sweep_run(&c, cells, n, cells[1].id, "bench", 0, 0, &e), -1);
    cr_expect(contains(e.msg, "--stage bench needs stage distill done"), "%s", e.msg);
    cr_expect_eq(sweep_run(&c, cells, n, "nosuchcell", NULL, 0, 0, &e), -1);
    cr_expect(contains(e.msg, "no such cell"), "%s", e.msg);
    // collect rebuilds the same table from the folders
    char rdir[512];
    snprintf(rdir, sizeof rdir, "%s/results/t", dir);
    cr_assert_eq(sweep_collect(rdir, &e), 0, "%s", e.msg);
    // every stage records the build that computed it, and results.csv carries it
    char* table = file_read_all(results, NULL, &e);
    cr_assert_not_null(table, "%s", e.msg);
    cr_expect(contains(table, "prune.arbor_commit,distill.arbor_commit,train.arbor_commit,eval.arbor_commit,bench.arbor_commit"),
              "%s", table);
    free(table);
    at(path, sizeof path, "results", cells[2].id, "prune", "metrics.json");
    cJSON* pm = read_json(path);
    const char* commit = cJSON_GetObjectItem(pm, "arbor_commit")->valuestring;
    cr_expect(strlen(commit) >= 7, "'%s'", commit);
    at(path, sizeof path, "results", cells[2].id, "bench", "metrics.json");
    cJSON* bm = read_json(path);
    cr_expect_str_eq(cJSON_GetObjectItem(bm, "arbor_commit")->valuestring, commit);
    // a result another build computed is used, and the run says so
    cJSON_ReplaceItemInObject(pm, "arbor_commit", cJSON_CreateString("0123456789ab"));
    at(path, sizeof path, "results", cells[2].id, "prune", "");
    cr_assert_eq(json_write_atomic(path, "metrics.json", pm, &e), 0, "%s", e.msg);
    cJSON_Delete(bm);
    char args[2048], err_path[600];
    snprintf(err_path, sizeof err_path, "%s/sweep_err.txt", dir);
    snprintf(args, sizeof args, "sweep %s 2> %s", cfg_path, err_path);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    char* said = file_read_all(err_path, NULL, &e);
    cr_assert_not_null(said, "%s", e.msg);
    cr_expect(contains(said, "prune: reused ") && contains(said, " (by arbor 0123456789ab; this build is "), "%s", said);
    free(said);
    free(before);
    free(first);
    free(cells);
}

static void expect_bad_input_helper(const char* args) {
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "%s 2>/dev/null", args);
    cr_expect_eq(run_arbor(cmd, "/dev/null"), 2, "arbor %s should exit 2", args);
}

Test(sweep, plot_draws_frontiers_from_a_results_table) {
    char csv[512], args[2048], path[700];
    snprintf(csv, sizeof csv, "%s/results.csv", dir);
    write_text(csv, "id,label,kind,strategy,params,eval.mmlu_micro,eval.mmlu_ci_low,eval.mmlu_ci_high,eval.val_nll,"
                    "bench.decode_tps_b1,bench.decode_tps_b1_min,bench.decode_tps_b1_max,eval.mmlu_n\n"
                    "a,teacher,teacher,,8000000,0.80,,,1.0,100,,,100\n"
                    "b,bi-L3,pruned,bi,6000000,0.70,0.65,0.75,1.2,150,140,160,100\n"
                    "c,bi-L2,pruned,bi,4000000,0.50,,,1.5,180,,,100\n"
                    "d,scratch-L3,scratch,,6000000,0.40,,,1.9,150,,,100\n"
                    "e,unfinished,pruned,bi,4000000,,,,,,,,\n");
    char plot_out[600], plot_err[600];
    snprintf(plot_out, sizeof plot_out, "%s/plot.out", dir);
    snprintf(plot_err, sizeof plot_err, "%s/plot.err", dir);
    snprintf(args, sizeof args, "plot %s 2>%s", csv, plot_err);
    cr_assert_eq(run_arbor(args, plot_out), 0);
    Err pe;
    char* said = file_read_all(plot_err, NULL, &pe);
    cr_assert_not_null(said);
    cr_expect_str_eq(said, "", "nothing on the terminal but the figures' paths: %s", said);
    free(said);
    const char* files[] = {"frontier_speed.png", "frontier_speed.pdf", "frontier_params.png", "frontier_params.pdf"};
    Err e;
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        size_t len;
        char* bytes = file_read_all(path, &len, &e);
        cr_assert_not_null(bytes, "%s", e.msg);
        cr_expect(len > 1000, "%s has %zu bytes", files[i], len);
        cr_expect(i % 2 ? memcmp(bytes, "%PDF", 4) == 0 : memcmp(bytes, "\x89PNG", 4) == 0, "%s format", files[i]);
        free(bytes);
    }
    // the speed frontier: teacher (slow, best), bi-L3, bi-L2 (fast); the scratch model is dominated
    snprintf(path, sizeof path, "%s/frontier_speed_pareto.dat", dir);
    char* pareto = file_read_all(path, NULL, &e);
    cr_assert_not_null(pareto);
    cr_expect(!strncmp(pareto, "100 80 \"teacher\" 2 ", 19) && contains(pareto, "\n150 70 \"bi-L3\" 0 ") &&
                  contains(pareto, "\n180 50 \"bi-L2\" 0 ") && count_char(pareto, '\n') == 3,
              "%s", pareto);
    free(pareto);
    // error bars: the speed's range over rounds and the accuracy's interval, as given
    snprintf(path, sizeof path, "%s/frontier_speed.dat", dir);
    char* points = file_read_all(path, NULL, &e);
    cr_assert_not_null(points);
    cr_expect(contains(points, "150 70 \"bi-L3\" 0 140 160 65 75 "), "%s", points);
    double xmin, xmax, ymin, ymax;  // axes from the data: speeds from 0 up, accuracy within 0..100
    cr_assert_eq(sscanf(points, "# axes %lf %lf %lf %lf", &xmin, &xmax, &ymin, &ymax), 4, "%s", points);
    cr_expect(xmin >= 0 && xmin < 100 && xmax > 180 && ymin >= 0 && ymin < 50 && ymax <= 100 && ymax > 80,
              "axes %g..%g x %g..%g", xmin, xmax, ymin, ymax);
    free(points);
    // the article: tables and figures from this table, built with pdflatex
    if (system("command -v pdflatex > /dev/null") == 0) {
        snprintf(args, sizeof args, "paper %s 2>/dev/null", dir);
        cr_expect_eq(run_arbor(args, "/dev/null"), 2, "no sweep.json: refused");
        // what the sweep was (arbor sweep writes this): every sentence of the paper follows it
        snprintf(path, sizeof path, "%s/sweep.json", dir);
        write_text(path, "{\"name\": \"t\", \"teacher\": {\"model\": \"ckpt/Big-8B\", \"params\": 8e6, \"layers\": 4},"
                         "\"matrix\": {\"strategies\": [\"bi\"], \"layers\": [2, 3], \"ffn\": [], \"hidden\": [], \"heads\": [],"
                         " \"kv_heads\": [], \"pruned_cells\": 2, \"scratch_cells\": 1, \"baselines\": 0},"
                         "\"prune\": {\"calib\": \"c.shard\", \"windows\": 8, \"seq_len\": 64, \"aggregation\": \"l2\"},"
                         "\"distill\": {\"loss\": \"rkl\", \"loss_text\": \"reverse KL(student || teacher) at temperature 2\","
                         " \"data\": \"d.shard\", \"data_tokens\": 1e6, \"steps\": 10, \"tokens_per_step\": 4096, \"tokens\": 40960,"
                         " \"lr\": 1e-4, \"min_lr\": 1e-5, \"warmup\": 2, \"schedule\": \"cosine\", \"seed\": 0},"
                         "\"eval\": {\"mmlu\": true, \"benchmark\": \"MMLU\", \"benchmark_text\": \"the 57-subject MMLU benchmark\","
                         " \"synthetic\": false, \"shots\": 3, \"subjects\": \"all\", \"limit\": 0},"
                         "\"bench\": {\"batch\": [1], \"prompt_len\": 16, \"gen_len\": 8, \"rounds\": 5, \"device\": \"cpu\","
                         " \"precision\": \"fp32\", \"threads\": 2, \"wait_policy\": \"default\", \"cpus\": 2}}");
        snprintf(args, sizeof args, "paper %s", dir);
        cr_assert_eq(run_arbor(args, "/dev/null"), 0);
        snprintf(path, sizeof path, "%s/paper/paper.pdf", dir);
        size_t len;
        char* pdf = file_read_all(path, &len, &e);
        cr_assert_not_null(pdf, "%s", e.msg);
        cr_expect(len > 10000 && memcmp(pdf, "%PDF", 4) == 0, "paper.pdf: %zu bytes", len);
        free(pdf);
        snprintf(path, sizeof path, "%s/paper/results_table.tex", dir);
        char* table = slurp(path);
        cr_expect(contains(table, "bi-L3 & pruned & 6.000 & ") && contains(table, "70.0\\%"), "%s", table);
        free(table);
        snprintf(path, sizeof path, "%s/paper/abstract.tex", dir);
        char* abstract = slurp(path);
        cr_expect(contains(abstract, "Big-8B") && contains(abstract, "reverse KL") && contains(abstract, "3-shot") &&
                      contains(abstract, "100 questions") && contains(abstract, "bi-L3") && !contains(abstract, "synthetic"),
                  "the abstract follows sweep.json and results.csv: %s", abstract);
        free(abstract);
        snprintf(path, sizeof path, "%s/paper/limitations.tex", dir);
        char* limits = slurp(path);
        cr_expect(contains(limits, "medians of 5 rounds") && contains(limits, "100 questions"), "%s", limits);
        free(limits);
        snprintf(path, sizeof path, "%s/paper/paper.tex", dir);
        char* tex = slurp(path);
        cr_expect(!contains(tex, "0--5") && !contains(tex, "Kullback"), "no fixed text that can contradict the run");
        free(tex);
    } else {
        cr_log_warn("pdflatex not installed (scripts/install_deps.sh): arbor paper not exercised");
    }
    write_text(csv, "id,label\n\"unterminated,x\n");
    snprintf(args, sizeof args, "plot %s", csv);
    expect_bad_input_helper(args);
}

Test(sweep, the_reproduction_config_parses) {
    // configs/qwen3-8b-to-6b.ini names relative paths: lay out stand-ins in a temp dir and read it there
    char cwd[1024], cfg[1200];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(cfg, sizeof cfg, "%s/../../configs/qwen3-8b-to-6b.ini", ARBOR_FIXTURES);
    cr_assert_eq(chdir(dir), 0);
    Err e;
    // nothing fetched yet: the lenient reading (--dry-run) lists the cells and says what it skipped
    SweepConfig c;
    int rc = sweep_config_load_lenient(cfg, &c, &e);
#ifndef ARBOR_HAVE_NCCL  // its cluster layout (12 nodes x 8 GPUs) needs NCCL: refused with the reason
    cr_assert_eq(chdir(cwd), 0);
    cr_expect_eq(rc, -1);
    cr_expect(contains(e.msg, "96 GPU ranks: data parallel on the GPU needs NCCL"), "%s", e.msg);
    return;
#endif
    cr_expect_eq(rc, 0, "%s", e.msg);
    cr_expect(contains(c.skipped, "Qwen3-8B") && contains(c.skipped, "skipped") && contains(c.skipped, "calib.shard"), "%s",
              c.skipped);
    cr_expect_eq(sweep_config_load(cfg, &c, &e), -1, "the strict reading refuses to run without the teacher");
    // stand-ins of the right shapes: the strict reading checks them all
    const char* dirs[] = {"checkpoints/Qwen3-8B", "checkpoints/Qwen3-4B", "data/mmlu"};
    for (int i = 0; i < 3; i++) cr_assert_eq(make_dirs(dirs[i], &e), 0);
    ModelConfig big;
    cr_assert_eq(config_preset("qwen3-8b", &big, &e), 0);
    cr_assert_eq(config_save(&big, "checkpoints/Qwen3-8B", "bfloat16", &e), 0, "%s", e.msg);
    cr_assert_eq(config_preset("qwen3-4b", &big, &e), 0);
    cr_assert_eq(config_save(&big, "checkpoints/Qwen3-4B", "bfloat16", &e), 0, "%s", e.msg);
    write_text("checkpoints/Qwen3-8B/tokenizer.json", "{}");
    const char* all[MMLU_N_SUBJECTS];  // every subject's files: the strict reading checks them before any work
    for (int i = 0; i < MMLU_N_SUBJECTS; i++) all[i] = mmlu_subject_name(i);
    mmlu_stand_in("data/mmlu", all, MMLU_N_SUBJECTS);
    write_test_shard("data/calib.shard", 5000, 1000, 1, NULL);
    write_test_shard("data/distill.shard", 9000, 1000, 2, NULL);
    write_test_shard("data/val.shard", 5000, 1000, 3, NULL);
    rc = sweep_config_load(cfg, &c, &e);
    cr_assert_eq(chdir(cwd), 0);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_expect_eq(sweep_distill_ranks(&c), 96);
    cr_expect_str_eq(c.skipped, "");
    cr_expect_eq(c.steps, 28611, "90e9 tokens / (4096 x 8 x 96) per step");
    cr_expect_eq(c.shots, 5);
    cr_expect_str_eq(c.loss, "kl");
    Cell* cells;
    int n;
    sweep_cells(&c, &cells, &n);
    cr_expect_eq(n, 3);
    cr_expect_str_eq(cells[1].label, "baseline-qwen3-4b");
    cr_expect_str_eq(cells[2].label, "bi-L24");
    free(cells);
}

// the key of a cell's stage in the manifest of the last run; the stage must be in the store
static char* read_done(const char* cell_id, const char* stage_name) {
    char path[2700];
    at(path, sizeof path, "results", cell_id, stage_name, "metrics.json");
    cr_assert_eq(access(path, F_OK), 0, "%s %s is in the store", cell_id, stage_name);
    *strrchr(path, '/') = 0;
    return strdup(strrchr(path, '/') + 1);
}

Test(sweep, replaced_inputs_rerun_the_stages_that_read_them) {
    SweepConfig c;
    Err e;
    int n;
    Cell* cells = sweep_from(TINY_STAGES "[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n\n[matrix]\nstrategies = bi\nlayers = 2\n", &c,
                             2, &n);
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    char* prune0 = read_done(cells[1].id, "prune");
    char* distill0 = read_done(cells[1].id, "distill");
    char* teacher_eval0 = read_done(cells[0].id, "eval");
    // the distillation shard rewritten in place (same path, same size): distill re-runs, pruning does not
    write_test_shard(shard, 1000, 512, 2, NULL);
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    char* prune1 = read_done(cells[1].id, "prune");
    char* distill1 = read_done(cells[1].id, "distill");
    (void)prune1;
    cr_expect_str_neq(distill1, distill0, "distill read the shard, so it re-ran");
    // (the calibration shard is the same file here, so pruning re-ran too)
    cr_expect_str_neq(prune1, prune0);
    // the teacher replaced by another of the same shape: everything that read it re-runs
    ModelConfig mc;
    config_preset("tiny", &mc, &e);
    char rm[700];
    snprintf(rm, sizeof rm, "rm -rf %s", teacher);
    cr_assert_eq(system(rm), 0);
    cr_assert_eq(checkpoint_write_random(&mc, 99, teacher, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, &e), 0, "%s", e.msg);
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    char* prune2 = read_done(cells[1].id, "prune");
    char* teacher_eval2 = read_done(cells[0].id, "eval");
    cr_expect_str_neq(prune2, prune1, "a new teacher re-prunes");
    cr_expect_str_neq(teacher_eval2, teacher_eval0, "and re-evaluates the teacher cell");
    // nothing changed: nothing re-runs
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    char* prune3 = read_done(cells[1].id, "prune");
    cr_expect_str_eq(prune3, prune2);
    char memo[700];
    snprintf(memo, sizeof memo, "%s/results/t/content_hashes.tsv", dir);
    cr_expect_eq(access(memo, F_OK), 0, "the hash memo is kept beside the results");
    free(prune0), free(distill0), free(teacher_eval0), free(prune1), free(distill1), free(prune2), free(teacher_eval2);
    free(prune3);
    free(cells);
}

// ---- no dead keys: every key either changes what some stage runs (its plan, hence its cache key),
// changes the cells or where they go, or is refused.

typedef struct {
    const char *section, *key, *base, *alt;
    const char* reruns;  // what changing base to alt re-runs (plan_diff), or "refused"
} KeyCase;

static void render(char* out, size_t n, const KeyCase* cases, int n_cases, int changed, const char* baseline_model) {
    size_t len = 0;
    const char* sections[] = {"sweep", "teacher", "data", "prune", "distill", "eval", "bench", "matrix", "scratch", "slurm", "hetero"};
    for (int s = 0; s < 11; s++) {
        len += (size_t)snprintf(out + len, n - len, "[%s]\n", sections[s]);
        for (int i = 0; i < n_cases; i++)
            if (!strcmp(cases[i].section, sections[s]) && cases[i].base)
                len += (size_t)snprintf(out + len, n - len, "%s = %s\n", cases[i].key, i == changed ? cases[i].alt : cases[i].base);
        for (int i = 0; i < n_cases; i++)  // keys absent from the base config, set only when changed
            if (!strcmp(cases[i].section, sections[s]) && !cases[i].base && i == changed)
                len += (size_t)snprintf(out + len, n - len, "%s = %s\n", cases[i].key, cases[i].alt);
    }
    snprintf(out + len, n - len, "[baseline.b]\nmodel = %s\n", baseline_model);
}

// the plan of config c (its cells and every stage's key, inputs hashed as a run would)
static void plan_of(const SweepConfig* c, SweepPlan* p) {
    Cell* cells;
    int n;
    Err e;
    sweep_cells(c, &cells, &n);
    InputHashes in;
    cr_assert_eq(sweep_hash_inputs(c, 0, &in, &e), 0, "%s", e.msg);
    sweep_plan_build(c, cells, n, &in, p);
    free(cells);
}

// What running config b after config a would run, as "LABEL:stage,stage ..." for the cells whose stages'
// keys are not in a's plan ("+LABEL" a new cell, "-LABEL" one gone), "folder" when the sweep moved,
// "slurm" when the job script changed; "nothing" when b reuses every stage of a.
static char* plan_diff(const SweepConfig* a, const SweepConfig* b) {
    SweepPlan pa, pb;
    plan_of(a, &pa);
    plan_of(b, &pb);
    size_t cap = 1 << 16, len = 0;
    char* out = malloc(cap);
    out[0] = 0;
    if (strcmp(pa.dir, pb.dir)) len += (size_t)snprintf(out + len, cap - len, " folder");
    for (int i = 0; i < pb.n; i++) {
        const PlanCell* cb = &pb.cells[i];
        const PlanCell* ca = plan_cell(&pa, cb->cell.label);
        if (!ca) {
            len += (size_t)snprintf(out + len, cap - len, " +%s", cb->cell.label);
            continue;
        }
        int first = 1;
        for (int s = 0; s < cb->n_stages; s++) {
            const PlanStage* sa = plan_stage(ca, cb->stages[s].name);
            if (sa && !strcmp(sa->key, cb->stages[s].key)) continue;
            len += (size_t)snprintf(out + len, cap - len, "%s%s", first ? " " : ",", first ? cb->cell.label : "");
            len += (size_t)snprintf(out + len, cap - len, "%s%s", first ? ":" : "", cb->stages[s].name);
            first = 0;
        }
    }
    for (int i = 0; i < pa.n; i++)
        if (!plan_cell(&pb, pa.cells[i].cell.label)) len += (size_t)snprintf(out + len, cap - len, " -%s", pa.cells[i].cell.label);
    static char sa[65536], sb[65536];
    Err e;
    Cell *ca, *cb;
    int na, nb;
    sweep_cells(a, &ca, &na);
    sweep_cells(b, &cb, &nb);
    int ra = sweep_slurm_script(a, ca, na, 1, "cells.txt", "/opt/arbor", "/x/sweep.ini", "/x", sa, sizeof sa, &e);
    int rb = sweep_slurm_script(b, cb, nb, 1, "cells.txt", "/opt/arbor", "/x/sweep.ini", "/x", sb, sizeof sb, &e);
    if (ra != rb || (ra == 0 && strcmp(sa, sb))) len += (size_t)snprintf(out + len, cap - len, " slurm");
    free(ca), free(cb);
    sweep_plan_free(&pa), sweep_plan_free(&pb);
    if (!len) snprintf(out, cap, " nothing");
    memmove(out, out + 1, strlen(out));
    return out;
}

Test(sweep, every_key_changes_what_runs_or_is_refused) {
    char other_teacher[600], other_shard[600], mmlu[600], other_mmlu[600], tok[600], other_tok[600];
    Err e;
    snprintf(other_teacher, sizeof other_teacher, "%s/teacher2", dir);
    ModelConfig mc;
    config_preset("tiny", &mc, &e);
    cr_assert_eq(checkpoint_write_random(&mc, 2, other_teacher, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, &e), 0, "%s", e.msg);
    snprintf(other_shard, sizeof other_shard, "%s/other.shard", dir);
    write_test_shard(other_shard, 1000, 512, 3, NULL);
    snprintf(mmlu, sizeof mmlu, "%s/mmlu", dir);
    snprintf(other_mmlu, sizeof other_mmlu, "%s/mmlu2", dir);
    snprintf(tok, sizeof tok, "%s/tok", dir);
    snprintf(other_tok, sizeof other_tok, "%s/tok2", dir);
    const char* dirs[] = {mmlu, other_mmlu, tok, other_tok};
    for (int i = 0; i < 4; i++) cr_assert_eq(make_dirs(dirs[i], &e), 0);
    char other_subject[700];  // MMLU stand-ins: the subjects the cases ask for, and content that differs
    snprintf(other_subject, sizeof other_subject, "%s/README", other_mmlu);
    write_text(other_subject, "another benchmark");
    const char* const subjects[] = {"anatomy", "virology"};
    mmlu_stand_in(mmlu, subjects, 2);
    mmlu_stand_in(other_mmlu, subjects, 2);
    for (int i = 2; i < 4; i++) {  // tokenizer stand-ins: the config checks only that the files are there
        char p[700];
        snprintf(p, sizeof p, "%s/tokenizer.json", dirs[i]);
        write_text(p, i == 2 ? "{}" : "{ }");
    }
    char results[600], other_results[600];
    snprintf(results, sizeof results, "%s/results", dir);
    snprintf(other_results, sizeof other_results, "%s/results2", dir);
    // what each key re-runs when changed from base to alt: exactly the stages that read it (a matrix key changes
    // the cells instead, a [slurm] key the job script), or it is refused
#define EVALS "teacher:eval baseline-b:eval bi-L2:eval_pruned,eval scratch-L2:eval"
#define BENCHES "teacher:bench baseline-b:bench bi-L2:bench scratch-L2:bench"
#define STUDENTS "bi-L2:distill,eval,bench scratch-L2:train,eval,bench"
#define PRUNED "bi-L2:prune,eval_pruned,distill,eval,bench"
#define KD "bi-L2:distill,eval,bench"
    const KeyCase cases[] = {
        {"sweep", "name", "t", "t2", "folder slurm"},
        {"sweep", "max_cells", NULL, "2", "refused"},
        {"sweep", "out", results, other_results, "folder slurm"},
        {"sweep", "device", "cpu", "cuda", "refused"},
        {"teacher", "model", teacher, other_teacher, "teacher:eval,bench baseline-b:bench bi-L2:prune,eval_pruned,distill,eval,bench scratch-L2:init,train,eval,bench"},
        {"teacher", "tokenizer", tok, other_tok, EVALS},
        // correct_lr and round_steps refine a setting absent here (refused alone); rounds_and_correction_settings_
        // reach_their_stages shows what they re-run beside it
        {"teacher", "correct_steps", NULL, "2", "+teacher-corrected bi-L2:correct,prune,eval_pruned,distill,eval,bench slurm"},
        {"teacher", "correct_lr", NULL, "1e-4", "refused"},
        {"distill", "round_steps", NULL, "1", "refused"},
        {"data", "calib", shard, other_shard, PRUNED},
        {"data", "distill", shard, other_shard, STUDENTS},
        {"data", "val", shard, other_shard, EVALS},
        {"prune", "calib_windows", "4", "8", PRUNED},
        {"prune", "seq_len", "16", "32", PRUNED},
        {"prune", "aggregation", "l2", "mean", PRUNED},
        {"prune", "ablation_windows", "0", "2", PRUNED},
        {"prune", "bi_after_norm", "false", "true", PRUNED},
        {"distill", "steps", "2", "3", STUDENTS},
        {"distill", "tokens", NULL, "1000", STUDENTS},
        {"distill", "seq_len", "16", "32", STUDENTS},
        {"distill", "batch", "2", "4", STUDENTS},
        {"distill", "grad_accum", "1", "2", STUDENTS},
        {"distill", "lr", "1e-3", "2e-3", STUDENTS},
        {"distill", "min_lr", "1e-4", "2e-4", STUDENTS},
        {"distill", "warmup", "1", "2", STUDENTS},
        {"distill", "schedule", "cosine", "linear", STUDENTS},
        {"distill", "loss", "mix:0.5,kl", "rkl", KD},
        {"distill", "kd_scale", "none", "auto", KD},
        {"distill", "kd_temp", "1", "2", KD},
        {"distill", "t2", "false", "true", KD},
        {"distill", "weight_decay", "0.1", "0.01", STUDENTS},
        {"distill", "clip", "1", "0.5", STUDENTS},
        {"distill", "seed", "0", "7", "bi-L2:distill,eval,bench scratch-L2:init,train,eval,bench"},
        // the ranks change the Slurm allocation (or are refused: grad_accum 1 does not split), never a stage's result
        {"distill", "nodes", NULL, "2", "refused"},
        {"distill", "ranks_per_node", NULL, "2", "refused"},
        {"distill", "gpus_per_node", NULL, "2", "refused"},
        {"distill", "bucket_mb", NULL, "50", "refused"},
        {"distill", "zero1", NULL, "true", "refused"},
        {"distill", "grad_reduce", "fp32", "bf16", "refused"},
        {"eval", "mmlu", mmlu, other_mmlu, EVALS},
        {"eval", "shots", "0", "3", EVALS},
        {"eval", "subjects", "anatomy", "virology", EVALS},
        {"eval", "limit", "2", "5", EVALS},
        {"eval", "truncate", "tokens", "shots", EVALS},
        {"eval", "ppl_seq_len", "16", "32", EVALS},
        {"eval", "ppl_tokens", "128", "256", EVALS},
        {"bench", "batch", "1", "1, 2", BENCHES},
        {"bench", "prompt_len", "8", "16", BENCHES},
        {"bench", "gen_len", "2", "4", BENCHES},
        {"bench", "repeats", "1", "5", BENCHES},
        {"bench", "precision", "fp32", "bf16", BENCHES},
        {"matrix", "strategies", "bi", "last", "+last-L2 -bi-L2"},
        {"matrix", "layers", "2", "3", "+bi-L3 +scratch-L3 -bi-L2 -scratch-L2"},
        {"matrix", "ffn", "0", "96", "+bi-L2-ffn96 +scratch-L2-ffn96 -bi-L2 -scratch-L2"},
        {"matrix", "hidden", "0", "32", "+bi-L2-h32 +scratch-L2-h32 -bi-L2 -scratch-L2"},
        {"matrix", "heads", "0", "2", "+bi-L2-heads2 +scratch-L2-heads2 -bi-L2 -scratch-L2"},
        {"matrix", "kv_heads", "0", "1", "+bi-L2-kv1 +scratch-L2-kv1 -bi-L2 -scratch-L2"},
        {"scratch", "enabled", "true", "false", "-scratch-L2 slurm"},
        {"hetero", "ratio", NULL, "0.5", "+hetero-p50 slurm"},
        {"hetero", "widths", NULL, "1,0.5", "refused"},
        {"hetero", "attention", NULL, "false", "refused"},
        {"hetero", "metric", NULL, "loss", "refused"},
        {"slurm", "time", NULL, "01:00:00", "slurm"},
        {"slurm", "mem", NULL, "64G", "slurm"},
        {"slurm", "partition", NULL, "gpu", "slurm"},
        {"slurm", "account", NULL, "lab", "slurm"},
        {"slurm", "cpus_per_task", NULL, "4", "slurm"},
        {"slurm", "gpus_per_task", NULL, "1", "refused"},
    };
    int n_cases = sizeof cases / sizeof cases[0];
    // the test covers every key the reader knows
    for (int k = 0; k < sweep_config_key_count(); k++) {
        const char* section;
        const char* key = sweep_config_key(k, &section);
        int found = 0;
        for (int i = 0; i < n_cases; i++) found |= !strcmp(cases[i].section, section) && !strcmp(cases[i].key, key);
        cr_expect(found, "[%s] %s has no case in this test: add one", section, key);
    }
    static char text[16384];
    render(text, sizeof text, cases, n_cases, -1, teacher);
    write_text(cfg_path, text);
    SweepConfig base;
    cr_assert_eq(sweep_config_load(cfg_path, &base, &e), 0, "%s\n%s", e.msg, text);
    for (int i = -1; i < n_cases; i++) {  // -1: the baseline's model
        if (i < 0) {
            render(text, sizeof text, cases, n_cases, -1, other_teacher);
        } else {
            render(text, sizeof text, cases, n_cases, i, teacher);
        }
        write_text(cfg_path, text);
        const char* section = i < 0 ? "baseline.b" : cases[i].section;
        const char* key = i < 0 ? "model" : cases[i].key;
        const char* want = i < 0 ? "baseline-b:eval,bench" : cases[i].reruns;
        SweepConfig c;
        Err ce = {{0}, 0};
        char* got;
        if (sweep_config_load(cfg_path, &c, &ce) != 0) {
            cr_expect(contains(ce.msg, "sweep.ini:"), "[%s] %s refused without FILE:LINE: %s", section, key, ce.msg);
            got = strdup("refused");
        } else {
            got = plan_diff(&base, &c);
        }
        cr_expect(strcmp(got, "nothing") != 0, "[%s] %s changes nothing a stage reads: a dead key", section, key);
        cr_expect_str_eq(got, want ? want : "(no expectation)", "[%s] %s = %s re-runs: %s", section, key, i < 0 ? other_teacher : cases[i].alt,
                         got);
        free(got);
    }
}

Test(sweep, rounds_and_correction_settings_reach_their_stages) {
    const char* base = TINY_STAGES "[matrix]\nstrategies = bi\nlayers = 3>2, 2\n";
    const char* variants[] = {"", "[teacher]\ncorrect_steps = 2\n", "[teacher]\ncorrect_steps = 2\ncorrect_lr = 1e-5\n",
                              "[distill]\nround_steps = 3\n"};
    // what each variant re-runs after the one before it (the last: after the first)
    const char* want[] = {
        NULL,
        "+teacher-corrected bi-L3>2:correct,round1_prune,round1_distill,prune,distill,eval,bench bi-L2:correct,prune,distill,eval,bench "
        "slurm",
        "teacher-corrected:correct,eval,bench bi-L3>2:correct,round1_prune,round1_distill,prune,distill,eval,bench "
        "bi-L2:correct,prune,distill,eval,bench",
        "bi-L3>2:round1_distill,prune,distill,eval,bench",
    };
    SweepConfig c[4];
    for (int v = 0; v < 4; v++) {
        char body[2048];
        snprintf(body, sizeof body, "%s%s", base, variants[v]);
        write_cfg(body);
        Err e;
        cr_assert_eq(sweep_config_load(cfg_path, &c[v], &e), 0, "%s", e.msg);
    }
    for (int v = 1; v < 4; v++) {
        char* got = plan_diff(&c[v == 3 ? 0 : v - 1], &c[v]);
        cr_expect_str_eq(got, want[v], "variant %d (%s) re-runs: %s", v, variants[v], got);
        free(got);
    }
    // round_steps reaches the first round's distillation, and only it; correct_lr the correction
    SweepPlan p;
    plan_of(&c[3], &p);
    cr_expect(contains(plan_stage(&p.cells[1], "round1_distill")->text, " steps=3 "), "%s", plan_stage(&p.cells[1], "round1_distill")->text);
    cr_expect(contains(plan_stage(&p.cells[1], "distill")->text, " steps=1 "));
    sweep_plan_free(&p);
    plan_of(&c[2], &p);
    cr_expect(contains(plan_stage(&p.cells[1], "correct")->text, " lr=9.99999975e-06"), "%s", plan_stage(&p.cells[1], "correct")->text);
    sweep_plan_free(&p);
}

// BI of every layer of the model in dir, computed here as the prune stage would on the calibration shard
static void bi_of(const char* model_dir, const SweepConfig* c, double* bi, int* n_layers) {
    Model m;
    Shard s;
    Err e;
    cr_assert_eq(model_load(&m, model_dir, &e), 0, "%s", e.msg);
    cr_assert_eq(shard_open(&s, c->calib, &e), 0, "%s", e.msg);
    CalibOptions co;
    plan_calib(c, &co);
    Importance imp;
    cr_assert_eq(importance_compute(&m, &s, &co, &imp, &e), 0, "%s", e.msg);
    *n_layers = m.cfg.n_layers;
    for (int l = 0; l < m.cfg.n_layers; l++) bi[l] = imp.bi[l];
    importance_free(&imp);
    shard_close(&s);
    model_free(&m);
}

static int int_list(const char* text, int* v) {
    int n = 0;
    for (char* end; *text; text = end) {
        v[n] = (int)strtol(text, &end, 10);
        if (end == text) break;
        n++;
    }
    return n;
}

Test(sweep, rounds_prune_the_distilled_model_again_from_the_corrected_teacher) {
    SweepConfig c;
    Err e;
    int n;
    Cell* cells = sweep_from("[distill]\nsteps = 2\nround_steps = 3\nseq_len = 16\nbatch = 2\nlr = 1e-2\n\n[prune]\ncalib_windows = 2\n"
                             "seq_len = 16\n\n[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n\n[teacher]\ncorrect_steps = 2\n"
                             "correct_lr = 1e-2\n\n[matrix]\nstrategies = bi\nlayers = 3>2, 2\n",
                             &c, 4, &n);
    cr_expect_eq(cells[1].kind, CELL_CORRECTED);
    cr_expect_str_eq(cells[1].label, "teacher-corrected");
    cr_expect_str_eq(cells[2].label, "bi-L3>2");
    cr_expect_eq(cells[2].n_rounds, 2);
    cr_expect(cells[2].round[0][0] == 3 && cells[2].round[1][0] == 2);
    cr_expect_str_eq(cells[3].label, "bi-L2");
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    char path[2700], corrected[2700];
    at(corrected, sizeof corrected, "results", cells[1].id, "correct", "model");
    // round 1 scored the corrected teacher, round 2 the model round 1 distilled: each scores.json holds BI
    // as computed here from that model
    double bi[8], saved[8];
    int L;
    const char* sources[2] = {corrected, NULL};
    char round1_model[2700];
    at(round1_model, sizeof round1_model, "results", cells[2].id, "round1_distill", "model");
    sources[1] = round1_model;
    const char* scores[2] = {"round1_prune", "prune"};
    for (int r = 0; r < 2; r++) {
        bi_of(sources[r], &c, bi, &L);
        cr_assert_eq(L, 4 - r);
        at(path, sizeof path, "results", cells[2].id, scores[r], "model/scores.json");
        ModelConfig mc;
        cr_assert_eq(config_load(sources[r], &mc, &e), 0, "%s", e.msg);
        Importance imp;
        cr_assert_eq(importance_load(&imp, &mc, path, &e), 0, "%s", e.msg);
        for (int l = 0; l < L; l++) saved[l] = imp.bi[l];
        importance_free(&imp);
        for (int l = 0; l < L; l++) cr_expect_float_eq(saved[l], bi[l], 1e-9, "round %d layer %d", r + 1, l);
    }
    // the kept layers in the teacher's numbering: round 2 keeps 2 of round 1's 3, dropping its lowest BI
    cJSON* p1 = read_json((at(path, sizeof path, "results", cells[2].id, "round1_prune", "metrics.json"), path));
    cJSON* p2 = read_json((at(path, sizeof path, "results", cells[2].id, "prune", "metrics.json"), path));
    int k1[8], k2[8];
    cr_assert_eq(int_list(cJSON_GetObjectItem(p1, "kept_layers")->valuestring, k1), 3);
    cr_assert_eq(int_list(cJSON_GetObjectItem(p2, "kept_layers")->valuestring, k2), 2);
    int lowest = 0;
    for (int l = 1; l < 3; l++)
        if (bi[l] < bi[lowest]) lowest = l;
    for (int i = 0, j = 0; i < 3; i++)
        if (i != lowest) cr_expect_eq(k2[j++], k1[i], "round 2 keeps round 1's layer %d (teacher layer %d)", i, k1[i]);
    cr_expect_str_eq(cJSON_GetObjectItem(p1, "source")->valuestring, corrected);
    cr_expect_str_eq(cJSON_GetObjectItem(p2, "source")->valuestring, round1_model);
    cJSON_Delete(p1);
    cJSON_Delete(p2);
    // the lineage of the final model maps to the (corrected) teacher it is distilled from
    cJSON* lineage = read_json((at(path, sizeof path, "results", cells[2].id, "prune", "model/arbor_lineage.json"), path));
    cr_expect_str_eq(cJSON_GetObjectItem(lineage, "source")->valuestring, corrected);
    cr_expect_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(lineage, "teacher_layers"), 1)->valueint, k2[1]);
    cJSON_Delete(lineage);
    // the corrected teacher was trained: its weights differ from the checkpoint's
    Model t0, t1;
    cr_assert_eq(model_load(&t0, teacher, &e), 0, "%s", e.msg);
    cr_assert_eq(model_load(&t1, corrected, &e), 0, "%s", e.msg);
    cr_expect(memcmp(t0.w.layers[0].wq, t1.w.layers[0].wq, sizeof(float) * 64) != 0);
    model_free(&t0);
    model_free(&t1);
    // tokens: round 1 ran round_steps (3), round 2 steps (2); the last counts both
    cJSON* d1 = read_json((at(path, sizeof path, "results", cells[2].id, "round1_distill", "metrics.json"), path));
    cJSON* d2 = read_json((at(path, sizeof path, "results", cells[2].id, "distill", "metrics.json"), path));
    cr_expect_eq(cJSON_GetObjectItem(d1, "steps")->valueint, 3);
    cr_expect_eq(cJSON_GetObjectItem(d2, "steps")->valueint, 2);
    cr_expect_eq(cJSON_GetObjectItem(d2, "tokens_all_rounds")->valuedouble, 5.0 * 2 * 16);
    cJSON_Delete(d1);
    cJSON_Delete(d2);
    // rounds.csv: two rows for the two-round cell, one for the one-shot cell
    snprintf(path, sizeof path, "%s/results/t/rounds.csv", dir);
    char* rounds = slurp(path);
    char row[256];
    snprintf(row, sizeof row, "%s,bi-L3>2,1,2,3,", cells[2].id);
    cr_expect(contains(rounds, row), "%s", rounds);
    snprintf(row, sizeof row, "%s,bi-L3>2,2,2,2,", cells[2].id);
    cr_expect(contains(rounds, row), "%s", rounds);
    snprintf(row, sizeof row, "%s,bi-L2,1,1,2,", cells[3].id);
    cr_expect(contains(rounds, row), "%s", rounds);
    cr_expect_eq(count_char(rounds, '\n'), 4, "%s", rounds);
    free(rounds);
    snprintf(path, sizeof path, "%s/results/t/results.csv", dir);
    char* results = slurp(path);
    cr_expect(contains(results, ",teacher-corrected,teacher-corrected,") && contains(results, "distill.tokens_all_rounds"), "%s", results);
    free(results);
    // nothing changed: nothing re-runs; a new round_steps re-runs the two-round cell from round 1's
    // distillation on, and leaves the one-shot cell and the correction alone
    char* before[4] = {read_done(cells[2].id, "round1_prune"), read_done(cells[2].id, "round1_distill"), read_done(cells[3].id, "distill"),
                       read_done(cells[1].id, "correct")};
    write_cfg("[distill]\nsteps = 2\nround_steps = 1\nseq_len = 16\nbatch = 2\nlr = 1e-2\n\n[prune]\ncalib_windows = 2\n"
              "seq_len = 16\n\n[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n\n[teacher]\ncorrect_steps = 2\n"
              "correct_lr = 1e-2\n\n[matrix]\nstrategies = bi\nlayers = 3>2, 2\n");
    cr_assert_eq(sweep_config_load(cfg_path, &c, &e), 0, "%s", e.msg);
    char old_id[17];
    snprintf(old_id, sizeof old_id, "%s", cells[2].id);
    free(cells);
    sweep_cells(&c, &cells, &n);
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    char* after[4] = {read_done(cells[2].id, "round1_prune"), read_done(cells[2].id, "round1_distill"), read_done(cells[3].id, "distill"),
                      read_done(cells[1].id, "correct")};
    cr_expect_str_eq(cells[2].id, old_id, "the two-round cell keeps its id: what it is did not change, its stages' keys did");
    cr_expect_str_neq(after[1], before[1]);
    cr_expect_str_eq(after[2], before[2], "the one-shot cell did not re-run");
    cr_expect_str_eq(after[3], before[3], "the correction did not re-run");
    for (int i = 0; i < 4; i++) free(before[i]), free(after[i]);
    free(cells);
}

Test(sweep, cells_are_benched_together_in_interleaved_rounds) {
    SweepConfig c;
    Err e;
    int n;
    Cell* cells = sweep_from(
        TINY_STAGES "[bench]\nbatch = 1, 2\nprompt_len = 4\ngen_len = 2\nrepeats = 3\n\n[matrix]\nstrategies = bi, last\nlayers = 2\n", &c,
        3, &n);
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    char path[1024];
    at(path, sizeof path, "results", cells[2].id, "bench", "samples.csv");
    char* samples = file_read_all(path, NULL, &e);
    cr_assert_not_null(samples, "%s", e.msg);
    // this cell's and the teacher's used rows: 3 rounds x 2 batch sizes each (a contended measurement on
    // this shared machine adds an unused row before its repeat)
    int used = 0;
    for (const char* line = strchr(samples, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        const char* f = line + 1;
        for (int k = 0; k < 5 && f; k++) f = strchr(f, ',') ? strchr(f, ',') + 1 : NULL;
        used += f && f[0] == '1' && f[1] == ',';
    }
    cr_expect_eq(used, 2 * 3 * 2, "%s", samples);
    free(samples);
    at(path, sizeof path, "results", cells[0].id, "bench", "metrics.json");
    cJSON* t = read_json(path);
    cr_expect_eq(cJSON_GetObjectItem(t, "decode_ratio_b1")->valuedouble, 1.0, "the teacher against itself");
    cr_expect_eq(cJSON_GetObjectItem(t, "rounds")->valueint, 3);
    double lo = cJSON_GetObjectItem(t, "decode_tps_b2_min")->valuedouble, mid = cJSON_GetObjectItem(t, "decode_tps_b2")->valuedouble,
           hi = cJSON_GetObjectItem(t, "decode_tps_b2_max")->valuedouble;
    cr_expect(lo > 0 && lo <= mid && mid <= hi, "range %g <= median %g <= %g", lo, mid, hi);
    cr_expect_str_eq(cJSON_GetObjectItem(t, "precision")->valuestring, "fp32");
    cJSON_Delete(t);
    // results.csv: the teacher first, the config's order, kept layers, the interval of each accuracy's
    // chance level and the spread of each speed
    snprintf(path, sizeof path, "%s/results/t/results.csv", dir);
    char* csv = file_read_all(path, NULL, &e);
    cr_assert_not_null(csv);
    char* line2 = strchr(csv, '\n') + 1;
    cr_expect(!strncmp(line2, cells[0].id, 16) && contains(line2, ",teacher,teacher,,all,"), "%s", csv);
    char* line3 = strchr(line2, '\n') + 1;
    cr_expect(!strncmp(line3, cells[1].id, 16) && contains(line3, ",bi-L2,pruned,bi,"), "%s", csv);
    char* line4 = strchr(line3, '\n') + 1;
    cr_expect(contains(line4, ",last-L2,pruned,last,0 3,"), "last keeps the first and the final layer: %s", line4);
    cr_expect(contains(csv, "bench.decode_tps_b1_min,bench.decode_tps_b1_max") && contains(csv, "bench.decode_ratio_b1") &&
                  contains(csv, "bench.decode_tps_b2") && contains(csv, "bench.contended_rounds") &&
                  contains(csv, "bench.cpu_per_wall") && contains(csv, "bench.load_1m"),
              "%s", csv);
    free(csv);
    // a second run measures nothing again; a forced bench does
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    // contended measurements are measured again: with the threshold at 0 every one is, twice
    setenv("ARBOR_BENCH_CONTENDED_SHARE", "0", 1);
    int rc = sweep_run(&c, cells, n, NULL, "bench", 1, 0, &e);
    unsetenv("ARBOR_BENCH_CONTENDED_SHARE");
    cr_assert_eq(rc, 0, "%s", e.msg);
    at(path, sizeof path, "results", cells[1].id, "bench", "samples.csv");
    samples = file_read_all(path, NULL, &e);
    cr_assert_not_null(samples);
    cr_expect_eq(count_char(samples, '\n'), 1 + 3 * (2 * 3 * 2), "three attempts of each: %s", samples);
    free(samples);
    at(path, sizeof path, "results", cells[1].id, "bench", "metrics.json");
    t = read_json(path);
    cr_expect_eq(cJSON_GetObjectItem(t, "remeasured")->valueint, 6, "each of 3 rounds x 2 batch sizes");
    cJSON_Delete(t);
    // --only: the cell is benched beside the teacher, whose own results are left alone
    at(path, sizeof path, "results", cells[0].id, "bench", "metrics.json");
    char* teacher_done = file_read_all(path, NULL, &e);
    cr_assert_eq(sweep_run(&c, cells, n, cells[2].id, "bench", 1, 0, &e), 0, "%s", e.msg);
    char* after = file_read_all(path, NULL, &e);
    cr_expect_str_eq(after, teacher_done);
    at(path, sizeof path, "results", cells[2].id, "bench", "metrics.json");
    t = read_json(path);
    cr_expect_eq(cJSON_GetObjectItem(t, "cells_in_group")->valueint, 2);
    cr_expect_gt(cJSON_GetObjectItem(t, "decode_ratio_b1")->valuedouble, 0);
    cJSON_Delete(t);
    free(after), free(teacher_done);
    free(cells);
    // [bench] precision = bf16: the bench runs again (its key changed) on models holding their matrices
    // 16-bit; metrics.json says what the loaded model held, not what the config asked
    cells = sweep_from(TINY_STAGES "[bench]\nbatch = 1, 2\nprompt_len = 4\ngen_len = 2\nrepeats = 3\nprecision = bf16\n\n"
                                   "[matrix]\nstrategies = bi, last\nlayers = 2\n",
                       &c, 3, &n);
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    at(path, sizeof path, "results", cells[1].id, "bench", "metrics.json");
    t = read_json(path);
    cr_expect_str_eq(cJSON_GetObjectItem(t, "precision")->valuestring, "bf16");
    cJSON_Delete(t);
    free(cells);
}

Test(sweep, keep_going_finishes_the_other_cells) {
    // a baseline whose config reads but whose weights are garbage: its eval fails, the others need not
    char broken[600], path[800];
    snprintf(broken, sizeof broken, "%s/broken", dir);
    Err e;
    cr_assert_eq(make_dirs(broken, &e), 0);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cp %s/config.json %s/ && printf 'not safetensors' > %s/model.safetensors", teacher, broken, broken);
    cr_assert_eq(system(cmd), 0);
    write_cfg(TINY_STAGES "[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n\n[matrix]\nstrategies = bi\nlayers = 2\n\n"
                          "[baseline.broken]\nmodel = ");
    FILE* f = fopen(cfg_path, "a");
    fprintf(f, "%s\n", broken);
    fclose(f);
    SweepConfig c;
    cr_assert_eq(sweep_config_load(cfg_path, &c, &e), 0, "%s", e.msg);
    Cell* cells;
    int n;
    sweep_cells(&c, &cells, &n);
    cr_assert_eq(n, 3, "teacher, the broken baseline, bi-L2");
    cr_expect_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), -1, "without --keep-going the first failure stops the sweep");
    at(path, sizeof path, "results", cells[2].id, "eval", "metrics.json");
    cr_expect_neq(access(path, F_OK), 0, "the cell after it did not run");
    cr_expect_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 1, &e), -1, "the run still fails at the end");
    cr_expect(contains(e.msg, "1 of 3 cells failed") && contains(e.msg, "model.safetensors"), "%s", e.msg);
    cr_expect_eq(access(path, F_OK), 0, "with --keep-going the cell after it ran");
    at(path, sizeof path, "results", cells[2].id, "bench", "metrics.json");
    cr_expect_eq(access(path, F_OK), 0, "and was benched with the teacher");
    snprintf(path, sizeof path, "%s/results/t/results.csv", dir);
    char* csv = slurp(path);
    cr_expect_eq(count_char(csv, '\n'), 4, "every cell has a row, the broken one empty: %s", csv);
    free(csv);
    free(cells);
}

Test(sweep, a_stage_in_use_by_another_run_is_waited_for) {
    SweepConfig c;
    Err e;
    int n;
    Cell* cells = sweep_from(TINY_STAGES "[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n\n[matrix]\nstrategies = bi\nlayers = 2\n",
                             &c, 2, &n);
    InputHashes in;
    cr_assert_eq(sweep_hash_inputs(&c, 0, &in, &e), 0, "%s", e.msg);
    SweepPlan p;
    sweep_plan_build(&c, cells, n, &in, &p);
    char key[PLAN_KEY], stages_dir[2200];
    snprintf(key, sizeof key, "%s", plan_stage(&p.cells[1], "prune")->key);
    snprintf(stages_dir, sizeof stages_dir, "%s/stages", p.dir);
    // another run (a Slurm task) holds the prune stage for a while: this run waits for it, then goes on
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t holder = fork();
    if (holder == 0) {
        int fd;
        Err ce;
        if (store_lock(p.dir, key, &fd, &ce)) _exit(1);
        if (write(ready[1], "x", 1) != 1) _exit(1);
        nanosleep(&(struct timespec){0, 500000000}, NULL);
        _exit(0);  // the kernel drops the lock with the process
    }
    char byte;
    cr_assert_eq(read(ready[0], &byte, 1), 1);
    close(ready[0]), close(ready[1]);
    cr_expect_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    int status;
    cr_expect_eq(waitpid(holder, &status, WNOHANG), holder, "the run could take the stage only once the holder had ended");
    cr_expect(store_has(p.dir, key));
    sweep_plan_free(&p);
    // a killed run's half-written file (its writer's PID is gone) is cleaned; a live writer's is not
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    char stale[2400], live[2400];
    snprintf(stale, sizeof stale, "%s/train_state.bin.tmp.%ld", stages_dir, (long)child);
    snprintf(live, sizeof live, "%s/metrics.json.tmp.%ld", stages_dir, (long)getppid());
    write_text(stale, "half");
    write_text(live, "in progress");
    cr_expect_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    cr_expect_neq(access(stale, F_OK), 0, "the dead writer's temp file is removed");
    cr_expect_eq(access(live, F_OK), 0, "a running writer's is kept");
    unlink(live);
    int held;
    // a distillation's output folder too
    char out[1024];
    snprintf(out, sizeof out, "%s/run", dir);
    cr_assert_eq(make_dirs(out, &e), 0);
    cr_assert_eq(dir_lock(out, &held, &e), 0);
    Model m;
    load_model_at(&m, teacher, NULL);
    Shard s;
    cr_assert_eq(shard_open(&s, shard, &e), 0);
    TrainConfig tc = {0};
    tc.steps = 1, tc.batch = 2, tc.grad_accum = 1, tc.seq_len = 16, tc.out_dir = out, tc.log_every = 1;
    tc.optim = (OptimConfig){1e-3f, 1e-4f, 0, 1, 1, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f};
    tc.loss = (LossConfig){1.0f, 0.0f, KD_NONE, 1.0f, 0, 0, 0.0f};
    cr_expect_eq(train_run(&m, NULL, &s, &tc, NULL, &e), -1);
    cr_expect(contains(e.msg, "is in use by"), "%s", e.msg);
    dir_unlock(held);
    shard_close(&s);
    model_free(&m);
    free(cells);
}

// each training stage (a one-shot cell's distillation, a first round's, teacher correction) killed part
// way continues from its saved state to the same bits
Test(sweep, a_killed_distillation_resumes_bit_identically) {
    const char* common = "[prune]\ncalib_windows = 2\nseq_len = 16\n\n[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n\n";
    struct {
        const char *body, *stage;
        int cell, n_cells;
    } cases[] = {
        {"[distill]\nsteps = 4\nseq_len = 16\nbatch = 2\n\n[matrix]\nstrategies = bi\nlayers = 2\n", "distill", 1, 2},
        {"[distill]\nsteps = 1\nround_steps = 4\nseq_len = 16\nbatch = 2\n\n[matrix]\nstrategies = bi\nlayers = 3>2\n", "round1_distill",
         1, 2},
        {"[distill]\nsteps = 1\nseq_len = 16\nbatch = 2\n\n[teacher]\ncorrect_steps = 4\n\n[matrix]\nstrategies = bi\nlayers = 2\n",
         "correct", 1, 3},
    };
    for (int k = 0; k < 3; k++) {
        char body[2048];
        snprintf(body, sizeof body, "%s%s", common, cases[k].body);
        SweepConfig c;
        Err e;
        int n;
        Cell* cells = sweep_from(body, &c, cases[k].n_cells, &n);
        const char* id = cells[cases[k].cell].id;
        const char* stage = cases[k].stage;
        // straight through, into results/t
        cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
        char straight[2700], resumed[2700];
        at(straight, sizeof straight, "results", id, stage, "model/model.safetensors");
        // killed after step 2 of 4, into results2/t, then run again
        snprintf(c.out, sizeof c.out, "%s/results2", dir);
        setenv("ARBOR_TEST_STOP_AT", "2", 1);
        int rc = sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e);
        unsetenv("ARBOR_TEST_STOP_AT");
        cr_assert_eq(rc, -1, "%s", stage);
        cr_expect(contains(e.msg, "stopped after step 2 of 4"), "%s", e.msg);
        char state[2700], tmp[2700];
        at(tmp, sizeof tmp, "results2", id, stage, "");
        strcat(tmp, ".tmp");
        snprintf(state, sizeof state, "%s/train_state.bin", tmp);
        cr_expect_eq(access(state, F_OK), 0, "%s: the stage's saved state is kept", stage);
        char marker[2800];
        snprintf(marker, sizeof marker, "%s/seconds_so_far", tmp);
        char* part = slurp(marker);  // the stopped part's time, kept for the stage's total
        double before = atof(part);
        free(part);
        cr_expect_gt(before, 0, "%s: the first part's seconds are kept", stage);
        snprintf(marker, sizeof marker, "%s/marker", tmp);
        write_text(marker, "kept");
        cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
        at(marker, sizeof marker, "results2", id, stage, "marker");
        cr_expect_eq(access(marker, F_OK), 0, "%s: the re-run continued in the kept folder (from its state), not from scratch", stage);
        at(marker, sizeof marker, "results2", id, stage, "metrics.json");
        cJSON* m = read_json(marker);
        cr_expect_geq(cJSON_GetObjectItem(m, "seconds")->valuedouble, before, "%s: seconds count every part of the stage", stage);
        cJSON_Delete(m);
        at(resumed, sizeof resumed, "results2", id, stage, "model/model.safetensors");
        size_t la, lb;
        char* a = file_read_all(straight, &la, &e);
        char* b = file_read_all(resumed, &lb, &e);
        cr_assert(a && b);
        cr_expect(la == lb && memcmp(a, b, la) == 0, "%s: the resumed model equals the uninterrupted one, bit for bit", stage);
        free(a), free(b);
        // and its log has each step once
        at(state, sizeof state, "results2", id, stage, "log.csv");
        char* log = slurp(state);
        cr_expect_eq(count_char(log, '\n'), 5, "%s: header + steps 1..4 once each: %s", stage, log);
        free(log);
        free(cells);
        char rm[700];
        snprintf(rm, sizeof rm, "rm -rf %s/results %s/results2", dir, dir);
        cr_assert_eq(system(rm), 0);
    }
}

// [distill] nodes / ranks_per_node / gpus_per_node: refused where they cannot run as written, a Slurm
// allocation per cell that spans the ranks, and a launcher line keeping the global batch
Test(sweep, distill_ranks_are_checked_and_launched_with_the_global_batch) {
    expect_refused("[distill]\nranks_per_node = 2\ngrad_accum = 3\n", ":14: grad_accum 3 is the global accumulation and must split evenly over the 2 ranks");
    expect_refused("[distill]\ngpus_per_node = 2\n", ":13: gpus_per_node with device = cpu: set ranks_per_node");
    expect_refused("[distill]\nnodes = 5000\n", ":13: nodes 5000 must be in [1, 4096]");
    write_cfg("[distill]\nnodes = 2\nranks_per_node = 2\ngrad_accum = 4\nloss = mix:0.5,kl\nkd_scale = auto:2\n\n[matrix]\nstrategies = bi\n"
              "layers = 2\n");
    SweepConfig c;
    Err e;
    cr_assert_eq(sweep_config_load(cfg_path, &c, &e), 0, "%s", e.msg);
    cr_expect_eq(sweep_distill_ranks(&c), 4);
    Cell* cells;
    int n;
    cr_assert_eq(sweep_cells(&c, &cells, &n), 0);
    static char script[65536];
    cr_assert_eq(sweep_slurm_script(&c, cells, n, 1, "cells.txt", "/bin/arbor", cfg_path, "/work", script, sizeof script, &e), 0, "%s", e.msg);
    cr_expect(contains(script, "#SBATCH --nodes=2\n") && contains(script, "#SBATCH --ntasks-per-node=2\n") &&
                  contains(script, "srun --ntasks=4") && !contains(script, "#SBATCH --ntasks=1\n"),
              "%s", script);
    // --emit-slurm gives the ranks only to the cells that train: the teacher's cell is its own one-task array,
    // and collect waits for both arrays
    cr_assert_eq(sweep_emit_slurm(&c, cells, n, &e), 0, "%s", e.msg);
    char path[800];
    snprintf(path, sizeof path, "%s/results/t/sweep.slurm", dir);
    char* ranked = slurp(path);
    snprintf(path, sizeof path, "%s/results/t/sweep_single.slurm", dir);
    char* single = slurp(path);
    cr_expect(contains(ranked, "#SBATCH --array=1-1\n") && contains(ranked, "#SBATCH --nodes=2\n") && contains(ranked, "/cells.txt'"),
              "%s", ranked);
    cr_expect(contains(single, "#SBATCH --array=1-1\n") && contains(single, "#SBATCH --ntasks=1\n") && !contains(single, "--nodes") &&
                  contains(single, "/cells_single.txt'"),
              "%s", single);
    snprintf(path, sizeof path, "%s/results/t/cells_single.txt", dir);
    char* single_ids = slurp(path);
    snprintf(path, sizeof path, "%s/results/t/cells.txt", dir);
    char* ranked_ids = slurp(path);
    cr_expect(!strncmp(single_ids, cells[0].id, 16) && !strncmp(ranked_ids, cells[1].id, 16), "%s / %s", single_ids, ranked_ids);
    snprintf(path, sizeof path, "%s/results/t/submit.sh", dir);
    char* submit = slurp(path);
    cr_expect(contains(submit, "sweep.slurm')") && contains(submit, "sweep_single.slurm')") && contains(submit, "--dependency=afterok\"$after\""),
              "%s", submit);
    free(ranked), free(single), free(single_ids), free(ranked_ids), free(submit);
    free(cells);
    TrainConfig tc;
    plan_train(&c, 1, c.steps, &tc);
    tc.out_dir = "/work/out";
    char** argv;
    int argc;
    setenv("SLURM_JOB_ID", "77", 1);
    cr_assert_eq(sweep_train_argv(&c, &tc, 4, c.teacher, "/work/student", &argv, &argc, &e), 0, "%s", e.msg);
    unsetenv("SLURM_JOB_ID");
    char line[4096] = "";
    for (int i = 0; i < argc; i++) strcat(strcat(line, argv[i]), " ");
    cr_expect(!strncmp(line, "srun --ntasks=4 --nodes=2 --mpi=pmix /", 38), "%s", line);
    cr_expect(contains(line, " distill --teacher ") && contains(line, " --student /work/student ") &&
                  contains(line, " --grad-accum 1 ") && contains(line, " --batch 8 ") && contains(line, " --out /work/out ") &&
                  contains(line, " --device cpu") && contains(line, " --kd-scale auto:2 ") && contains(line, " --loss mix:0.5,kl "),
              "4 micro-batches a step over 4 ranks: %s", line);
    cr_assert_eq(sweep_train_argv(&c, &tc, 4, c.teacher, "/work/student", &argv, &argc, &e), 0);
    cr_expect_str_eq(argv[0], getenv("ARBOR_MPIRUN") ? getenv("ARBOR_MPIRUN") : "mpirun", "mpirun outside Slurm");
    // a GPU run over several ranks: NCCL, a rank per GPU (refused before work where arbor has no NCCL)
    char text[4096];
    snprintf(text, sizeof text, "[sweep]\nname = t\nout = %s/results\ndevice = cuda\n\n[teacher]\nmodel = %s\n\n[data]\ncalib = %s\n"
             "distill = %s\n\n[distill]\nnodes = 2\ngpus_per_node = 8\ngrad_accum = 16\nbucket_mb = 50\nzero1 = true\ngrad_reduce = bf16\n\n[matrix]\nstrategies = bi\n"
             "layers = 2\n", dir, teacher, shard, shard);
    write_text(cfg_path, text);
#ifndef ARBOR_HAVE_NCCL
    cr_expect_eq(sweep_config_load(cfg_path, &c, &e), -1);
    cr_expect(contains(e.msg, ":15: 16 GPU ranks: data parallel on the GPU needs NCCL"), "%s", e.msg);
#else
    cr_assert_eq(sweep_config_load(cfg_path, &c, &e), 0, "%s", e.msg);
    cr_expect_eq(sweep_distill_ranks(&c), 16);
    cr_assert_eq(sweep_cells(&c, &cells, &n), 0);
    cr_assert_eq(sweep_slurm_script(&c, cells, n, 1, "cells.txt", "/bin/arbor", cfg_path, "/work", script, sizeof script, &e), 0, "%s", e.msg);
    cr_expect(contains(script, "#SBATCH --nodes=2\n") && contains(script, "#SBATCH --ntasks-per-node=8\n") &&
                  contains(script, "#SBATCH --gpus-per-node=8\n") && !contains(script, "--gres") && contains(script, "srun --ntasks=16"),
              "%s", script);
    free(cells);
    plan_train(&c, 1, c.steps, &tc);
    tc.out_dir = "/work/out";
    setenv("SLURM_JOB_ID", "78", 1);
    cr_assert_eq(sweep_train_argv(&c, &tc, 16, c.teacher, "/work/student", &argv, &argc, &e), 0, "%s", e.msg);
    unsetenv("SLURM_JOB_ID");
    line[0] = 0;
    for (int i = 0; i < argc; i++) strcat(strcat(line, argv[i]), " ");
    cr_expect(!strncmp(line, "srun --ntasks=16 --nodes=2 ", 27) && contains(line, " --device cuda") && contains(line, " --bucket-mb 50 ") && contains(line, " --zero1") && contains(line, " --grad-reduce bf16") &&
                  contains(line, " --grad-accum 1 "),
              "%s", line);
#endif
}

// count of lines of text holding every one of the words (NULL-terminated)
static int lines_with(const char* text, const char* const* words) {
    int n = 0;
    for (const char* line = text; line && *line;) {
        const char* end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[4096];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        int all = 1;
        for (const char* const* w = words; *w && all; w++) all = contains(buf, *w);
        n += all;
        line = end ? end + 1 : NULL;
    }
    return n;
}

// The walk's edit: [distill] steps changed and changed back. Only what reads it runs; the reports hold
// exactly the config's cells; stages of the earlier config stay cached (and --gc lists them).
Test(sweep, an_edited_setting_reruns_only_the_stages_that_read_it) {
    const char* body_fmt = "[distill]\nsteps = %d\nseq_len = 16\nbatch = 2\n\n[prune]\ncalib_windows = 2\nseq_len = 16\n\n"
                           "[teacher]\ncorrect_steps = 1\n\n[eval]\nppl_seq_len = 16\nppl_tokens = 64\n\n"
                           "[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n\n[matrix]\nstrategies = bi\nlayers = 2, 3>2\n\n"
                           "[scratch]\nenabled = true\n";
    char body[2048], args[2048], err_path[600], path[700];
    snprintf(err_path, sizeof err_path, "%s/err.txt", dir);
    int steps[3] = {2, 3, 2};
    char* said[3];
    for (int run = 0; run < 3; run++) {
        snprintf(body, sizeof body, body_fmt, steps[run]);
        write_cfg(body);
        FILE* f = fopen(cfg_path, "a");
        fprintf(f, "\n[data]\nval = %s\n", shard);
        fclose(f);
        snprintf(args, sizeof args, "sweep %s 2> %s", cfg_path, err_path);
        cr_assert_eq(run_arbor(args, "/dev/null"), 0, "run %d: %s", run, slurp(err_path));
        said[run] = slurp(err_path);
        // the reports: one row per cell of this config (teacher, corrected, 2 pruned, 1 scratch: both end at L2), whatever ran before
        snprintf(path, sizeof path, "%s/results/t/results.csv", dir);
        char* csv = slurp(path);
        cr_expect_eq(count_char(csv, '\n'), 1 + 5, "run %d: %s", run, csv);
        free(csv);
    }
    // run 2 (steps 2 -> 3): the teacher's and the corrected teacher's stages, every prune and every
    // pre-distillation eval are reused; the students' distill (or train), eval and bench run
    const char* s = said[1];
    const char* reused_teacher[] = {"teacher eval: reused", NULL}, *reused_correct[] = {"correct: reused", NULL};
    const char* reused_prune[] = {"prune: reused", NULL}, *reused_eval_pruned[] = {"eval_pruned: reused", NULL};
    const char* ran_distill[] = {"distill ...", NULL}, *ran_train[] = {"scratch-", " train ...", NULL};
    const char* ran_eval[] = {" eval ...", NULL};
    const char* reused_corrected[] = {"teacher-corrected eval: reused", NULL};
    cr_expect_eq(lines_with(s, reused_teacher), 1, "%s", s);
    cr_expect_eq(lines_with(s, reused_corrected), 1, "%s", s);
    cr_expect_eq(lines_with(s, reused_correct), 3, "the correction, in the chains of three cells: %s", s);
    cr_expect_eq(lines_with(s, reused_prune), 2, "bi-L2's prune and bi-L3>2's round1_prune (its prune reads round 1's distill): %s", s);
    cr_expect_eq(lines_with(s, reused_eval_pruned), 1, "bi-L3>2's pruned model is scored after round 1 distils anew: %s", s);
    cr_expect_eq(lines_with(s, ran_distill), 3, "bi-L2 distill, bi-L3>2 round1_distill and distill: %s", s);
    cr_expect_eq(lines_with(s, ran_train), 1, "%s", s);
    cr_expect_eq(lines_with(s, ran_eval), 3, "the three students' evals: %s", s);
    const char* bench_reused[] = {"bench: reused", NULL};
    cr_expect_eq(lines_with(s, bench_reused), 2, "the teachers' benches: %s", s);
    cr_expect(contains(s, "sweep: 12 stages run, "), "%s", s);
    // run 3 (back to 2): every stage is in the store
    cr_expect(contains(said[2], "sweep: 0 stages run, "), "%s", said[2]);
    // the walk's second question: the 3>2 chain's steps are reported per round
    snprintf(path, sizeof path, "%s/results/t/rounds.csv", dir);
    char* rounds = slurp(path);
    cr_expect(contains(rounds, ",bi-L3>2,1,2,3,") && contains(rounds, ",bi-L3>2,2,2,2,"), "%s", rounds);
    free(rounds);
    // --gc: the steps = 3 stages no manifest names are listed, then removed with --force; nothing in use goes
    char gc_out[600];
    snprintf(gc_out, sizeof gc_out, "%s/gc.txt", dir);
    snprintf(args, sizeof args, "sweep %s --gc 2> %s", cfg_path, err_path);
    cr_assert_eq(run_arbor(args, gc_out), 0, "%s", slurp(err_path));
    char* listed = slurp(gc_out);
    cr_expect_eq(count_char(listed, '\n'), 3 + 6 + 3, "bi-L2: distill, eval, bench; bi-L3>2: round 1 on; scratch: train on: %s", listed);
    const char* gc_distill[] = {"distill of bi-L2", NULL};
    cr_expect_eq(lines_with(listed, gc_distill), 1, "%s", listed);
    free(listed);
    snprintf(args, sizeof args, "sweep %s --gc --force 2> %s", cfg_path, err_path);
    cr_assert_eq(run_arbor(args, gc_out), 0, "%s", slurp(err_path));
    snprintf(args, sizeof args, "sweep %s --gc 2> %s", cfg_path, err_path);
    cr_assert_eq(run_arbor(args, gc_out), 0);
    listed = slurp(gc_out);
    cr_expect_eq(count_char(listed, '\n'), 0, "%s", listed);
    free(listed);
    snprintf(args, sizeof args, "sweep %s 2> %s", cfg_path, err_path);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    char* again = slurp(err_path);
    cr_expect(contains(again, "sweep: 0 stages run, "), "gc kept what the config uses: %s", again);
    free(again);
    // collect reads the manifest: the same rows
    snprintf(args, sizeof args, "collect %s/results/t 2> %s", dir, err_path);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    snprintf(path, sizeof path, "%s/results/t/results.csv", dir);
    char* csv = slurp(path);
    cr_expect_eq(count_char(csv, '\n'), 1 + 5, "%s", csv);
    free(csv);
    for (int run = 0; run < 3; run++) free(said[run]);
}

// ---- the reports say every setting that changed the numbers: each case flips one setting, writes what a
// run would (sweep.json from the config, results.csv with that run's columns) and checks the paper's text,
// sweep.json and the plot's axis

typedef struct {
    const char* name;
    const char* config;     // added to the base config
    const char* extra_row;  // added to the base results table (or "")
    const char* json_path;  // sweep.json: "section.key" ...
    const char* json_value; // ... holds this (as text)
    const char* file;       // paper/FILE.tex ...
    const char* phrase;     // ... says this (and the base case does not)
} ReportCase;

// value at "a.b" of j as text ("[...]" for arrays)
static void json_text(const cJSON* j, const char* path, char* out, size_t n) {
    char key[64];
    snprintf(key, sizeof key, "%s", path);
    char* dot = strchr(key, '.');
    *dot = 0;
    const cJSON* v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, key), dot + 1);
    char* printed = v ? cJSON_PrintUnformatted(v) : NULL;
    snprintf(out, n, "%s", printed ? printed : "(absent)");
    free(printed);
}

static char* paper_file(const char* results, const char* file) {
    char path[700];
    snprintf(path, sizeof path, "%s/paper/%s.tex", results, file);
    return slurp(path);
}

Test(sweep, reports_state_every_setting_that_changed_the_numbers) {
    char mmlu[600], tok_file[700], bench_json[700];
    Err e;
    snprintf(mmlu, sizeof mmlu, "%s/mmlu", dir);
    cr_assert_eq(make_dirs(mmlu, &e), 0);
    const char* const subjects[] = {"anatomy"};
    mmlu_stand_in(mmlu, subjects, 1);
    snprintf(tok_file, sizeof tok_file, "%s/tokenizer.json", teacher);  // the config checks only that it is there
    write_text(tok_file, "{}");
    snprintf(bench_json, sizeof bench_json, "%s/benchmark.json", mmlu);
    const char* header = "id,label,kind,strategy,kept_layers,params,rounds,eval_pruned.mmlu_micro,distill.steps,distill.tokens,"
                         "distill.tokens_all_rounds,distill.kd_weight_min,distill.kd_weight_max,eval.mmlu_micro,eval.mmlu_ci_low,"
                         "eval.mmlu_ci_high,eval.mmlu_n,eval.mmlu_chance,eval.mmlu_truncated,eval.mmlu_fewer_shots,"
                         "bench.decode_tps_b1,bench.decode_tps_b1_min,bench.decode_tps_b1_max,bench.decode_ratio_b1,bench.rounds,"
                         "bench.precision,bench.device\n";
    const char* base_rows = "a,teacher,teacher,,all,230080,1,,,,,,,0.8,0.7,0.9,40,0.25,0,0,100,90,110,1,1,fp32,cpu\n"
                            "b,bi-L2,pruned,bi,0 1,131456,1,0.5,2,64,64,,,0.6,0.5,0.7,40,0.25,0,0,180,170,190,1.8,1,fp32,cpu\n";
    const ReportCase cases[] = {
        {"base", "", "", "distill.kd_scale", "\"none\"", "method", "Each pruned student is distilled from the teacher"},
        {"teacher correction", "[teacher]\ncorrect_steps = 3\n", "c,teacher-corrected,teacher-corrected,,all,230080,1,,,,,,,0.81,0.7,0.9,40,"
         "0.25,0,0,100,90,110,1,1,fp32,cpu\n", "teacher.correct_tokens", "96", "method", "the teacher is corrected: trained with "
         "cross-entropy on the distillation data for 3 steps (96 tokens)"},
        {"teacher correction, counted", "[teacher]\ncorrect_steps = 3\n", "c,teacher-corrected,teacher-corrected,,all,230080,1,,,,,,,0.81,"
         "0.7,0.9,40,0.25,0,0,100,90,110,1,1,fp32,cpu\n", "teacher.correct_steps", "3", "results_text", "3 cells: the teacher, the "
         "corrected teacher, 1 pruned"},
        {"teacher correction, abstract", "[teacher]\ncorrect_steps = 3\ncorrect_lr = 0.001\n", "", "teacher.correct_lr", "0.001", "abstract",
         "distillation from the corrected teacher"},
        {"kd_scale auto", "[distill]\nloss = mix:0.5,kl\nkd_scale = auto:0.5\n", "d,bi-L3,pruned,bi,0 1 3,180000,1,0.6,2,64,64,0.21,0.47,0.7,0.6,0.8,40,0.25,"
         "0,0,150,140,160,1.5,1,fp32,cpu\n", "distill.kd_scale", "\"auto:0.5\"", "method", "rescaled each micro-batch to 0.5 times the "
         "language-modelling loss (\\texttt{kd\\_scale = auto:0.5}); the KD weights used ranged from 0.21 to 0.47"},
        {"rounds", "[distill]\nround_steps = 5\n", "e,bi-L3>2,pruned,bi,0 1,131456,2,0.5,1,32,192,,,0.6,0.5,0.7,40,"
         "0.25,0,0,180,170,190,1.8,1,fp32,cpu\n", "matrix.layers", "[\"2\",\"3>2\"]", "method", "for 5 steps (160 tokens) in each round "
         "before the last and 1 in the last; such a student sees up to 192 tokens in all"},
        {"truncation", "[eval]\ntruncate = shots\n", "f,bi-L3,pruned,bi,0 1 3,180000,1,0.6,2,64,64,,,0.7,0.6,0.8,40,0.25,3,7,150,140,160,1.5,"
         "1,fp32,cpu\n", "eval.truncate", "\"shots\"", "setup_text", "(\\texttt{truncate = shots}): 3 contexts cut and 7 given fewer shots"},
        {"precision", "[bench]\nprecision = bf16\n", "", "bench.precision", "\"bf16\"", "limitations", "measured on the CPU with bf16 weights"},
        {"synthetic", "", "", "eval.synthetic", "true", "limitations", "The benchmark is synthetic (invented facts)"},
    };
    int n_cases = sizeof cases / sizeof cases[0];
    char results[600];
    snprintf(results, sizeof results, "%s/results/t", dir);
    char* base_text[8] = {0};
    const char* files[] = {"abstract", "method", "setup_text", "results_text", "limitations"};
    for (int k = 0; k < n_cases; k++) {
        const ReportCase* rc = &cases[k];
        int synthetic = !strcmp(rc->name, "synthetic");
        write_text(bench_json, synthetic ? "{\"name\": \"Facts\", \"description\": \"invented facts\", \"synthetic\": true}"
                                         : "{\"name\": \"MMLU\", \"description\": \"the 57-subject MMLU benchmark\"}");
        char body[3000];
        snprintf(body, sizeof body, TINY_STAGES "[eval]\nmmlu = %s\nsubjects = anatomy\nshots = 1\n\n[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n\n"
                 "[matrix]\nstrategies = bi\nlayers = %s\n\n%s", mmlu, strcmp(rc->name, "rounds") ? "2" : "2, 3>2", rc->config);
        // a section given twice adds to the first
        write_cfg(body);
        SweepConfig c;
        cr_assert_eq(sweep_config_load(cfg_path, &c, &e), 0, "%s: %s", rc->name, e.msg);
        Cell* cells;
        int n;
        sweep_cells(&c, &cells, &n);
        cr_assert_eq(make_dirs(results, &e), 0);
        cr_assert_eq(sweep_describe(&c, cells, n, &e), 0, "%s", e.msg);
        free(cells);
        char table[4096], path[800];
        snprintf(table, sizeof table, "%s%s%s", header, base_rows, rc->extra_row);
        for (char* p = table; !strcmp(rc->name, "precision") && (p = strstr(p, ",fp32,")); p += 6) memcpy(p, ",bf16,", 6);
        snprintf(path, sizeof path, "%s/results.csv", results);
        write_text(path, table);
        // sweep.json says it
        snprintf(path, sizeof path, "%s/sweep.json", results);
        cJSON* sw = read_json(path);
        char got[512];
        json_text(sw, rc->json_path, got, sizeof got);
        cr_expect_str_eq(got, rc->json_value, "%s: sweep.json %s", rc->name, rc->json_path);
        cJSON_Delete(sw);
        // and the paper's text (written before pdflatex runs, whether or not it is installed)
        char args[1400];
        snprintf(args, sizeof args, "paper %s > /dev/null 2>&1", results);
        run_arbor(args, NULL);
        char* text = paper_file(results, rc->file);
        cr_expect(contains(text, rc->phrase), "%s: %s.tex says '%s': %s", rc->name, rc->file, rc->phrase, text);
        free(text);
        if (k == 0) {
            for (int f = 0; f < 5; f++) base_text[f] = paper_file(results, files[f]);
        } else {
            int fi = 0;
            while (strcmp(files[fi], rc->file)) fi++;
            cr_expect(!contains(base_text[fi], rc->phrase), "%s: the base case does not say it", rc->name);
        }
        // the plot's accuracy axis names the benchmark, and says when it is synthetic
        snprintf(args, sizeof args, "plot %s/results.csv > /dev/null 2>&1", results);
        cr_expect_eq(run_arbor(args, NULL), 0, "%s: plot", rc->name);
        snprintf(path, sizeof path, "%s/frontier_speed.dat", results);
        char* dat = slurp(path);
        cr_expect(contains(dat, synthetic ? "# ylabel Facts accuracy (synthetic benchmark; %, micro" : "# ylabel MMLU accuracy (%, micro"),
                  "%s: %s", rc->name, dat);
        free(dat);
    }
    for (int f = 0; f < 5; f++) free(base_text[f]);
}

// Two cells of one shape (bi-L2 and last-L3>2 reach the same model size) measured a little apart: the
// ranges over rounds overlap, so noise must not split them on the frontier; the plot says they tie.
Test(sweep, the_frontier_does_not_split_cells_by_measurement_noise) {
    char csv[512], args[2048], path[700];
    snprintf(csv, sizeof csv, "%s/results.csv", dir);
    write_text(csv, "id,label,kind,strategy,params,eval.mmlu_micro,eval.mmlu_ci_low,eval.mmlu_ci_high,eval.val_nll,"
                    "bench.decode_tps_b1,bench.decode_tps_b1_min,bench.decode_tps_b1_max,eval.mmlu_n\n"
                    "a,teacher,teacher,,8000000,1.0,,,1.0,100,95,105,100\n"
                    "b,bi-L2,pruned,bi,4000000,1.0,,,1.2,180,170,190,100\n"
                    "c,last-L3>2,pruned,last,4000000,1.0,,,1.2,175,165,185,100\n"
                    "d,last-L1,pruned,last,2000000,0.5,,,1.9,300,290,310,100\n");
    snprintf(args, sizeof args, "plot %s 2>/dev/null", csv);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    snprintf(path, sizeof path, "%s/frontier_speed_pareto.dat", dir);
    char* pareto = slurp(path);
    cr_expect(contains(pareto, "\"bi-L2\"") && contains(pareto, "\"last-L3>2\"") && contains(pareto, "\"last-L1\""),
              "both cells of the shape stay on the frontier: %s", pareto);
    cr_expect(!contains(pareto, "\"teacher\""), "the teacher's speed range does not reach theirs: it is dominated: %s", pareto);
    free(pareto);
    snprintf(path, sizeof path, "%s/frontier_speed.dat", dir);
    char* points = slurp(path);
    cr_expect(contains(points, "# tie bi-L2 = last-L3>2 (decode tokens/s ranges 170-190 and 165-185 overlap)"), "%s", points);
    cr_expect(!contains(points, "# tie teacher"), "%s", points);
    free(points);
}

// [hetero] cells beside homogeneous ones: each share's cell is pruned by the block library and the exact
// search into a heterogeneous checkpoint within the share, then evaluated, distilled and benched like the
// others; results.csv reports its per-layer widths and attention; a re-run reuses every stage.
Test(sweep, heterogeneous_cells_run_beside_homogeneous_ones) {
    SweepConfig c;
    int n;
    Cell* cells = sweep_from(TINY_STAGES "[bench]\nprompt_len = 4\ngen_len = 2\nrepeats = 1\n\n[matrix]\nstrategies = bi\nlayers = 2\n\n"
                             "[hetero]\nratio = 0.6, 0.4\nwidths = 1, 0.5, 0\n", &c, 4, &n);
    cr_expect_str_eq(cells[2].label, "hetero-p60");
    cr_expect_str_eq(cells[3].label, "hetero-p40");
    Err e;
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    char path[800];
    snprintf(path, sizeof path, "%s/results/t/results.csv", dir);
    Table t;
    cr_assert_eq(table_read(path, &t, &e), 0, "%s", e.msg);
    int c_label = table_col(&t, "label"), c_params = table_col(&t, "params"), c_ffn = table_col(&t, "prune.layer_ffn");
    int c_attn = table_col(&t, "prune.layer_attention"), c_loss = table_col(&t, "distill.final_loss"), c_dec = table_col(&t, "bench.decode_tps_b1");
    cr_assert(c_label >= 0 && c_params >= 0 && c_ffn >= 0 && c_attn >= 0 && c_loss >= 0 && c_dec >= 0);
    double teacher_params = 0;
    int seen = 0;
    for (int r = 1; r < t.n_rows; r++)
        if (!strcmp(table_cell(&t, r, c_label), "teacher")) teacher_params = atof(table_cell(&t, r, c_params));
    for (int r = 1; r < t.n_rows; r++) {
        const char* label = table_cell(&t, r, c_label);
        if (strncmp(label, "hetero-p", 8)) continue;
        seen++;
        double share = atof(label + 8) / 100, params = atof(table_cell(&t, r, c_params));
        cr_expect(params > 0 && params <= share * teacher_params, "%s: %.0f parameters for %.0f%% of %.0f", label, params, 100 * share,
                  teacher_params);
        cr_expect(strlen(table_cell(&t, r, c_ffn)) > 0 && strlen(table_cell(&t, r, c_attn)) > 0, "%s: per-layer columns", label);
        cr_expect(strlen(table_cell(&t, r, c_loss)) > 0 && atof(table_cell(&t, r, c_dec)) > 0, "%s: distilled and benched: %s, %s", label,
                  table_cell(&t, r, c_loss), table_cell(&t, r, c_dec));
    }
    cr_expect_eq(seen, 2);
    table_free(&t);
    // the stage store: the checkpoint lists its layers; a re-run runs nothing
    char* key = read_done(cells[3].id, "prune");
    char model[1200];
    snprintf(model, sizeof model, "%s/results/t/stages/%s/model", dir, key);
    Model m;
    cr_assert_eq(model_load(&m, model, &e), 0, "%s", e.msg);
    cr_expect(m.cfg.hetero);
    model_free(&m);
    cr_assert_eq(sweep_run(&c, cells, n, NULL, NULL, 0, 0, &e), 0, "%s", e.msg);
    char* again = read_done(cells[3].id, "prune");
    cr_expect_str_eq(again, key);
    free(key), free(again);
    free(cells);
    // refused: heterogeneous cells on the GPU, a share of 1 or more
    write_cfg("[sweep]\ndevice = cuda\n\n[hetero]\nratio = 0.5\n");
    cr_expect_eq(sweep_config_load(cfg_path, &c, &e), -1);
    cr_expect(contains(e.msg, "heterogeneous cells run on the CPU"), "%s", e.msg);
    write_cfg("[hetero]\nratio = 1.2\n");
    cr_expect_eq(sweep_config_load(cfg_path, &c, &e), -1);
    cr_expect(contains(e.msg, "ratio") && contains(e.msg, "(0, 1)"), "%s", e.msg);
}
