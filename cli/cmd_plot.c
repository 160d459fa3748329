// cmd_plot.c: arbor plot RESULTS.csv — speed-vs-accuracy and size-vs-accuracy frontiers of a sweep
// (gnuplot, plots/frontier.gp), PNG and PDF, every cell a labelled point, baselines marked, the Pareto
// frontier drawn as a line. Accuracy is MMLU (micro) with its 95% interval and the chance level when
// the sweep measured it, else validation NLL; speed carries the range over the bench rounds. Axes come
// from the data (speeds from 0 up, accuracy within 0..100), labels are placed so they do not overprint,
// the legend lists only what is plotted, and gnuplot's own chatter goes to a log, not the terminal.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "../models/file_io.h"
#include "../models/vec.h"
#include "commands.h"
#include "../harness/results_table.h"

typedef struct {
    double x, y;
    const char* label;
    int kind;
    double xlo, xhi, ylo, yhi;  // error bars (equal to x, y when there are none)
    double lx, ly;              // where its label goes (data coordinates)
} Point;

typedef struct {
    double xmin, xmax, ymin, ymax, chance;  // chance < 0: no chance line
    int has[5];                             // points of each kind
} Axes;

static int cmp_x(const void* a, const void* b) {
    double x = ((const Point*)a)->x, y = ((const Point*)b)->x;
    return (x > y) - (x < y);
}

// two measured speeds whose ranges over rounds overlap: measurement noise cannot order them
static int x_tie(const Point* a, const Point* b) {
    int ranged = a->xhi > a->xlo || b->xhi > b->xlo;
    return ranged && a->xlo <= b->xhi && b->xlo <= a->xhi;
}

// Pareto frontier: the points no other point beats on both axes (y higher is better; x higher is
// better when x_up, else lower), sorted by x. With ties, x values whose ranges overlap count as equal,
// so two cells of one shape are not split by noise: the more accurate one wins, or both stay.
static int frontier(const Point* p, int n, int x_up, int ties, Point* out) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        int dominated = 0;
        for (int j = 0; j < n && !dominated; j++) {
            if (i == j) continue;
            int tie = ties && x_tie(&p[i], &p[j]);
            int xb = tie || (x_up ? p[j].x >= p[i].x : p[j].x <= p[i].x), xs = !tie && (x_up ? p[j].x > p[i].x : p[j].x < p[i].x);
            dominated = xb && p[j].y >= p[i].y && (xs || p[j].y > p[i].y);
        }
        if (!dominated) out[k++] = p[i];
    }
    qsort(out, (size_t)k, sizeof *out, cmp_x);
    return k;
}

// notes: more comment lines (or NULL)
static int write_points(const char* path, const Point* p, int n, const Axes* a, const char* ylabel, const char* notes, Err* e) {
    ByteVec v = {0};
    char line[1024];
    if (a) {  // comments gnuplot skips: the axes the figure is drawn with, and the accuracy axis' label
        int len = snprintf(line, sizeof line, "# axes %.9g %.9g %.9g %.9g\n# ylabel %s\n", a->xmin, a->xmax, a->ymin, a->ymax, ylabel);
        bytevec_append(&v, line, (size_t)len);
    }
    if (notes) bytevec_append(&v, notes, strlen(notes));
    for (int i = 0; i < n; i++) {
        int len = snprintf(line, sizeof line, "%.9g %.9g \"%s\" %d %.9g %.9g %.9g %.9g %.9g %.9g\n", p[i].x, p[i].y, p[i].label,
                           p[i].kind, p[i].xlo, p[i].xhi, p[i].ylo, p[i].yhi, p[i].lx, p[i].ly);
        bytevec_append(&v, line, (size_t)len);
    }
    if (!v.data) bytevec_append(&v, "", 0);
    int rc = file_write_atomic(path, v.data, v.len, e);
    free(v.data);
    return rc;
}

