// paper_text.c: see paper_text.h.
#include "paper_text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/file_io.h"
#include "../models/vec.h"

// ---- small helpers

static void say(ByteVec* v, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(ByteVec* v, const char* fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) bytevec_append(v, buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1));
}

// s with LaTeX's special characters escaped, into one of a few rotating buffers
void latex_append(ByteVec* v, const char* s) {
    for (; s && *s; s++) {
        char two[3] = {'\\', *s, 0};
        if (strchr("_%&#${}", *s)) bytevec_append(v, two, 2);
        else if (*s == '~') bytevec_append(v, "\\textasciitilde{}", 17);
        else if (*s == '^') bytevec_append(v, "\\textasciicircum{}", 18);
        else if (*s == '\\') bytevec_append(v, "\\textbackslash{}", 16);
        else if (*s == '<') bytevec_append(v, "\\textless{}", 11);
        else if (*s == '>') bytevec_append(v, "\\textgreater{}", 14);  // OT1 text mode would print an inverted mark
        else if (*s == '|') bytevec_append(v, "\\textbar{}", 10);
        else bytevec_append(v, s, 1);
    }
}

static const char* esc(const char* s) {  // latex_append into one of 8 rotating buffers (for say's arguments)
    static char bufs[8][1024];
    static int k = 0;
    char* out = bufs[k++ % 8];
    ByteVec v = {0};
    latex_append(&v, s);
    snprintf(out, sizeof bufs[0], "%.*s", (int)v.len, v.data ? v.data : "");
    free(v.data);
    return out;
}

static const cJSON* at(const cJSON* o, const char* path) {  // "a.b" in a JSON object, or NULL
    const char* dot = strchr(path, '.');
    if (!dot) return cJSON_GetObjectItem(o, path);
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
    return at(cJSON_GetObjectItem(o, key), dot + 1);
}

static const char* str(const cJSON* o, const char* path) {  // "" when absent
    const cJSON* v = at(o, path);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON* o, const char* path) {  // NAN when absent; booleans as 0/1
    const cJSON* v = at(o, path);
    return cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? 1 : 0) : NAN;
}

static double cell(const Table* t, int r, const char* col) {  // NAN when empty or absent
    const char* v = table_cell(t, r, table_col(t, col));
    return v[0] ? atof(v) : NAN;
}

static const char* text(const Table* t, int r, const char* col) { return table_cell(t, r, table_col(t, col)); }

static const char* count(double n) {  // 90e9 -> "90.0B", 65536 -> "65.5K"
    static char bufs[4][32];
    static int k = 0;
    char* b = bufs[k++ % 4];
    if (isnan(n) || n < 0) snprintf(b, 32, "?");
    else if (n >= 1e9) snprintf(b, 32, "%.1fB", n / 1e9);
    else if (n >= 1e6) snprintf(b, 32, "%.1fM", n / 1e6);
    else if (n >= 1e4) snprintf(b, 32, "%.1fK", n / 1e3);
    else snprintf(b, 32, "%.0f", n);
    return b;
}

static int save(const char* dir, const char* name, ByteVec* v, Err* e) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    bytevec_append(v, "", 0);
    int rc = file_write_atomic(path, v->data ? v->data : "", v->len, e);
    free(v->data);
    *v = (ByteVec){0};
    return rc;
}

static const char* strategy_text(const char* s) {
    if (!strcmp(s, "bi")) return "Block Influence (drop the layers whose output is most similar to their input: one minus the "
                                 "cosine similarity of the residual stream before and after the layer, on calibration text)";
    if (!strcmp(s, "block")) return "the most redundant contiguous block (the smallest angular distance between the residual "
                                    "streams at the block's two ends)";
    if (!strcmp(s, "last")) return "the deepest layers before the final one";
    if (!strcmp(s, "ppl")) return "validation loss (drop, one at a time, the layer whose removal raises it least)";
    return s;
}

