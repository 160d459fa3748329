// test_demo.c: the built-in demo on its small setting, end to end, through the real commands: the
// teacher learns the synthetic benchmark (>= 80%, chance 25%), pruning without distillation loses
// accuracy, distillation recovers a visible part of it, students trained from scratch on the same
// budget do worse, a two-round cell prunes the model its first round distilled, the architecture search
// distils its two finalists before ranking them, and the results table and frontier plots are written.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "harness/sweep_store.h"
#include "models/file_io.h"

static int column(const char* header, const char* name) {  // index of a column in the CSV header, or -1
    int k = 0;
    size_t n = strlen(name);
    for (const char* p = header; *p && *p != '\n'; k++) {
        if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\n')) return k;
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    return -1;
}

static double field(const char* line, int k) {  // the k-th comma-separated field as a number (-1 if empty)
    const char* p = line;
    for (int i = 0; i < k && p; i++) {
        p = strchr(p, ',');
        if (p) p++;
    }
    return p && *p && *p != ',' && *p != '\n' ? atof(p) : -1;
}

static void field_text(const char* line, int k, char* out, size_t n) {  // the k-th field as text (no quoting)
    const char* p = line;
    for (int i = 0; i < k && p; i++) {
        p = strchr(p, ',');
        if (p) p++;
    }
    size_t len = p ? strcspn(p, ",\n") : 0;
    snprintf(out, n, "%.*s", (int)len, p ? p : "");
}

Test(demo, small_setting_meets_the_required_outcome, .timeout = 600) {
    char dir[256], args[1024], path[600];
    make_temp_dir(dir, sizeof dir);
    char table[600];
    snprintf(table, sizeof table, "%s/table.txt", dir);
    snprintf(args, sizeof args, "demo --small --out %s/demo 2>/dev/null", dir);
    cr_assert_eq(run_arbor(args, table), 0);
    Err te;
    char* printed = file_read_all(table, NULL, &te);
    cr_assert_not_null(printed);
    cr_expect(contains(printed, "layers kept") && contains(printed, "MMLU final (95% CI)"), "%s", printed);
    free(printed);
    snprintf(path, sizeof path, "%s/demo/demo/results.csv", dir);
    Err e;
    char* csv = file_read_all(path, NULL, &e);
    cr_assert_not_null(csv, "%s", e.msg);
    int c_before = column(csv, "eval_pruned.mmlu_micro"), c_after = column(csv, "eval.mmlu_micro");
    cr_assert(c_before > 0 && c_after > 0, "%s", csv);
    int c_kept = column(csv, "kept_layers"), c_label = column(csv, "label"), c_nll = column(csv, "eval_pruned.val_nll");
    int c_id = column(csv, "id");
    cr_assert(c_kept > 0 && c_label > 0 && c_nll > 0 && c_id == 0);
    double teacher = -1, pruned_sum = 0, distilled_sum = 0, scratch_sum = 0, bi_before = -1, last_before = -1;
    double bi_nll = -1, last_nll = -1, l2_after = 0, l2_before = 0, l3_after = 0;
    char bi_kept[64] = "", last_kept[64] = "", bi_id[32] = "";
    int pruned = 0, scratch = 0;
    for (char* line = strtok(strchr(csv, '\n') + 1, "\n"); line; line = strtok(NULL, "\n")) {
        double before = field(line, c_before), after = field(line, c_after);
        char label[64];
        field_text(line, c_label, label, sizeof label);
        if (!strcmp(label, "bi-L3-ffn96")) {
            field_text(line, c_kept, bi_kept, sizeof bi_kept), bi_before = before, bi_nll = field(line, c_nll);
            field_text(line, c_id, bi_id, sizeof bi_id);
        }
        if (!strcmp(label, "last-L3-ffn96"))
            field_text(line, c_kept, last_kept, sizeof last_kept), last_before = before, last_nll = field(line, c_nll);
        if (!strcmp(label, "bi-L2-ffn96") || !strcmp(label, "last-L2-ffn96")) l2_after += after / 2, l2_before += before / 2;
        if (!strcmp(label, "bi-L3-ffn96") || !strcmp(label, "last-L3-ffn96")) l3_after += after / 2;
        if (strstr(line, ",teacher,")) teacher = after;
        if (strstr(line, ",pruned,")) pruned_sum += before, distilled_sum += after, pruned++;
        if (strstr(line, ",scratch,")) scratch_sum += after, scratch++;
    }
    cr_assert_eq(pruned, 6, "2 strategies x (2, 3 and 3>2 layers)");
    cr_assert_eq(scratch, 2);
    // each strategy keeps what its rule says: `last` the first two and the final layer, Block Influence the
    // three highest-scored in the teacher's scores.json. Whether the two differ depends on the trained
    // teacher: its BI of layers 1 and 2 can lie within 1% of each other, so the BLAS kernels' summation
    // order decides (SkylakeX kernels here: the same layers; Prescott: different ones)
    cr_expect_str_eq(last_kept, "0 1 3");
    char stage[1000], demo_dir[600];
    snprintf(demo_dir, sizeof demo_dir, "%s/demo/demo", dir);
    cr_assert_eq(sweep_stage_dir(demo_dir, bi_id, "prune", stage, sizeof stage, &e), 0, "%s", e.msg);
    snprintf(path, sizeof path, "%.560s/model/scores.json", stage);
    cJSON* scores = read_json(path);
    const cJSON* bi = cJSON_GetObjectItem(scores, "block_influence");
    cr_assert(cJSON_GetArraySize(bi) == 4, "%s", path);
    int lowest = 0;
    for (int l = 1; l < 4; l++)
        if (cJSON_GetArrayItem(bi, l)->valuedouble < cJSON_GetArrayItem(bi, lowest)->valuedouble) lowest = l;
    char want[16] = "";
    for (int l = 0, len = 0; l < 4; l++)
        if (l != lowest) len += snprintf(want + len, sizeof want - (size_t)len, "%s%d", len ? " " : "", l);
    cr_expect_str_eq(bi_kept, want, "Block Influence drops its lowest-scored layer %d", lowest);
    cJSON_Delete(scores);
    cr_expect(bi_before >= 0 && last_before >= 0, "undistilled accuracy: bi %.3f, last %.3f", bi_before, last_before);
    // the same layers kept give the same model: the held-out NLL before distillation says so either way
    cr_expect(bi_nll > 0 && last_nll > 0 && (bi_nll == last_nll) == !strcmp(bi_kept, last_kept), "undistilled val NLL: bi %.4f, last %.4f",
              bi_nll, last_nll);
    double before = pruned_sum / pruned, after = distilled_sum / pruned, from_scratch = scratch_sum / scratch;
    cr_log_info("teacher %.3f, pruned %.3f -> distilled %.3f (3 layers %.3f, 2 layers %.3f from %.3f), scratch %.3f", teacher,
                before, after, l3_after, l2_after, l2_before, from_scratch);
    cr_expect_geq(teacher, 0.80, "the teacher learns the benchmark: %.3f", teacher);
    cr_expect_lt(before, teacher - 0.2, "pruning without distillation loses accuracy: %.3f vs %.3f", before, teacher);
    cr_expect_gt(after, before + 0.2, "distillation recovers much of the loss: %.3f -> %.3f", before, after);
    // the trade-off the figure shows: the facts live in the layers (entity names are shared syllables), so
    // the 3-layer students recover nearly all of them on the budget, the 2-layer ones visibly less, and
    // students of the same shapes trained from scratch on that budget stay near chance below both
    cr_expect_geq(l3_after, 0.85, "3-layer students recover nearly everything: %.3f", l3_after);
    cr_expect_gt(l2_after, l2_before + 0.1, "distillation helps the 2-layer students: %.3f -> %.3f", l2_before, l2_after);
    cr_expect_gt(l3_after, l2_after + 0.05, "2-layer students end below 3-layer ones: %.3f vs %.3f", l2_after, l3_after);
    cr_expect_lt(from_scratch, l2_after - 0.1, "scratch students end below both: %.3f vs %.3f", from_scratch, l2_after);
    free(csv);
    // the two-round cells: 3 layers at full width, then 2 at half, each round's kept layers a subset of the
    // round before's (in the teacher's numbering)
    snprintf(path, sizeof path, "%s/demo/demo/rounds.csv", dir);
    char* rounds = slurp(path);
    cr_expect(contains(rounds, ",bi-L3>2-ffn96,1,2,3,64,192,") && contains(rounds, ",bi-L3>2-ffn96,2,2,2,64,96,"), "%s", rounds);
    free(rounds);
    // the search: its two best shapes by validation loss were distilled and scored on MMLU val, the rest not
    snprintf(path, sizeof path, "%s/demo/search/search.csv", dir);
    char* search = slurp(path);
    int c_score = column(search, "final_mmlu_val"), c_rank_pruned = column(search, "rank_pruned"), scored = 0, rows = 0;
    cr_assert(c_score > 0 && c_rank_pruned > 0, "%s", search);
    for (char* line = strtok(strchr(search, '\n') + 1, "\n"); line; line = strtok(NULL, "\n"), rows++) {
        char score[32];
        field_text(line, c_score, score, sizeof score);
        if (strcmp(score, "nan")) {
            scored++;
            cr_expect(field(line, c_rank_pruned) <= 2 && atof(score) >= 0 && atof(score) <= 1, "%s", line);
        }
    }
    cr_expect(scored == 2 && rows > 2, "%d of %d shapes scored after distillation", scored, rows);
    free(search);
    snprintf(path, sizeof path, "%s/demo/search/rank-2/log.csv", dir);
    cr_expect_eq(access(path, F_OK), 0, "the second finalist was distilled, and is kept under its final rank");
    snprintf(path, sizeof path, "%s/demo/search/rank-1/model/config.json", dir);
    cr_expect_eq(access(path, F_OK), 0, "the distilled winner is an output");
    const char* plots[] = {"frontier_speed.png", "frontier_params.png", "frontier_speed.pdf"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/demo/demo/%s", dir, plots[i]);
        cr_expect_eq(access(path, F_OK), 0, "%s", plots[i]);
    }
}

static int count_lines_with(const char* path, const char* needle) {
    Err e;
    char* text = file_read_all(path, NULL, &e);
    cr_assert_not_null(text, "%s", e.msg);
    int n = 0;
    for (char* p = text; (p = strstr(p, needle)); p++) n++;
    free(text);
    return n;
}

Test(demo, a_new_seed_over_an_old_folder_reruns_everything, .timeout = 300) {
    char dir[256], args[1024], log[600];
    make_temp_dir(dir, sizeof dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    const char* tiny = "--small --entities 4 --teacher-steps 5 --distill-steps 2";
    snprintf(args, sizeof args, "demo %s --out %s/d 2>%s", tiny, dir, log);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    cr_expect_eq(count_lines_with(log, "training the teacher"), 1);
    cr_expect_eq(count_lines_with(log, "demo: architecture search"), 1);
    // the same seed again: the teacher and every stage are reused
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    cr_expect_eq(count_lines_with(log, "training the teacher"), 0, "the teacher is reused");
    cr_expect_eq(count_lines_with(log, " ...\n"), 0, "no stage re-runs");
    cr_expect_eq(count_lines_with(log, "demo: architecture search"), 0, "nor the search");
    // another seed writes other data: the teacher is trained again and no stage result is reused
    snprintf(args, sizeof args, "demo %s --seed 1 --out %s/d 2>%s", tiny, dir, log);
    cr_assert_eq(run_arbor(args, "/dev/null"), 0);
    cr_expect_eq(count_lines_with(log, "training the teacher"), 1, "a new seed trains a new teacher");
    cr_expect_eq(count_lines_with(log, ": done\n"), 0, "and re-runs every stage");
    cr_expect_eq(count_lines_with(log, "demo: architecture search"), 1, "and the search");
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    cr_expect_eq(system(rm), 0);
}
