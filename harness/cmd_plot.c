// cmd_plot.c: arbor plot RESULTS.csv — speed-vs-accuracy and size-vs-accuracy frontiers of a sweep
// (gnuplot, plots/frontier.gp), PNG and PDF, every cell a labelled point, baselines marked, the Pareto
// frontier drawn. Accuracy is MMLU (micro) when the sweep measured it, else validation NLL.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../models/file_io.h"
#include "../models/vec.h"
#include "commands.h"
#include "results_table.h"

typedef struct {
    double x, y;
    const char* label;
    int kind;
} Point;

static int cmp_x(const void* a, const void* b) {
    double x = ((const Point*)a)->x, y = ((const Point*)b)->x;
    return (x > y) - (x < y);
}

// Pareto frontier: the points no other point beats on both axes (y higher is better; x higher is
// better when x_up, else lower), sorted by x.
static int frontier(const Point* p, int n, int x_up, Point* out) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        int dominated = 0;
        for (int j = 0; j < n && !dominated; j++) {
            if (i == j) continue;
            int xb = x_up ? p[j].x >= p[i].x : p[j].x <= p[i].x, xs = x_up ? p[j].x > p[i].x : p[j].x < p[i].x;
            dominated = xb && p[j].y >= p[i].y && (xs || p[j].y > p[i].y);
        }
        if (!dominated) out[k++] = p[i];
    }
    qsort(out, (size_t)k, sizeof *out, cmp_x);
    return k;
}

static int write_points(const char* path, const Point* p, int n, Err* e) {
    ByteVec v = {0};
    char line[512];
    for (int i = 0; i < n; i++) {
        int len = snprintf(line, sizeof line, "%.9g %.9g \"%s\" %d\n", p[i].x, p[i].y, p[i].label, p[i].kind);
        bytevec_append(&v, line, (size_t)len);
    }
    if (!v.data) bytevec_append(&v, "", 0);
    int rc = file_write_atomic(path, v.data, v.len, e);
    free(v.data);
    return rc;
}

static int run_gnuplot(const char* script, const char* points, const char* front, const char* out, const char* term,
                       const char* xlabel, const char* ylabel, const char* title, int logx, Err* e) {
    char cmd[32768];
    snprintf(cmd, sizeof cmd,
             "gnuplot -e \"points='%s'; frontier='%s'; out='%s'; term='%s'; xlabel='%s'; ylabel='%s'; title='%s'; logx=%d\" "
             "'%s' 2>&1",
             points, front, out, term, xlabel, ylabel, title, logx, script);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return err_set(e, "%s: gnuplot failed (is gnuplot installed? scripts/install_deps.sh)", out);
    return 0;
}

