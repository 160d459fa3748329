// sweep_slurm.c: see sweep_slurm.h.
#include "sweep_slurm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../models/file_io.h"
#include "../models/vec.h"

#define ADD(...) (len += snprintf(out + len, len < n ? n - len : 0, __VA_ARGS__))

int sweep_cell_uses_ranks(const SweepConfig* c, const Cell* cell) {
    return sweep_distill_ranks(c) > 1 && (cell->kind == CELL_PRUNED || cell->kind == CELL_SCRATCH || cell->kind == CELL_CORRECTED);
}

int sweep_slurm_script(const SweepConfig* c, const Cell* cells, int n_cells, int ranked, const char* list, const char* arbor,
                       const char* config, const char* workdir, char* out, size_t n, Err* e) {
    for (int i = 0; i < n_cells; i++)
        for (int j = i + 1; j < n_cells; j++)
            if (!strcmp(cells[i].id, cells[j].id))
                return err_set(e, "%s: cells %s and %s are the same cell (%s): a job array would run it twice", c->path,
                               cells[i].label, cells[j].label, cells[i].id);
    // the results folder as the tasks see it: [sweep] out as written when absolute, else under workdir
    char res[4200];
    if (c->out[0] == '/') snprintf(res, sizeof res, "%s/%s", c->out, c->name);
    else snprintf(res, sizeof res, "%s/%s/%s", workdir, c->out, c->name);
    size_t len = 0;
    int gpus = c->slurm_gpus ? c->slurm_gpus : c->device == DEVICE_CUDA ? 1 : 0;
    ADD("#!/bin/bash\n");
    ADD("# arbor sweep %s: one array task per cell (%d cells%s), from %s\n", c->name, n_cells,
        sweep_distill_ranks(c) > 1 ? ranked ? " that train over ranks" : " that only evaluate: one task each" : "", config);
    ADD("# submit: sbatch %s/sweep.slurm (or %s/submit.sh: the array, then collect once every task succeeded)\n", res, res);
    ADD("# when every task has finished: %s collect %s\n", arbor, res);
    ADD("#SBATCH --job-name=arbor-%s\n", c->name);
    ADD("#SBATCH --array=1-%d\n", n_cells);
    int ranks = sweep_distill_ranks(c);
    if (ranks > 1 && ranked) {  // each cell's allocation spans the distill stage's ranks
        int nodes = c->nodes > 0 ? c->nodes : 1, per = ranks / nodes;
        ADD("# each cell: the stages run here, on the first node; its distill stage starts `srun --ntasks=%d` over\n", ranks);
        ADD("# the whole allocation (%d node%s x %d %s), grad_accum %d / %d per rank: the same global batch\n", nodes,
            nodes > 1 ? "s" : "", per, c->device == DEVICE_CUDA ? "GPUs" : "MPI ranks", c->grad_accum, ranks);
        ADD("#SBATCH --nodes=%d\n", nodes);
        ADD("#SBATCH --ntasks-per-node=%d\n", per);
        if (c->device == DEVICE_CUDA) {  // a rank per GPU (not also a --gres of one)
            ADD("#SBATCH --gpus-per-node=%d\n", per);
            if (!c->slurm_gpus) gpus = 0;
        }
    } else {
        ADD("#SBATCH --ntasks=1\n");
    }
    if (ranks > 1 && !ranked) ADD("# (the teacher's and the baselines' cells run no training stage: no ranks)\n");
    ADD("#SBATCH --output=%s/slurm-%%A_%%a.log\n", res);
    if (gpus) ADD("#SBATCH --gres=gpu:%d\n", gpus);
    if (c->slurm_cpus) ADD("#SBATCH --cpus-per-task=%d\n", c->slurm_cpus);
    if (c->slurm_time[0]) ADD("#SBATCH --time=%s\n", c->slurm_time);
    if (c->slurm_mem[0]) ADD("#SBATCH --mem=%s\n", c->slurm_mem);
    if (c->slurm_partition[0]) ADD("#SBATCH --partition=%s\n", c->slurm_partition);
    if (c->slurm_account[0]) ADD("#SBATCH --account=%s\n", c->slurm_account);
    ADD("set -euo pipefail\n");
    ADD("cd '%s'\n", workdir);
    if (c->slurm_cpus) ADD("export OMP_NUM_THREADS=%d\n", c->slurm_cpus);
    ADD("cell=$(sed -n \"${SLURM_ARRAY_TASK_ID:?run under sbatch, or set SLURM_ARRAY_TASK_ID}p\" '%s/%s')\n", res, list);
    ADD("[ -n \"$cell\" ] || { echo \"arbor: no cell at line $SLURM_ARRAY_TASK_ID of %s\" >&2; exit 2; }\n", list);
    ADD("exec '%s' sweep '%s' --only \"$cell\"\n", arbor, config);
    if (len >= n) return err_set(e, "%s: the Slurm script is too long", c->path);
    return 0;
}

