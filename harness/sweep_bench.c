// sweep_bench.c: see sweep_bench.h.
#include "sweep_bench.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "arbor_commit.h"  // ARBOR_COMMIT, generated at build time
#include "../evals/cpu_usage.h"
#include "../evals/throughput.h"
#include "../kernels/clock.h"
#include "../models/file_io.h"
#include "../models/vec.h"
#include "cpu_policy.h"
#include "../kernels/cpu/blas_core.h"
#include "sweep_plan.h"
#include "sweep_store.h"

#define MAX_ATTEMPTS 3  // a contended measurement is repeated up to twice

typedef struct {
    int round, member, batch_index, attempt, used;
    double prefill_tps, decode_tps, decode_ms, wait_share, cpu_per_wall, load;
    double peak_gb;
    WeightType weights;  // how the measured model held its matrices (the CPU's precision, as it ran)
} Sample;

static void cpu_name(char* out, size_t n) {
    snprintf(out, n, "unknown CPU");
    FILE* info = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (info && fgets(line, sizeof line, info))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(out, n, "%s", strchr(line, ':') + 2);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    if (info) fclose(info);
}

// one measurement: load, warm up, one prefill and one decode
static int measure(const SweepConfig* c, const char* model_dir, int batch_index, Sample* s, char* device, size_t device_n,
                   Err* e) {
    Model m;
    if (model_load_as(&m, model_dir, c->bench_weights, e)) return -1;
    s->weights = m.w16.type;
    Engine en;
    int rc = engine_open(&en, &m, c->device, e);
    if (!rc) {
        BenchOptions bo;
        plan_bench(c, batch_index, &bo);
        bo.repeats = 1;  // the rounds are the repeats
        BenchResult r;
        rc = bench_throughput_on(&en, &bo, &r, e);
        if (!rc) {
            s->prefill_tps = r.prefill_tokens_per_s, s->decode_tps = r.decode_tokens_per_s, s->decode_ms = r.decode_ms_per_step;
            s->wait_share = r.wait_share, s->cpu_per_wall = r.cpu_per_wall, s->peak_gb = r.device_peak_gb;
            s->load = load_average_1m();
            if (c->device == DEVICE_CUDA) snprintf(device, device_n, "%s", engine_device_name(&en));
        }
        engine_close(&en);
    }
    model_free(&m);
    return rc;
}

static double median_of(double* v, int n) { return n ? median_inplace(v, n) : 0; }