// ---- what the results say

typedef struct {
    int teacher, best;         // rows (0: none)
    int n_pruned, n_scratch, n_before;
    double before_sum, after_sum, scratch_sum, paired_distilled, paired_scratch;
    int n_paired;
    double max_half_ci, max_rel_range;
    int contended, rounds_total;
    int mmlu;                  // accuracy is MMLU (else validation NLL)
    int corrected, n_baselines;        // the corrected teacher's row (0: none), baseline rows
    double kd_min, kd_max;             // the KD weights the distillations used (NAN: none logged)
    double cut, fewer_shots;           // MMLU contexts cut to fit / that lost shots, over every evaluation
    double max_tokens_all_rounds;      // the most tokens a student of several rounds saw
} Findings;

static void find(const Table* t, int mmlu, Findings* f) {
    memset(f, 0, sizeof *f);
    f->mmlu = mmlu;
    f->kd_min = f->kd_max = NAN;
    const char* acc = mmlu ? "eval.mmlu_micro" : "eval.val_nll";
    for (int r = 1; r < t->n_rows; r++) {
        const char* kind = text(t, r, "kind");
        double a = cell(t, r, acc);
        if (!strcmp(kind, "teacher")) f->teacher = r;
        if (!strcmp(kind, "teacher-corrected")) f->corrected = r;
        if (!strcmp(kind, "baseline")) f->n_baselines++;
        double lo = cell(t, r, "distill.kd_weight_min"), hi = cell(t, r, "distill.kd_weight_max");
        if (!isnan(lo) && (isnan(f->kd_min) || lo < f->kd_min)) f->kd_min = lo;
        if (!isnan(hi) && (isnan(f->kd_max) || hi > f->kd_max)) f->kd_max = hi;
        double cut = cell(t, r, "eval.mmlu_truncated"), fewer = cell(t, r, "eval.mmlu_fewer_shots");
        if (!isnan(cut)) f->cut += cut;
        if (!isnan(fewer)) f->fewer_shots += fewer;
        double all = cell(t, r, "distill.tokens_all_rounds");
        if (cell(t, r, "rounds") > 1 && all > f->max_tokens_all_rounds) f->max_tokens_all_rounds = all;
        if (!strcmp(kind, "pruned") && !isnan(a)) {
            f->n_pruned++, f->after_sum += a;
            double better = f->best ? cell(t, f->best, acc) : NAN;
            if (!f->best || (mmlu ? a > better : a < better)) f->best = r;
            double b = cell(t, r, "eval_pruned.mmlu_micro");
            if (!isnan(b)) f->n_before++, f->before_sum += b;
            for (int s = 1; s < t->n_rows; s++)  // the scratch student of the same shape
                if (!strcmp(text(t, s, "kind"), "scratch") && !strcmp(text(t, s, "params"), text(t, r, "params")) &&
                    !isnan(cell(t, s, acc)))
                    f->n_paired++, f->paired_distilled += a, f->paired_scratch += cell(t, s, acc);
        }
        if (!strcmp(kind, "scratch") && !isnan(a)) f->n_scratch++, f->scratch_sum += a;
        double ci_lo = cell(t, r, "eval.mmlu_ci_low"), ci_hi = cell(t, r, "eval.mmlu_ci_high");
        if (!isnan(ci_lo) && !isnan(ci_hi) && (ci_hi - ci_lo) / 2 > f->max_half_ci) f->max_half_ci = (ci_hi - ci_lo) / 2;
        double med = cell(t, r, "bench.decode_tps_b1"), mn = cell(t, r, "bench.decode_tps_b1_min"), mx = cell(t, r, "bench.decode_tps_b1_max");
        if (med > 0 && !isnan(mn) && !isnan(mx) && (mx - mn) / med > f->max_rel_range) f->max_rel_range = (mx - mn) / med;
        double c = cell(t, r, "bench.contended_rounds"), rr = cell(t, r, "bench.rounds");
        if (!isnan(c)) f->contended += (int)c;
        if (!isnan(rr)) f->rounds_total += (int)rr;
    }
}