// Axes from the data: error bars included, a margin around, speeds and sizes from 0 up, accuracy
// within 0..100 (MMLU).
static void axes_of(const Point* p, int n, int mmlu, double chance, Axes* a) {
    a->xmin = 1e300, a->xmax = -1e300, a->ymin = 1e300, a->ymax = -1e300, a->chance = chance;
    for (int k = 0; k < 5; k++) a->has[k] = 0;
    for (int i = 0; i < n; i++) {
        a->xmin = fmin(a->xmin, p[i].xlo), a->xmax = fmax(a->xmax, p[i].xhi);
        a->ymin = fmin(a->ymin, p[i].ylo), a->ymax = fmax(a->ymax, p[i].yhi);
        a->has[p[i].kind] = 1;
    }
    if (chance >= 0) a->ymin = fmin(a->ymin, chance), a->ymax = fmax(a->ymax, chance);
    double dx = a->xmax - a->xmin, dy = a->ymax - a->ymin;
    if (dx <= 0) dx = fabs(a->xmax) > 0 ? fabs(a->xmax) * 0.2 : 1;
    if (dy <= 0) dy = fabs(a->ymax) > 0 ? fabs(a->ymax) * 0.2 : 1;
    a->xmin -= 0.1 * dx, a->xmax += 0.12 * dx, a->ymin -= 0.1 * dy, a->ymax += 0.15 * dy;
    if (a->xmin < 0) a->xmin = 0;
    if (mmlu) a->ymin = fmax(a->ymin, 0), a->ymax = fmin(a->ymax, 100);
}

// Greedy label placement: each label (points in x order) takes, of a few offsets above and below its
// point, the one whose box stays inside the plot and overlaps the labels placed before it least.
static void place_labels(Point* p, int n, const Axes* a) {
    static const double cand[][2] = {{0, 1.1},  {0, -1.3}, {0, 2.3},   {0, -2.5}, {0, 3.5},  {0, -3.7},
                                     {6, 0},    {-6, 0},   {6, 1.2},   {-6, 1.2}, {6, -1.2}, {-6, -1.2},
                                     {0, 4.7},  {0, -4.9}, {12, 0},    {-12, 0}};
    const double char_w = 0.0085, char_h = 0.032;  // one character cell of the 9-point label font, as a share of the plot
    double (*box)[4] = xmalloc(sizeof(double[4]) * (size_t)(n ? n : 1));
    int placed = 0;
    for (int i = 0; i < n; i++) {
        if (!p[i].label[0]) continue;
        double cx = (p[i].x - a->xmin) / (a->xmax - a->xmin), cy = (p[i].y - a->ymin) / (a->ymax - a->ymin);
        double w = char_w * (double)strlen(p[i].label), best_cost = 1e300;
        int best = 0;
        for (int c = 0; c < (int)(sizeof cand / sizeof cand[0]); c++) {
            double x0 = cx + cand[c][0] * char_w - w / 2, y0 = cy + cand[c][1] * char_h - char_h / 2;
            double cost = 0;
            if (x0 < 0 || x0 + w > 1 || y0 < 0 || y0 + char_h > 1) cost += 1.0;  // outside the plot: clipped
            for (int j = 0; j < placed; j++) {
                double ox = fmin(x0 + w, box[j][0] + box[j][2]) - fmax(x0, box[j][0]);
                double oy = fmin(y0 + char_h, box[j][1] + box[j][3]) - fmax(y0, box[j][1]);
                if (ox > 0 && oy > 0) cost += ox * oy / (w * char_h) + 0.1;
            }
            cost += 0.001 * c;  // prefer the nearer places
            if (cost < best_cost) best_cost = cost, best = c;
        }
        box[placed][0] = cx + cand[best][0] * char_w - w / 2, box[placed][1] = cy + cand[best][1] * char_h - char_h / 2;
        box[placed][2] = w, box[placed][3] = char_h;
        placed++;
        p[i].lx = p[i].x + cand[best][0] * char_w * (a->xmax - a->xmin);
        p[i].ly = p[i].y + cand[best][1] * char_h * (a->ymax - a->ymin);
    }
    free(box);
}

