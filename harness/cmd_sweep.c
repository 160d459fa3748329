// cmd_sweep.c: arbor sweep CONFIG — run the cells of a sweep (cached stages, results.csv), list them
// (--dry-run), or write a Slurm job-array script with one task per cell (--emit-slurm); and
// arbor collect DIR, which rebuilds results.csv from the cell folders.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/file_io.h"
#include "../models/vec.h"
#include "commands.h"
#include "sweep_config.h"
#include "sweep_run.h"
#include "sweep_slurm.h"

int cmd_sweep(int argc, char** argv) {
    Option opts[] = {
        {"dry-run", NULL, "print the cells and stop", NULL},
        {"emit-slurm", NULL, "write OUT/NAME/sweep.slurm, a job array with one task per cell", NULL},
        {"only", "CELL", "run only this cell id", NULL},
        {"force", NULL, "re-run stages even when they are done", NULL},
        {"stage", "NAME", "run only this stage (correct, prune, eval_pruned, distill, init, train, eval, bench; roundN_prune, "
                          "roundN_distill)", NULL},
        {"keep-going", NULL, "when a cell fails, report it and finish the others (exit 1 at the end)", NULL},
    };
    Command cmd = {"sweep", "Run a sweep described by an INI file: arbor sweep CONFIG [options].", opts,
                   sizeof opts / sizeof opts[0]};
    const char* path;
    int code;
    if (command_start_path(&cmd, argc, argv, "the config file", &path, &code)) return code;
    Err e;
    SweepConfig c;
    int plan_only = arg_flag(&cmd, "dry-run") || arg_flag(&cmd, "emit-slurm");  // may run before the inputs are fetched
    static const char* const running[] = {"only", "force", "stage", "keep-going"}, *const emit[] = {"emit-slurm"};
    if (plan_only && (arg_refuse(&cmd, running, 4, "with --dry-run or --emit-slurm (nothing runs)", &e) ||
                      (arg_flag(&cmd, "dry-run") && arg_refuse(&cmd, emit, 1, "with --dry-run", &e))))
        return fail(&e);
    if ((plan_only ? sweep_config_load_lenient(path, &c, &e) : sweep_config_load(path, &c, &e))) return fail(&e);
    if (c.skipped[0])
        fprintf(stderr, "sweep %s: inputs not on disk yet, so these checks were skipped (a run makes them first):\n%s\n", c.name,
                c.skipped);
    Cell* cells;
    int n;
    sweep_cells(&c, &cells, &n);
    int rc = 0;
    if (arg_flag(&cmd, "emit-slurm")) {
        rc = sweep_emit_slurm(&c, cells, n, &e);
    } else if (arg_flag(&cmd, "dry-run")) {
        printf("%-16s  %-17s  %-28s  %s\n", "cell", "kind", "label", "source");
        for (int i = 0; i < n; i++)
            printf("%-16s  %-17s  %-28s  %s\n", cells[i].id, cell_kind_name(cells[i].kind), cells[i].label,
                   cells[i].kind == CELL_PRUNED || cells[i].kind == CELL_SCRATCH ? c.teacher : cells[i].model);
        fprintf(stderr, "sweep %s: %d cells; results would go to %s/%s\n", c.name, n, c.out, c.name);
    } else {
        rc = sweep_run(&c, cells, n, arg_str(&cmd, "only"), arg_str(&cmd, "stage"), arg_flag(&cmd, "force"),
                       arg_flag(&cmd, "keep-going"), &e);
        if (!rc) printf("%s/%s/results.csv\n", c.out, c.name);
    }
    free(cells);
    return rc ? fail(&e) : 0;
}

int cmd_collect(int argc, char** argv) {
    Command cmd = {"collect", "Rebuild DIR/results.csv from DIR/cells/* (after cells ran as separate jobs): arbor collect DIR.",
                   NULL, 0};
    const char* dir;
    int code;
    if (command_start_path(&cmd, argc, argv, "the sweep's results directory", &dir, &code)) return code;
    Err e;
    return sweep_collect(dir, &e) ? fail(&e) : 0;
}