static void accuracy_phrase(ByteVec* v, const Table* t, int r, int mmlu) {
    if (mmlu)
        say(v, "%.1f\\%% (95\\%% interval %.1f--%.1f)", 100 * cell(t, r, "eval.mmlu_micro"), 100 * cell(t, r, "eval.mmlu_ci_low"),
            100 * cell(t, r, "eval.mmlu_ci_high"));
    else
        say(v, "a validation loss of %.3f nats/token", cell(t, r, "eval.val_nll"));
}

int paper_write_text(const char* dir, const cJSON* sw, const Table* t, Err* e) {
    int mmlu = 0;  // the sweep asked for MMLU and some cell has an accuracy
    for (int r = 1; r < t->n_rows && num(sw, "eval.mmlu") == 1; r++) mmlu |= !isnan(cell(t, r, "eval.mmlu_micro"));
    Findings f;
    find(t, mmlu, &f);
    const char* bench = str(sw, "eval.benchmark");
    int synthetic = num(sw, "eval.synthetic") == 1;
    double shots = num(sw, "eval.shots"), rounds = num(sw, "bench.rounds");
    double n_q = f.teacher ? cell(t, f.teacher, "eval.mmlu_n") : NAN;
    const char* device = f.teacher ? text(t, f.teacher, "bench.device") : "";
    char teacher_name[1024];
    const char* tm = str(sw, "teacher.model");
    snprintf(teacher_name, sizeof teacher_name, "%s", strrchr(tm, '/') ? strrchr(tm, '/') + 1 : tm);
    if (!strcmp(teacher_name, "model")) snprintf(teacher_name, sizeof teacher_name, "the teacher");  // the demo's .../teacher/model
    ByteVec v = {0};
    int rc = 0;

    // abstract
    say(&v, "We compress %s (%s parameters, %.0f layers) by structured pruning", esc(teacher_name), count(num(sw, "teacher.params")),
        num(sw, "teacher.layers"));
    const cJSON* st = cJSON_GetObjectItem(cJSON_GetObjectItem(sw, "matrix"), "strategies");
    int n_st = cJSON_GetArraySize(st);
    if (n_st) {
        say(&v, " (depth by ");
        for (int i = 0; i < n_st; i++)
            say(&v, "%s%s", i ? (i + 1 == n_st ? " and " : ", ") : "", esc(cJSON_GetArrayItem(st, i)->valuestring));
        say(&v, ")");
    }
    int corrected = num(sw, "teacher.correct_steps") > 0;
    say(&v, " and recover each student by distillation from the %steacher with %s on %s tokens of %s%s. ", corrected ? "corrected " : "",
        esc(str(sw, "distill.loss_text")), count(num(sw, "distill.tokens")), esc(str(sw, "distill.data")),
        num(sw, "matrix.round_cells") > 0 ? " in the last round (and more in earlier rounds)" : "");
    if (f.teacher && mmlu) {
        say(&v, "On %s%s (%.0f questions, %.0f-shot), the teacher reaches ", esc(bench), synthetic ? ", a synthetic benchmark" : "", n_q,
            shots);
        accuracy_phrase(&v, t, f.teacher, mmlu);
        say(&v, ". ");
    } else if (f.teacher) {
        say(&v, "On held-out text the teacher reaches ");
        accuracy_phrase(&v, t, f.teacher, mmlu);
        say(&v, ". ");
    }
    if (f.best) {
        say(&v, "The best pruned student, %s (%s parameters, layers %s), reaches ", esc(text(t, f.best, "label")),
            count(cell(t, f.best, "params")), esc(text(t, f.best, "kept_layers")));
        accuracy_phrase(&v, t, f.best, mmlu);
        double ratio = cell(t, f.best, "bench.decode_ratio_b1");
        if (!isnan(ratio)) say(&v, " and decodes %.2f$\\times$ as fast as the teacher at batch 1 (median of %.0f interleaved rounds)", ratio, rounds);
        say(&v, ". ");
    }
    if (f.n_paired)
        say(&v, "Students of the same shapes trained from scratch on the same budget reach %.3g%s on average, against %.3g%s distilled.",
            (mmlu ? 100 : 1) * f.paired_scratch / f.n_paired, mmlu ? "\\%" : " nats", (mmlu ? 100 : 1) * f.paired_distilled / f.n_paired,
            mmlu ? "\\%" : " nats");
    say(&v, "\n");
    rc = rc || save(dir, "abstract.tex", &v, e);

    // method
    if (n_st) {
        say(&v, "\\emph{Depth} pruning removes whole transformer layers, chosen by ");
        for (int i = 0; i < n_st; i++)
            say(&v, "%s%s (\\texttt{%s})", i ? (i + 1 == n_st ? "; or by " : "; by ") : "", strategy_text(cJSON_GetArrayItem(st, i)->valuestring),
                esc(cJSON_GetArrayItem(st, i)->valuestring));
        say(&v, ". ");
        const char* widths[4][2] = {{"ffn", "MLP neurons"}, {"heads", "attention heads (each with its key-value group)"},
                                    {"kv_heads", "key-value groups"}, {"hidden", "hidden channels"}};
        int any = 0;
        for (int k = 0; k < 4; k++) {
            const cJSON* axis = cJSON_GetObjectItem(cJSON_GetObjectItem(sw, "matrix"), widths[k][0]);
            int nonzero = 0;
            for (int i = 0; i < cJSON_GetArraySize(axis); i++) {  // "96" or a chain "128>96": its last value
                const cJSON* it = cJSON_GetArrayItem(axis, i);
                const char* val = cJSON_IsString(it) ? it->valuestring : "0";
                nonzero |= atoi(strrchr(val, '>') ? strrchr(val, '>') + 1 : val) > 0;
            }
            if (!nonzero) continue;
            say(&v, "%s%s", any ? ", " : "\\emph{Width} pruning removes ", widths[k][1]);
            any = 1;
        }
        if (any) say(&v, ", ranked by their mean activation magnitude (%s aggregation over the sequence). ", esc(str(sw, "prune.aggregation")));
        say(&v, "Scores come from %.0f calibration windows of %.0f tokens of %s. ", num(sw, "prune.windows"), num(sw, "prune.seq_len"),
            esc(str(sw, "prune.calib")));
    }
    double data_tokens = num(sw, "distill.data_tokens"), tokens = num(sw, "distill.tokens");
    say(&v, "Each pruned student is distilled from the teacher with %s for %.0f steps of %s tokens (%s in all) from %s (%s tokens, %.2g passes); "
            "AdamW at a peak learning rate of %g with %s decay to %g after %.0f warm-up steps, data order seed %.0f. ",
        esc(str(sw, "distill.loss_text")), num(sw, "distill.steps"), count(num(sw, "distill.tokens_per_step")), count(tokens),
        esc(str(sw, "distill.data")), count(data_tokens), data_tokens > 0 ? tokens / data_tokens : NAN, num(sw, "distill.lr"),
        esc(str(sw, "distill.schedule")), num(sw, "distill.min_lr"), num(sw, "distill.warmup"), num(sw, "distill.seed"));
    if (corrected)
        say(&v, "Before any student is pruned, the teacher is corrected: trained with cross-entropy on the distillation data for %.0f "
                "steps (%s tokens) at a learning rate of %g. Every student is pruned from and distilled from the corrected teacher, which "
                "is evaluated and benched as a cell of its own. ",
            num(sw, "teacher.correct_steps"), count(num(sw, "teacher.correct_tokens")), num(sw, "teacher.correct_lr"));
    const char* kd_scale = str(sw, "distill.kd_scale");
    if (strncmp(kd_scale, "auto", 4) == 0) {
        say(&v, "The KD term is rescaled each micro-batch to %s times the language-modelling loss (\\texttt{kd\\_scale = %s})",
            kd_scale[4] == ':' ? kd_scale + 5 : "1", esc(kd_scale));
        if (!isnan(f.kd_min)) say(&v, "; the KD weights used ranged from %.3g to %.3g", f.kd_min, f.kd_max);
        say(&v, ". ");
    }
    if (num(sw, "matrix.round_cells") > 0)
        say(&v, "%.0f %s pruned iteratively, in up to %.0f rounds (a chain such as \\texttt{30\\textgreater{}24}): each round prunes the model "
                "the round before distilled, scoring it again, and distils it from the same teacher, for %.0f steps (%s tokens) in each "
                "round before the last and %.0f in the last; such a student sees up to %s tokens in all. ",
            num(sw, "matrix.round_cells"), num(sw, "matrix.round_cells") == 1 ? "cell is" : "cells are", num(sw, "matrix.max_rounds"),
            num(sw, "distill.round_steps"), count(num(sw, "distill.round_tokens")),
            num(sw, "distill.steps"), count(f.max_tokens_all_rounds > 0 ? f.max_tokens_all_rounds : NAN));
    if (num(sw, "matrix.scratch_cells") > 0)
        say(&v, "For each pruned shape, a student of that shape is initialised at random and trained with cross-entropy on the same data "
                "and token budget, to separate what the teacher's weights and signal contribute from what the budget alone buys. ");
    if (num(sw, "matrix.baselines") > 0) say(&v, "Baseline checkpoints are evaluated as they are. ");
    say(&v, "\n");
    rc = rc || save(dir, "method.tex", &v, e);

    // setup
    if (mmlu) {
        const char* subjects = str(sw, "eval.subjects");
        say(&v, "Accuracy is measured on %s: %s", esc(bench), esc(str(sw, "eval.benchmark_text")));
        if (strcmp(subjects, "all")) say(&v, " (subjects: %s)", esc(subjects));
        if (num(sw, "eval.limit") > 0) say(&v, ", at most %.0f questions per subject", num(sw, "eval.limit"));
        say(&v, ". Prompts follow lm-evaluation-harness (%.0f-shot); a question counts as correct when the answer letter has the highest "
                "log-likelihood of the four; accuracy is micro-averaged over %.0f questions, with 95\\%% Wilson intervals; chance is 25\\%%. ",
            shots, n_q);
        if (f.cut > 0 || f.fewer_shots > 0)
            say(&v, "Contexts longer than the model's positions were %s (\\texttt{truncate = %s}): %.0f contexts cut and %.0f given fewer "
                    "shots, over all evaluations. ",
                strcmp(str(sw, "eval.truncate"), "shots") ? "cut to their last tokens, as lm-evaluation-harness does" : "given fewer shots first",
                esc(str(sw, "eval.truncate")), f.cut, f.fewer_shots);
    } else {
        say(&v, "Quality is the mean validation loss (nats/token) on %s tokens of %s. ", count(num(sw, "eval.ppl_tokens")), esc(str(sw, "eval.val")));
    }
    say(&v, "Speed is decode tokens/s at batch 1 after a %.0f-token prompt, over %.0f steps. Every cell is loaded and measured once per "
            "round, in %.0f rounds interleaved across the cells (the starting cell rotates), so that a slow spell of the machine falls on "
            "all cells alike; medians are reported with the range over rounds, and ratios to the teacher are medians of same-round ratios. "
            "A measurement whose threads waited for a core is repeated. ",
        num(sw, "bench.prompt_len"), num(sw, "bench.gen_len"), rounds);
    say(&v, "Hardware: %s (%s backend, %s, %.0f threads of %.0f CPUs, OpenMP wait policy %s); arbor %s.\n", esc(device[0] ? device : "?"),
        esc(str(sw, "bench.device")), esc(str(sw, "bench.precision")), num(sw, "bench.threads"), num(sw, "bench.cpus"),
        esc(str(sw, "bench.wait_policy")), esc(f.teacher ? text(t, f.teacher, "bench.arbor_commit") : "?"));
    rc = rc || save(dir, "setup_text.tex", &v, e);

    // results
    say(&v, "The sweep has %d cells: the teacher%s, %d pruned and %d from-scratch students", t->n_rows - 1,
        f.corrected ? ", the corrected teacher" : "", f.n_pruned, f.n_scratch);
    if (f.n_baselines) say(&v, " and %d baseline%s", f.n_baselines, f.n_baselines > 1 ? "s" : "");
    say(&v, ". ");
    if (f.n_before && mmlu)
        say(&v, "Pruning alone leaves the students at %.1f\\%% on average; distillation brings them to %.1f\\%%. ",
            100 * f.before_sum / f.n_before, 100 * f.after_sum / f.n_pruned);
    if (f.n_before && mmlu && f.teacher) say(&v, "The teacher scores %.1f\\%%. ", 100 * cell(t, f.teacher, "eval.mmlu_micro"));
    say(&v, "\n");
    rc = rc || save(dir, "results_text.tex", &v, e);

    // limitations
    if (mmlu && f.max_half_ci > 0)
        say(&v, "Each accuracy comes from %.0f questions: the 95\\%% intervals are up to $\\pm$%.1f points wide, so differences between cells "
                "smaller than that are not distinguishable from sampling noise. ", n_q, 100 * f.max_half_ci);
    if (synthetic)
        say(&v, "The benchmark is synthetic (%s): its numbers show the pipeline working and are not comparable with published MMLU results. ",
            esc(str(sw, "eval.benchmark_text")));
    if (num(sw, "eval.limit") > 0) say(&v, "Only a subset of each subject's questions was asked. ");
    say(&v, "Speeds are medians of %.0f rounds; the range over rounds spans up to %.0f\\%% of a cell's median", rounds, 100 * f.max_rel_range);
    if (f.contended) say(&v, ", and %d of %d cell-rounds ran while other processes held the cores (re-measured where possible)", f.contended, f.rounds_total);
    say(&v, ". ");
    if (!strcmp(str(sw, "bench.device"), "cpu"))
        say(&v, "Throughput was measured on the CPU with %s weights; GPU throughput in bf16 depends on other limits and is not predicted by it. ",
            esc(f.teacher && text(t, f.teacher, "bench.precision")[0] ? text(t, f.teacher, "bench.precision") : str(sw, "bench.precision")));
    say(&v, "Every cell was trained once, with one data-order seed: the variation between seeds is not measured.\n");
    rc = rc || save(dir, "limitations.tex", &v, e);

    // captions
    say(&v, "\\newcommand{\\CaptionTable}{Every cell of the sweep%s. Accuracy: %s%s; speed: decode tokens/s at batch 1, median of %.0f rounds.}\n",
        f.n_before ? "; ``before'' is the pruned model's accuracy before distillation" : "", mmlu ? esc(bench) : "validation loss (nats/token)",
        mmlu ? " accuracy" : "", rounds);
    say(&v, "\\newcommand{\\CaptionSpeed}{Accuracy against decode tokens/s (batch 1; bars: range over rounds%s)%s%s.}\n",
        mmlu ? " and 95\\% intervals" : "", f.n_before ? ". Open circles: pruned models before distillation" : "",
        mmlu ? "; dashed: chance" : "");
    say(&v, "\\newcommand{\\CaptionSize}{Accuracy against parameter count, with the Pareto frontier of the finished models.}\n");
    rc = rc || save(dir, "captions.tex", &v, e);
    return rc;
}
