// cmd_sweep.c: arbor sweep CONFIG — run the cells of a sweep (cached stages, results.csv), list them
// (--dry-run), or write a Slurm job-array script with one task per cell (--emit-slurm); and
// arbor collect DIR, which rebuilds results.csv from the cell folders.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/file_io.h"
#include "../models/vec.h"
#include "commands.h"
#include "../harness/sweep_config.h"
#include "../harness/sweep_graph.h"
#include "../harness/sweep_run.h"
#include "../harness/sweep_slurm.h"
#include "../harness/sweep_store.h"

// --dry-run: the plan, cell by cell and stage by stage, with what the store already holds
static int print_plan(const SweepConfig* c, const Cell* cells, int n, Err* e) {
    InputHashes in;
    if (sweep_hash_inputs(c, 1, &in, e)) return -1;
    SweepPlan p;
    sweep_plan_build(c, cells, n, &in, &p);
    int to_run = 0, reused = 0;
    printf("%-16s  %-17s  %-28s  %s\n", "cell", "kind", "label", "source");
    for (int i = 0; i < n; i++) {
        const PlanCell* pc = &p.cells[i];
        printf("%-16s  %-17s  %-28s  %s\n", cells[i].id, cell_kind_name(cells[i].kind), cells[i].label,
               cells[i].kind == CELL_PRUNED || cells[i].kind == CELL_SCRATCH ? c->teacher : cells[i].model);
        for (int s = 0; s < pc->n_stages; s++) {
            int have = store_has(p.dir, pc->stages[s].key);
            to_run += !have, reused += have;
            printf("    %-16s %s  %s\n", pc->stages[s].name, pc->stages[s].key, have ? "in the store" : "to run");
        }
    }
    fprintf(stderr, "sweep %s: %d cells; %d stages to run, %d in the store%s; results would go to %s\n", c->name, n, to_run, reused,
            in.missing ? " (inputs not on disk yet: their stages' keys are not final)" : "", p.dir);
    sweep_plan_free(&p);
    return 0;
}

int cmd_sweep(int argc, char** argv) {
    Option opts[] = {
        {"dry-run", NULL, "print the cells and stop", NULL},
        {"emit-slurm", NULL, "write OUT/NAME/sweep.slurm, a job array with one task per cell", NULL},
        {"only", "CELL", "run only this cell (its id or label)", NULL},
        {"force", NULL, "re-run stages even when they are done", NULL},
        {"stage", "NAME", "run only this stage (correct, prune, eval_pruned, distill, init, train, eval, bench; roundN_prune, "
                          "roundN_distill)", NULL},
        {"keep-going", NULL, "when a cell fails, report it and finish the others (exit 1 at the end)", NULL},
        {"gc", NULL, "list the stages in OUT/NAME/stages that no config's manifest names (with --force: remove them)", NULL},
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
    static const char* const gc_not[] = {"only", "stage", "keep-going", "dry-run", "emit-slurm"};
    if (arg_flag(&cmd, "gc")) {
        if (arg_refuse(&cmd, gc_not, 5, "with --gc", &e) || sweep_config_load_lenient(path, &c, &e)) return fail(&e);
        char dir[2200];
        snprintf(dir, sizeof dir, "%s/%s", c.out, c.name);
        return store_gc(dir, arg_flag(&cmd, "force"), &e) ? fail(&e) : 0;
    }
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
        rc = print_plan(&c, cells, n, &e);
    } else {
        rc = sweep_run(&c, cells, n, arg_str(&cmd, "only"), arg_str(&cmd, "stage"), arg_flag(&cmd, "force"),
                       arg_flag(&cmd, "keep-going"), &e);
        if (!rc) printf("%s/%s/results.csv\n", c.out, c.name);
    }
    free(cells);
    return rc ? fail(&e) : 0;
}

int cmd_collect(int argc, char** argv) {
    Command cmd = {"collect", "Rebuild DIR/results.csv, mmlu_subjects.csv and rounds.csv from the cells DIR/manifest.json lists "
                              "(after cells ran as separate jobs): arbor collect DIR.",
                   NULL, 0};
    const char* dir;
    int code;
    if (command_start_path(&cmd, argc, argv, "the sweep's results directory", &dir, &code)) return code;
    Err e;
    return sweep_collect(dir, &e) ? fail(&e) : 0;
}