int sweep_emit_slurm(const SweepConfig* c, const Cell* cells, int n, Err* e) {
    char arbor[PATH_MAX], config[PATH_MAX], workdir[PATH_MAX];
    ssize_t got = readlink("/proc/self/exe", arbor, sizeof arbor - 1);
    if (got <= 0) return err_set(e, "--emit-slurm: cannot find the arbor binary's path");
    arbor[got] = 0;
    if (!realpath(c->path, config)) return err_set(e, "%s: cannot resolve its absolute path", c->path);
    if (!getcwd(workdir, sizeof workdir)) return err_set(e, "--emit-slurm: cannot read the working folder");
    for (const char* p = arbor; *p; p++)
        if (*p == '\'') return err_set(e, "--emit-slurm: the binary's path has a quote: %s", arbor);
    for (const char* p = config; *p; p++)
        if (*p == '\'') return err_set(e, "--emit-slurm: the config's path has a quote: %s", config);
    for (const char* p = workdir; *p; p++)
        if (*p == '\'') return err_set(e, "--emit-slurm: the working folder has a quote: %s", workdir);
    char dir[2400], path[2500], res[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", c->out, c->name);
    if (make_dirs(dir, e)) return -1;
    if (!realpath(dir, res)) return err_set(e, "%s: cannot resolve its absolute path", dir);
    // the cells whose training stages run over ranks get that allocation; the others one task each
    static const char* scripts[2] = {"sweep_single.slurm", "sweep.slurm"}, *lists[2] = {"cells_single.txt", "cells.txt"};
    Cell* part = xmalloc(sizeof(Cell) * (size_t)(n ? n : 1));
    const char* written[2] = {NULL, NULL};
    int split = sweep_distill_ranks(c) > 1, rc = 0;
    for (int ranked = 1; ranked >= 0 && !rc; ranked--) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (!split || sweep_cell_uses_ranks(c, &cells[i]) == ranked) part[k++] = cells[i];
        if (!k || (!split && !ranked)) continue;
        ByteVec ids = {0};
        for (int i = 0; i < k; i++) {
            bytevec_append(&ids, part[i].id, strlen(part[i].id));
            bytevec_append(&ids, "\n", 1);
        }
        static char script[65536];
        const char* list = split ? lists[ranked] : "cells.txt";
        const char* name = split ? scripts[ranked] : "sweep.slurm";
        rc = sweep_slurm_script(c, part, k, ranked, list, arbor, config, workdir, script, sizeof script, e);
        snprintf(path, sizeof path, "%s/%s", dir, list);
        if (!rc) rc = file_write_atomic(path, ids.data, ids.len, e);
        free(ids.data);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (!rc) rc = file_write_atomic(path, script, strlen(script), e);
        written[ranked] = name;
    }
    free(part);
    if (rc) return -1;
    char submit[12288];
    if (sweep_slurm_submit(c, arbor, res, written, submit, sizeof submit, e)) return -1;
    snprintf(path, sizeof path, "%s/submit.sh", dir);
    if (file_write_atomic(path, submit, strlen(submit), e) || chmod(path, 0755) != 0) return err_set(e, "%s: cannot write", path);
    printf("%s\n", path);
    return 0;
}

int sweep_slurm_submit(const SweepConfig* c, const char* arbor, const char* res, const char* const scripts[2], char* out, size_t n,
                       Err* e) {
    size_t len = 0;
    ADD("#!/bin/bash\n");
    ADD("# arbor sweep %s: submits the job array%s, then `arbor collect` as a job that starts once every task succeeded\n", c->name,
        scripts[0] && scripts[1] ? "s" : "");
    ADD("set -euo pipefail\n");
    ADD("after=\n");
    for (int k = 1; k >= 0; k--)
        if (scripts[k]) {
            ADD("job=$(sbatch --parsable '%s/%s')\n", res, scripts[k]);
            ADD("after=\"$after:${job%%%%;*}\"\n");  // --parsable prints "jobid[;cluster]"
        }
    ADD("sbatch --parsable --job-name=arbor-%s-collect --dependency=afterok\"$after\" --ntasks=1 --output='%s/slurm-collect-%%j.log'",
        c->name, res);
    if (c->slurm_time[0]) ADD(" --time=00:30:00");
    if (c->slurm_partition[0]) ADD(" --partition='%s'", c->slurm_partition);
    if (c->slurm_account[0]) ADD(" --account='%s'", c->slurm_account);
    ADD(" --wrap=\"'%s' collect '%s'\"\n", arbor, res);
    ADD("echo \"submitted: arrays${after//:/ }, then collect\"\n");
    if (len >= n) return err_set(e, "%s: the submit script is too long", c->path);
    return 0;
}