static int write_member(const SweepConfig* c, const BenchMember* mem, int n, int who, const Sample* samples, int n_samples,
                        const char* device, double seconds, Err* e) {
    const BenchMember* m = &mem[who];
    char tmp[2700], final_dir[2700];
    snprintf(tmp, sizeof tmp, "%s.tmp", m->stage_dir);
    snprintf(final_dir, sizeof final_dir, "%s", m->stage_dir);
    if (remove_tree(tmp, e) || make_dirs(tmp, e)) return -1;
    if (store_write_stage_info(tmp, "bench", m->cell->label, strrchr(m->stage_dir, '/') + 1, m->stage_text, e)) return -1;
    // samples.csv: this cell's and the teacher's rows
    ByteVec csv = {0};
    const char* head = "round,cell,label,batch,attempt,used,prefill_tps,decode_tps,decode_ms_per_step,wait_share,cpu_per_wall,load_1m\n";
    bytevec_append(&csv, head, strlen(head));
    for (int i = 0; i < n_samples; i++) {
        const Sample* s = &samples[i];
        if (s->member != who && s->member != 0) continue;
        char row[512];
        int len = snprintf(row, sizeof row, "%d,%s,%s,%d,%d,%d,%.4f,%.4f,%.4f,%.4f,%.3f,%.2f\n", s->round, mem[s->member].cell->id,
                           mem[s->member].cell->label, c->bench_batch[s->batch_index], s->attempt, s->used, s->prefill_tps,
                           s->decode_tps, s->decode_ms, s->wait_share, s->cpu_per_wall, s->load);
        bytevec_append(&csv, row, (size_t)len);
    }
    char path[2800];
    snprintf(path, sizeof path, "%s/samples.csv", tmp);
    int rc = file_write_atomic(path, csv.data, csv.len, e);
    free(csv.data);
    if (rc) return -1;
    cJSON* mj = cJSON_CreateObject();
    int rounds = c->repeats;
    double* v = xmalloc(sizeof(double) * (size_t)rounds * 5);
    double *dv = v + rounds, *pr = v + 2 * rounds, *dr = v + 3 * rounds, *ms = v + 4 * rounds;
    int contended = 0, remeasured = 0;
    double peak_gb = 0, wait_max = 0;
    double* cpw = xmalloc(sizeof(double) * (size_t)rounds * (size_t)c->n_bench_batch);
    int n_cpw = 0;
    for (int b = 0; b < c->n_bench_batch; b++) {
        int k = 0, kr = 0;
        for (int r = 0; r < rounds; r++) {
            const Sample *mine = NULL, *teacher = NULL;
            for (int i = 0; i < n_samples; i++) {
                const Sample* s = &samples[i];
                if (!s->used || s->round != r || s->batch_index != b) continue;
                if (s->member == who) mine = s;
                if (s->member == 0) teacher = s;
            }
            for (int i = 0; i < n_samples; i++)
                if (samples[i].member == who && samples[i].round == r && samples[i].batch_index == b && samples[i].attempt > 0 &&
                    samples[i].used)
                    remeasured++;
            if (!mine) continue;
            v[k] = mine->prefill_tps, dv[k] = mine->decode_tps;
            ms[k] = mine->decode_ms;
            k++;
            contended += mine->wait_share >= CPU_CONTENDED_SHARE;
            cpw[n_cpw++] = mine->cpu_per_wall;
            if (mine->wait_share > wait_max) wait_max = mine->wait_share;
            if (mine->peak_gb > peak_gb) peak_gb = mine->peak_gb;
            if (teacher && teacher->prefill_tps > 0 && teacher->decode_tps > 0) {
                pr[kr] = mine->prefill_tps / teacher->prefill_tps, dr[kr] = mine->decode_tps / teacher->decode_tps;
                kr++;
            }
        }
        int B = c->bench_batch[b];
        char name[96];
#define PUT(fmt, val) (snprintf(name, sizeof name, fmt, B), cJSON_AddNumberToObject(mj, name, (val)))
        double lo_p = 1e300, hi_p = 0, lo_d = 1e300, hi_d = 0;
        for (int i = 0; i < k; i++) {
            if (v[i] < lo_p) lo_p = v[i];
            if (v[i] > hi_p) hi_p = v[i];
            if (dv[i] < lo_d) lo_d = dv[i];
            if (dv[i] > hi_d) hi_d = dv[i];
        }
        PUT("prefill_tps_b%d", median_of(v, k));
        PUT("prefill_tps_b%d_min", k ? lo_p : 0);
        PUT("prefill_tps_b%d_max", k ? hi_p : 0);
        PUT("decode_tps_b%d", median_of(dv, k));
        PUT("decode_tps_b%d_min", k ? lo_d : 0);
        PUT("decode_tps_b%d_max", k ? hi_d : 0);
        PUT("ms_per_token_b%d", median_of(ms, k));
        PUT("prefill_ratio_b%d", median_of(pr, kr));
        PUT("decode_ratio_b%d", median_of(dr, kr));
        PUT("rounds_b%d", k);
#undef PUT
    }
    free(v);
    cJSON_AddNumberToObject(mj, "rounds", rounds);
    cJSON_AddNumberToObject(mj, "cells_in_group", n);
    cJSON_AddNumberToObject(mj, "contended_rounds", contended);
    cJSON_AddNumberToObject(mj, "remeasured", remeasured);
    cJSON_AddNumberToObject(mj, "wait_share_max", wait_max);
    cJSON_AddNumberToObject(mj, "cpu_per_wall", median_of(cpw, n_cpw));  // CPU s per wall s, median over the measurements
    free(cpw);
    cJSON_AddNumberToObject(mj, "load_1m", load_average_1m());
    cJSON_AddNumberToObject(mj, "prompt_len", c->prompt_len);
    cJSON_AddNumberToObject(mj, "gen_len", c->gen_len);
    // the precision that ran: on the CPU, how the measured model held its weights
    WeightType ran = WEIGHT_F32;
    for (int i = 0; i < n_samples; i++)
        if (samples[i].member == who) ran = samples[i].weights;
    cJSON_AddStringToObject(mj, "precision", device_weights_name(c->device, ran));
    cJSON_AddStringToObject(mj, "arbor_commit", ARBOR_COMMIT);
    cJSON_AddStringToObject(mj, "backend", c->device == DEVICE_CUDA ? "cuda" : "cpu");
    cJSON_AddStringToObject(mj, "device", device);
    if (c->device == DEVICE_CUDA) {
        cJSON_AddNumberToObject(mj, "peak_gpu_gb", peak_gb);
    } else {
        cJSON_AddNumberToObject(mj, "threads", kernels_cpu_threads());
        cJSON_AddStringToObject(mj, "wait_policy", cpu_wait_policy());
        cJSON_AddStringToObject(mj, "blas_core", blas_core_name());
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        cJSON_AddNumberToObject(mj, "peak_rss_mb", ru.ru_maxrss / 1024.0);
    }
    cJSON_AddNumberToObject(mj, "seconds", seconds);
    if (json_write_atomic(tmp, "metrics.json", mj, e) || remove_tree(final_dir, e)) return -1;
    if (rename(tmp, final_dir) != 0) return err_set(e, "%s: cannot rename into place", final_dir);
    fsync_parent(final_dir);
    return 0;
}