int cmd_plot(int argc, char** argv) {
    Option opts[] = {
        {"out", "DIR", "where the figures go (default: beside the CSV)", NULL},
        {"script", "FILE", "the gnuplot script", PLOTS_DIR "/frontier.gp"},
    };
    Command cmd = {"plot", "Frontier plots of a sweep: arbor plot RESULTS.csv [--out DIR].", opts, 2};
    const char* csv_path;
    int code;
    if (command_start_path(&cmd, argc, argv, "the results CSV", &csv_path, &code)) return code;
    Err e;
    Table t;
    if (table_read(csv_path, &t, &e)) return fail(&e);
    char out_dir[4096];
    if (arg_str(&cmd, "out")) snprintf(out_dir, sizeof out_dir, "%s", arg_str(&cmd, "out"));
    else {
        snprintf(out_dir, sizeof out_dir, "%s", csv_path);
        char* slash = strrchr(out_dir, '/');
        if (slash) *slash = 0;
        else snprintf(out_dir, sizeof out_dir, ".");
    }
    int c_label = table_col(&t, "label"), c_kind = table_col(&t, "kind"), c_params = table_col(&t, "params");
    int c_mmlu = table_col(&t, "eval.mmlu_micro"), c_nll = table_col(&t, "eval.val_nll"), c_tps = table_col(&t, "bench.decode_tps_b1");
    if (c_label < 0 || c_kind < 0 || c_params < 0 || c_tps < 0) {
        table_free(&t);
        return err_set(&e, "%s: not an arbor results table (needs label, kind, params, bench.decode_tps_b1)", csv_path), fail(&e);
    }
    int use_mmlu = 0;
    for (int r = 1; r < t.n_rows && c_mmlu >= 0; r++) use_mmlu |= table_cell(&t, r, c_mmlu)[0] != 0;
    int c_acc = use_mmlu ? c_mmlu : c_nll;
    if (c_acc < 0) {
        table_free(&t);
        return err_set(&e, "%s: no accuracy column (eval.mmlu_micro or eval.val_nll)", csv_path), fail(&e);
    }
    int c_before = use_mmlu ? table_col(&t, "eval_pruned.mmlu_micro") : -1;
    Point* speed = xmalloc(sizeof(Point) * (size_t)t.n_rows * 8);  // room for a "before distillation" twin of each row
    Point *size = speed + 2 * t.n_rows, *fs = size + 2 * t.n_rows, *fz = fs + 2 * t.n_rows;
    int n = 0;
    for (int r = 1; r < t.n_rows; r++) {
        const char* acc = table_cell(&t, r, c_acc);
        const char* tps = table_cell(&t, r, c_tps);
        if (!acc[0] || !tps[0]) continue;  // a cell whose stages have not finished
        const char* kind = table_cell(&t, r, c_kind);
        double y = use_mmlu ? 100.0 * atof(acc) : -atof(acc);  // NLL: plot its negative, so up is better
        int k = !strcmp(kind, "pruned") ? 0 : !strcmp(kind, "scratch") ? 1 : !strcmp(kind, "teacher") ? 2 : 3;
        speed[n] = (Point){atof(tps), y, table_cell(&t, r, c_label), k};
        size[n] = (Point){atof(table_cell(&t, r, c_params)) / 1e6, y, speed[n].label, k};
        n++;
    }
    int n_final = n;  // the frontier is over finished models; the pruned-but-undistilled twins come after
    for (int r = 1; r < t.n_rows && c_before >= 0; r++) {
        const char* before = table_cell(&t, r, c_before);
        const char* tps = table_cell(&t, r, c_tps);
        if (!before[0] || !tps[0]) continue;
        speed[n] = (Point){atof(tps), 100.0 * atof(before), "", 4};
        size[n] = (Point){atof(table_cell(&t, r, c_params)) / 1e6, speed[n].y, "", 4};
        n++;
    }
    int rc = n_final == 0 ? err_set(&e, "%s: no cell has both accuracy and throughput yet", csv_path) : 0;
    int nfs = rc ? 0 : frontier(speed, n_final, 1, fs), nfz = rc ? 0 : frontier(size, n_final, 0, fz);
    char p1[4300], p2[4300], p3[4300], p4[4300], out[4400];
    snprintf(p1, sizeof p1, "%s/frontier_speed.dat", out_dir);
    snprintf(p2, sizeof p2, "%s/frontier_speed_pareto.dat", out_dir);
    snprintf(p3, sizeof p3, "%s/frontier_params.dat", out_dir);
    snprintf(p4, sizeof p4, "%s/frontier_params_pareto.dat", out_dir);
    const char* ylabel = use_mmlu ? "MMLU accuracy (%, micro)" : "- validation NLL (nats/token)";
    const char* script = arg_str(&cmd, "script");
    if (!rc) rc = make_dirs(out_dir, &e) || write_points(p1, speed, n, &e) || write_points(p2, fs, nfs, &e) ||
                  write_points(p3, size, n, &e) || write_points(p4, fz, nfz, &e);
    const char* terms[2] = {"pngcairo", "pdfcairo"};
    const char* ext[2] = {"png", "pdf"};
    for (int i = 0; i < 2 && !rc; i++) {
        snprintf(out, sizeof out, "%s/frontier_speed.%s", out_dir, ext[i]);
        rc = run_gnuplot(script, p1, p2, out, terms[i], "decode tokens/s (batch 1)", ylabel, "accuracy vs speed", 0, &e);
        snprintf(out, sizeof out, "%s/frontier_params.%s", out_dir, ext[i]);
        if (!rc) rc = run_gnuplot(script, p3, p4, out, terms[i], "parameters (M)", ylabel, "accuracy vs size", 0, &e);
    }
    if (!rc) printf("%s/frontier_speed.png\n%s/frontier_params.png\n", out_dir, out_dir);
    table_free(&t);
    free(speed);
    return rc ? fail(&e) : 0;
}
