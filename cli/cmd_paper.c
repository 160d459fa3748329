// cmd_paper.c: arbor paper RESULTS_DIR — the LaTeX article of a sweep: paper/paper.tex arranging the
// generated text (harness/paper_text.h: every sentence from RESULTS_DIR/sweep.json and results.csv),
// results_table.tex and the frontier PDFs (made by arbor plot first when missing), built with pdflatex
// into RESULTS_DIR/paper/paper.pdf.
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../models/file_io.h"
#include "../models/vec.h"
#include "commands.h"
#include "../harness/paper_text.h"
#include "../harness/results_table.h"

int cmd_plot(int argc, char** argv);

static int copy_file(const char* from, const char* to, Err* e) {
    size_t len;
    char* data = file_read_all(from, &len, e);
    if (!data) return -1;
    int rc = file_write_atomic(to, data, len, e);
    free(data);
    return rc;
}

int cmd_paper(int argc, char** argv) {
    Option opts[] = {{"template", "FILE", "the LaTeX article", PAPER_DIR "/paper.tex"}};
    Command cmd = {"paper", "Build the LaTeX article of a sweep: arbor paper RESULTS_DIR.", opts, 1};
    const char* dir;
    int code;
    if (command_start_path(&cmd, argc, argv, "the sweep's results directory", &dir, &code)) return code;
    Err e;
    char csv_path[4200], out[4200], path[4400];
    snprintf(csv_path, sizeof csv_path, "%s/results.csv", dir);
    char sweep_path[4400];
    snprintf(sweep_path, sizeof sweep_path, "%s/sweep.json", dir);
    char* sweep_text = file_read_all(sweep_path, NULL, &e);
    cJSON* sweep = sweep_text ? cJSON_Parse(sweep_text) : NULL;
    free(sweep_text);
    if (!sweep) {
        err_set(&e, "%s: missing or malformed (arbor sweep writes it; re-run the sweep to describe it)", sweep_path);
        return fail(&e);
    }
    Table rt;
    if (table_read(csv_path, &rt, &e)) return cJSON_Delete(sweep), fail(&e);
    snprintf(path, sizeof path, "%s/frontier_speed.pdf", dir);
    if (access(path, F_OK) != 0) {
        char* plot_argv[1] = {csv_path};
        if (cmd_plot(1, plot_argv) != 0) return table_free(&rt), cJSON_Delete(sweep), ARBOR_EXIT_RUNTIME;
    }
    snprintf(out, sizeof out, "%s/paper", dir);
    if (make_dirs(out, &e) || paper_write_text(out, sweep, &rt, &e)) return table_free(&rt), cJSON_Delete(sweep), fail(&e);
    cJSON_Delete(sweep);
    // results_table.tex
    const char* names[] = {"label", "kind", "params", "kept_layers", "hidden", "ffn", "eval_pruned.mmlu_micro", "eval.mmlu_micro",
                           "eval.val_nll", "bench.decode_tps_b1"};
    const char* heads[] = {"cell", "kind", "params (M)", "layers kept", "hidden", "ffn", "before", "accuracy", "val NLL", "tokens/s"};
    int cols[10];
    for (int k = 0; k < 10; k++) cols[k] = table_col(&rt, names[k]);
    ByteVec t = {0};
    bytevec_append(&t, "\\begin{tabular}{llrrrrrrrr}\n\\hline\n", 35);
    for (int k = 0; k < 10; k++) {
        latex_append(&t, heads[k]);
        bytevec_append(&t, k < 9 ? " & " : " \\\\\n\\hline\n", k < 9 ? 3 : 11);
    }
    for (int r = 1; r < rt.n_rows; r++) {
        for (int k = 0; k < 10; k++) {
            const char* f = table_cell(&rt, r, cols[k]);
            char num[64];
            if (k == 2 && f[0]) snprintf(num, sizeof num, "%.3f", atof(f) * 1e-6), latex_append(&t, num);
            else if ((k == 6 || k == 7) && f[0]) snprintf(num, sizeof num, "%.1f\\%%", 100 * atof(f)), bytevec_append(&t, num, strlen(num));
            else if ((k == 8) && f[0]) snprintf(num, sizeof num, "%.3f", atof(f)), latex_append(&t, num);
            else if ((k == 9) && f[0]) snprintf(num, sizeof num, "%.0f", atof(f)), latex_append(&t, num);
            else latex_append(&t, f[0] ? f : "--");
            bytevec_append(&t, k < 9 ? " & " : " \\\\\n", k < 9 ? 3 : 4);
        }
    }
    bytevec_append(&t, "\\hline\n\\end{tabular}\n", 21);
    snprintf(path, sizeof path, "%s/results_table.tex", out);
    int rc = file_write_atomic(path, t.data, t.len, &e);
    free(t.data);
    table_free(&rt);
    const char* figures[2] = {"frontier_speed.pdf", "frontier_params.pdf"};
    for (int i = 0; i < 2 && !rc; i++) {
        char from[4400], to[4400];
        snprintf(from, sizeof from, "%s/%s", dir, figures[i]);
        snprintf(to, sizeof to, "%s/%s", out, figures[i]);
        rc = copy_file(from, to, &e);
    }
    snprintf(path, sizeof path, "%s/paper.tex", out);
    if (!rc) rc = copy_file(arg_str(&cmd, "template"), path, &e);
    if (rc) return fail(&e);
    char sh[9000];
    snprintf(sh, sizeof sh,
             "cd '%s' && pdflatex -interaction=nonstopmode -halt-on-error paper.tex > pdflatex.log 2>&1 && "
             "pdflatex -interaction=nonstopmode -halt-on-error paper.tex >> pdflatex.log 2>&1",
             out);
    int st = system(sh);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "arbor: paper: pdflatex failed (installed? scripts/install_deps.sh); see %s/pdflatex.log\n", out);
        return ARBOR_EXIT_RUNTIME;
    }
    printf("%s/paper.pdf\n", out);
    return 0;
}