static int run_gnuplot(const char* script, const char* points, const char* front, const char* out, const char* term,
                       const char* xlabel, const char* ylabel, const char* title, const Axes* a, Err* e) {
    char cmd[32768], log[4400];
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(cmd, sizeof cmd,
             "gnuplot -e \"points='%s'; frontier='%s'; out='%s'; term='%s'; xlabel='%s'; ylabel='%s'; title='%s'; "
             "xmin=%.9g; xmax=%.9g; ymin=%.9g; ymax=%.9g; chance=%.9g; has0=%d; has1=%d; has2=%d; has3=%d; has4=%d\" "
             "'%s' > '%s' 2>&1",
             points, front, out, term, xlabel, ylabel, title, a->xmin, a->xmax, a->ymin, a->ymax, a->chance, a->has[0], a->has[1],
             a->has[2], a->has[3], a->has[4], script, log);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return err_set(e, "%s: gnuplot failed (see %s; is gnuplot installed? scripts/install_deps.sh)", out, log);
    unlink(log);  // warnings of a successful run stay off the terminal and off the disk
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
    int c_lo = table_col(&t, "eval.mmlu_ci_low"), c_hi = table_col(&t, "eval.mmlu_ci_high");
    int c_blo = table_col(&t, "eval_pruned.mmlu_ci_low"), c_bhi = table_col(&t, "eval_pruned.mmlu_ci_high");
    int c_tmin = table_col(&t, "bench.decode_tps_b1_min"), c_tmax = table_col(&t, "bench.decode_tps_b1_max");
    int c_chance = table_col(&t, "eval.mmlu_chance");
    double chance = -1;
    Point* speed = xmalloc(sizeof(Point) * (size_t)t.n_rows * 8);  // room for a "before distillation" twin of each row
    Point *size = speed + 2 * t.n_rows, *fs = size + 2 * t.n_rows, *fz = fs + 2 * t.n_rows;
    int n = 0;
    // a number from the table, or fallback when the cell is empty or the column absent
    #define NUM(r, c, fallback) ((c) >= 0 && table_cell(&t, r, c)[0] ? atof(table_cell(&t, r, c)) : (fallback))
    for (int pass = 0; pass < 2; pass++)  // finished models, then the pruned-but-undistilled twins (not on the frontier)
        for (int r = 1; r < t.n_rows; r++) {
            int c_y = pass ? c_before : c_acc;
            if (c_y < 0) continue;
            const char* acc = table_cell(&t, r, c_y);
            const char* tps = table_cell(&t, r, c_tps);
            if (!acc[0] || !tps[0] || atof(tps) <= 0) continue;  // a cell whose stages have not finished
            const char* kind = table_cell(&t, r, c_kind);
            double y = use_mmlu ? 100.0 * atof(acc) : -atof(acc);  // NLL: plot its negative, so up is better
            double ylo = use_mmlu ? 100.0 * NUM(r, pass ? c_blo : c_lo, atof(acc)) : y;
            double yhi = use_mmlu ? 100.0 * NUM(r, pass ? c_bhi : c_hi, atof(acc)) : y;
            int k = pass ? 4 : !strcmp(kind, "pruned") ? 0 : !strcmp(kind, "scratch") ? 1 : !strncmp(kind, "teacher", 7) ? 2 : 3;
            double x = atof(tps), m = atof(table_cell(&t, r, c_params)) / 1e6;
            const char* label = pass ? "" : table_cell(&t, r, c_label);
            speed[n] = (Point){x, y, label, k, NUM(r, c_tmin, x), NUM(r, c_tmax, x), ylo, yhi, 0, 0};
            size[n] = (Point){m, y, label, k, m, m, ylo, yhi, 0, 0};
            if (use_mmlu && chance < 0) chance = 100.0 * NUM(r, c_chance, -0.01);
            n++;
        }
    #undef NUM
    int n_final = 0;
    while (n_final < n && speed[n_final].kind != 4) n_final++;
    int rc = n_final == 0 ? err_set(&e, "%s: no cell has both accuracy and throughput yet", csv_path) : 0;
    int nfs = rc ? 0 : frontier(speed, n_final, 1, 1, fs), nfz = rc ? 0 : frontier(size, n_final, 0, 0, fz);
    // speeds inside each other's ranges are ties: said on the figure, and listed beside its points
    ByteVec tie_notes = {0};
    int n_ties = 0;
    for (int i = 0; i < n_final; i++)
        for (int j = i + 1; j < n_final; j++)
            if (x_tie(&speed[i], &speed[j])) {
                char note[400];
                int len = snprintf(note, sizeof note, "# tie %s = %s (decode tokens/s ranges %.4g-%.4g and %.4g-%.4g overlap)\n",
                                   speed[i].label, speed[j].label, speed[i].xlo, speed[i].xhi, speed[j].xlo, speed[j].xhi);
                bytevec_append(&tie_notes, note, (size_t)len);
                n_ties++;
            }
    Axes as, az;
    axes_of(speed, n, use_mmlu, chance, &as);
    axes_of(size, n, use_mmlu, chance, &az);
    qsort(speed, (size_t)n, sizeof *speed, cmp_x);
    qsort(size, (size_t)n, sizeof *size, cmp_x);
    place_labels(speed, n, &as);
    place_labels(size, n, &az);
    char p1[4300], p2[4300], p3[4300], p4[4300], out[4400];
    snprintf(p1, sizeof p1, "%s/frontier_speed.dat", out_dir);
    snprintf(p2, sizeof p2, "%s/frontier_speed_pareto.dat", out_dir);
    snprintf(p3, sizeof p3, "%s/frontier_params.dat", out_dir);
    snprintf(p4, sizeof p4, "%s/frontier_params_pareto.dat", out_dir);
    // the benchmark's name, and whether it is synthetic, from the sweep.json beside the table
    char ylabel[512], bench[128] = "MMLU", sweep_json[4200];
    int synthetic = 0;
    snprintf(sweep_json, sizeof sweep_json, "%s", csv_path);
    char* cut = strrchr(sweep_json, '/');
    snprintf(cut ? cut + 1 : sweep_json, sizeof sweep_json - (size_t)(cut ? cut + 1 - sweep_json : 0), "sweep.json");
    if (access(sweep_json, F_OK) == 0) {
        Err ignored;
        char* text = file_read_all(sweep_json, NULL, &ignored);
        cJSON* sw = text ? cJSON_Parse(text) : NULL;
        const cJSON* ev = cJSON_GetObjectItem(sw, "eval");
        const cJSON* name = cJSON_GetObjectItem(ev, "benchmark");
        if (cJSON_IsString(name)) snprintf(bench, sizeof bench, "%s", name->valuestring);
        synthetic = cJSON_IsTrue(cJSON_GetObjectItem(ev, "synthetic"));
        cJSON_Delete(sw);
        free(text);
    }
    for (char* q = bench; *q; q++)
        if (*q == '\'' || *q == '"' || *q == '\\' || *q == '$' || *q == '`') *q = ' ';  // it goes inside gnuplot -e '...'
    if (use_mmlu)
        snprintf(ylabel, sizeof ylabel, "%s accuracy (%s%%, micro; 95%% interval)", bench, synthetic ? "synthetic benchmark; " : "");
    else
        snprintf(ylabel, sizeof ylabel, "- validation NLL (nats/token)");
    const char* script = arg_str(&cmd, "script");
    if (!rc) rc = make_dirs(out_dir, &e) || write_points(p1, speed, n, &as, ylabel, tie_notes.data, &e) ||
                  write_points(p2, fs, nfs, NULL, NULL, NULL, &e) || write_points(p3, size, n, &az, ylabel, NULL, &e) ||
                  write_points(p4, fz, nfz, NULL, NULL, NULL, &e);
    char speed_title[128];
    snprintf(speed_title, sizeof speed_title, "accuracy vs speed%s",
             n_ties ? " (overlapping speed ranges are ties, not ordered)" : "");
    free(tie_notes.data);
    const char* terms[2] = {"pngcairo", "pdfcairo"};
    const char* ext[2] = {"png", "pdf"};
    for (int i = 0; i < 2 && !rc; i++) {
        snprintf(out, sizeof out, "%s/frontier_speed.%s", out_dir, ext[i]);
        rc = run_gnuplot(script, p1, p2, out, terms[i], "decode tokens/s (batch 1; median and range over rounds)", ylabel,
                         speed_title, &as, &e);
        snprintf(out, sizeof out, "%s/frontier_params.%s", out_dir, ext[i]);
        if (!rc) rc = run_gnuplot(script, p3, p4, out, terms[i], "parameters (M)", ylabel, "accuracy vs size", &az, &e);
    }
    if (!rc) printf("%s/frontier_speed.png\n%s/frontier_params.png\n", out_dir, out_dir);
    table_free(&t);
    free(speed);
    return rc ? fail(&e) : 0;
}