int sweep_bench_group(const SweepConfig* c, const BenchMember* mem, int n, Err* e) {
    int rounds = c->repeats, cap = rounds * n * c->n_bench_batch * MAX_ATTEMPTS;
    Sample* samples = xcalloc((size_t)cap, sizeof(Sample));
    int ns = 0, rc = 0, total = rounds * n * c->n_bench_batch, done = 0;
    char device[256];
    cpu_name(device, sizeof device);
    // ARBOR_BENCH_CONTENDED_SHARE overrides the threshold (tests: 0 makes every measurement count as contended)
    double contended_share = getenv("ARBOR_BENCH_CONTENDED_SHARE") ? atof(getenv("ARBOR_BENCH_CONTENDED_SHARE")) : CPU_CONTENDED_SHARE;
    double t0 = now_seconds();
    fprintf(stderr, "sweep: bench: %d cells x %d batch sizes in %d interleaved rounds\n", n, c->n_bench_batch, rounds);
    for (int r = 0; r < rounds && !rc; r++)
        for (int b = 0; b < c->n_bench_batch && !rc; b++)
            for (int j = 0; j < n && !rc; j++) {
                int who = (j + r) % n;  // each round starts one cell later
                for (int attempt = 0; attempt < MAX_ATTEMPTS && !rc; attempt++) {
                    Sample* s = &samples[ns];
                    *s = (Sample){r, who, b, attempt, 1, 0, 0, 0, 0, 0, 0, 0, WEIGHT_F32};
                    rc = measure(c, mem[who].model_dir, b, s, device, sizeof device, e);
                    if (rc) break;
                    if (attempt > 0) samples[ns - 1].used = 0;
                    ns++;
                    int contended = c->device == DEVICE_CPU && s->wait_share >= contended_share;
                    if (!contended) break;
                    fprintf(stderr, "sweep: bench %s round %d: threads waited %.0f%% for a core; measuring again\n",
                            mem[who].cell->label, r + 1, 100 * s->wait_share);
                    nanosleep(&(struct timespec){0, 250000000}, NULL);  // let a burst pass
                }
                done++;
                if (!rc) {
                    const Sample* s = &samples[ns - 1];
                    double el = now_seconds() - t0;
                    fprintf(stderr, "sweep: bench round %d/%d batch %d %-24s prefill %.1f, decode %.2f tokens/s  [%d/%d, ETA %.0f s]\n",
                            r + 1, rounds, c->bench_batch[b], mem[who].cell->label, s->prefill_tps, s->decode_tps, done, total,
                            el / done * (total - done));
                }
            }
    double seconds = now_seconds() - t0;
    for (int i = 0; i < n && !rc; i++)
        if (mem[i].write) rc = write_member(c, mem, n, i, samples, ns, device, seconds / n, e);
    free(samples);
    return rc ? err_prefix(e, "bench") : 0;
}
