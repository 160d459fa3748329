// cmd_bench.c: arbor bench — prefill and decode tokens/s of a checkpoint or of a preset shape with
// random weights (no download needed), on the CPU or (harness/bench_cuda.c) the GPU. A table on
// stderr; key=value lines on stdout.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../evals/throughput.h"
#include "../kernels/cpu/sgemm_rate.h"
#include "bench_cuda.h"
#include "../evals/cpu_usage.h"
#include "../evals/roofline.h"
#include "../kernels/cpu/blas_core.h"
#include "../models/file_io.h"
#include "commands.h"
#include "../harness/cpu_policy.h"

// --device cuda: the options into a CudaBenchRequest
static int bench_cuda_command(const Command* cmd) {
    Err e;
    CudaBenchRequest q = {0};
    long P, G, R, seed;
    if (arg_long(cmd, "prompt-len", 1, 1 << 20, &P, &e) || arg_long(cmd, "gen-len", 1, 1 << 20, &G, &e) ||
        arg_long(cmd, "repeats", 1, 1000, &R, &e) || arg_long(cmd, "seed", 0, 0x7fffffffL, &seed, &e))
        return fail(&e);
    int* batches = NULL;
    int n_batches = 0;
    if (parse_token_list(arg_str(cmd, "batch"), &batches, &n_batches, &e)) return fail(&e);
    for (int i = 0; i < n_batches; i++)
        if (batches[i] < 1 || batches[i] > 4096) {
            err_set(&e, "--batch: %d is outside [1, 4096]", batches[i]);
            free(batches);
            return fail(&e);
        }
    if (n_batches == 0) {
        err_set(&e, "--batch: no batch size given");
        return fail(&e);
    }
    q.model_dir = arg_str(cmd, "model");
    if (!q.model_dir && arch_from_options(cmd, &q.cfg, &e)) {
        free(batches);
        return fail(&e);
    }
    q.label = arg_str(cmd, "label") ? arg_str(cmd, "label") : q.model_dir ? q.model_dir : arg_str(cmd, "arch");
    if (strpbrk(q.label, ",\"\n")) {
        free(batches);
        err_set(&e, "--label: '%s' may not hold a comma, quote or newline (it becomes a CSV field)", q.label);
        return fail(&e);
    }
    q.batches = batches, q.n_batches = n_batches;
    q.prompt_len = (int)P, q.gen_len = (int)G, q.repeats = (int)R, q.seed = (unsigned long long)seed;
    q.ceilings = arg_flag(cmd, "ceilings");
    q.cublas_only = arg_flag(cmd, "cublas-only");
    q.csv_path = arg_str(cmd, "csv");
    long chunk = 0;
    if (arg_str(cmd, "chunk-rows") && arg_long(cmd, "chunk-rows", 1, 1 << 24, &chunk, &e)) {
        free(batches);
        return fail(&e);
    }
    q.max_chunk_rows = (int)chunk;
    int code = bench_cuda_run(&q);
    free(batches);
    return code;
}

// the option's value, or fallback when it was not given (roofline options have no declared default, so
// that one given without --roofline is seen and refused)
static const char* str_or(const Command* cmd, const char* name, const char* fallback) {
    return arg_str(cmd, name) ? arg_str(cmd, name) : fallback;
}

// --roofline: the throughput model's floors over a grid of batch sizes and contexts (evals/roofline.h)
static int list_arg(const Command* cmd, const char* name, const char* fallback, int lo, int hi, int** v, int* n, Err* e) {
    if (parse_token_list(str_or(cmd, name, fallback), v, n, e)) return err_prefix(e, "--%s", name);
    for (int i = 0; i < *n; i++)
        if ((*v)[i] < lo || (*v)[i] > hi) return err_set(e, "--%s: %d is outside [%d, %d]", name, (*v)[i], lo, hi);
    return 0;
}

static int dtype_bytes(const Command* cmd, const char* name, double* bytes, Err* e) {
    const char* v = str_or(cmd, name, "bf16");
    if (!strcmp(v, "bf16")) return *bytes = 2, 0;
    if (!strcmp(v, "fp8")) return *bytes = 1, 0;
    if (!strcmp(v, "fp32")) return *bytes = 4, 0;
    return err_set(e, "--%s must be bf16, fp8 or fp32, not '%s'", name, v);
}

static int bench_roofline(const Command* cmd) {
    Err e;
    ModelConfig cfg;
    const char* dir = arg_str(cmd, "model");
    if (dir ? config_load(dir, &cfg, &e) : arch_from_options(cmd, &cfg, &e)) return fail(&e);
    DeviceSpec d = {"custom", 0, 0};
    const char* gpu = arg_str(cmd, "gpu");
    if (gpu && device_spec(gpu, &d)) return err_set(&e, "bench: --gpu must be h100, h200 or a100, not '%s'", gpu), fail(&e);
    if (arg_str(cmd, "bandwidth") && arg_double(cmd, "bandwidth", 1, 1e6, &d.bandwidth_gbs, &e)) return fail(&e);
    if (arg_str(cmd, "flops") && arg_double(cmd, "flops", 1e-3, 1e6, &d.tflops, &e)) return fail(&e);
    if (d.bandwidth_gbs <= 0 || d.tflops <= 0)
        return err_set(&e, "bench --roofline: give --gpu h100|h200|a100, or --bandwidth GB/s and --flops TFLOP/s"), fail(&e);
    int *batches = NULL, *contexts = NULL, nb = 0, nc = 0;
    double wb = 2, kvb = 2;
    if (list_arg(cmd, "batch", "1", 1, 1 << 20, &batches, &nb, &e) ||
        list_arg(cmd, "context", "128,2048", 1, 1 << 24, &contexts, &nc, &e) ||
        dtype_bytes(cmd, "weight-dtype", &wb, &e) || dtype_bytes(cmd, "kv-dtype", &kvb, &e)) {
        free(batches), free(contexts);
        return fail(&e);
    }
    const char* what = dir ? dir : arg_str(cmd, "arch");
    // --versus: a second model on the same grid, and each cell's ratio (this model / that one)
    ModelConfig vs;
    const char* versus = arg_str(cmd, "versus");
    if (versus) {
        char vs_cfg[4200];
        snprintf(vs_cfg, sizeof vs_cfg, "%s/config.json", versus);
        if (access(vs_cfg, F_OK) == 0 ? config_load(versus, &vs, &e) : config_preset(versus, &vs, &e)) {
            free(batches), free(contexts);
            return err_prefix(&e, "bench --versus"), fail(&e);
        }
    }
    double capacity = 0;  // GB: --memory-gb, else the named GPU's
    if (arg_str(cmd, "memory-gb") && arg_double(cmd, "memory-gb", 1e-3, 1e6, &capacity, &e)) return free(batches), free(contexts), fail(&e);
    if (!capacity && gpu) capacity = device_memory_gb(gpu);
    printf("# roofline floors: %s (%d layers, hidden %d, ffn %d, %d/%d heads, %.2fB parameters) on %s: %.0f GB/s, %.0f TFLOP/s",
           what, cfg.n_layers, cfg.hidden, cfg.ffn, cfg.n_heads, cfg.n_kv_heads, config_param_count(&cfg) / 1e9, d.name,
           d.bandwidth_gbs, d.tflops);
    if (capacity) printf(", %.0f GB", capacity);
    printf("; weights %s, KV cache %s\n", str_or(cmd, "weight-dtype", "bf16"), str_or(cmd, "kv-dtype", "bf16"));
    if (versus)
        printf("# versus %s (%d layers, hidden %d, ffn %d, %d/%d heads, %.2fB parameters): ratios are %s / %s\n", versus, vs.n_layers,
               vs.hidden, vs.ffn, vs.n_heads, vs.n_kv_heads, config_param_count(&vs) / 1e9, what, versus);
    printf("# tokens/s are over the whole batch (batch x per-sequence rate); memory: weights + KV cache, a lower bound\n");
    printf("%6s %7s | %10s %10s %10s %10s %8s %12s %8s | %14s | %10s %4s", "batch", "context", "weights GB", "KV read GB", "KV write",
           "step GB", "TFLOP", "decode t/s", "bound", "prefill t/s", "memory GB", "fits");
    if (versus) printf(" | %10s %10s %9s", "vs decode", "vs prefill", "vs fits");
    printf("\n");
    size_t cap = 1 << 16, len = 0;
    char* csv = xmalloc(cap);
    len += (size_t)snprintf(csv, cap,
                            "model,device,batch,context,decode_tokens_per_s_floor,prefill_tokens_per_s_floor,bytes_per_step,"
                            "flops_per_step,weight_bytes,kv_read_bytes,kv_write_bytes,decode_bound,prefill_bytes,prefill_flops,"
                            "memory_bytes,fits,versus,versus_decode_ratio,versus_prefill_ratio,versus_memory_bytes,versus_fits\n");
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < nc; j++) {
            RooflineStep dec, pre, vdec, vpre;
            roofline_decode(&cfg, batches[i], contexts[j], wb, kvb, &d, &dec);
            roofline_prefill(&cfg, batches[i], contexts[j], wb, kvb, &d, &pre);
            double mem = roofline_memory_bytes(&cfg, batches[i], contexts[j], wb, kvb), vmem = 0;
            const char* fits = !capacity ? "?" : mem <= capacity * 1e9 ? "yes" : "no";
            printf("%6d %7d | %10.2f %10.2f %10.4f %10.2f %8.2f %12.1f %8s | %14.0f | %10.2f %4s", batches[i], contexts[j],
                   dec.weight_bytes / 1e9, dec.kv_read_bytes / 1e9, dec.kv_write_bytes / 1e9, dec.bytes / 1e9, dec.flops / 1e12,
                   dec.tokens_per_s, dec.memory_bound ? "memory" : "compute", pre.tokens_per_s, mem / 1e9, fits);
            const char* vfits = "";
            if (versus) {
                roofline_decode(&vs, batches[i], contexts[j], wb, kvb, &d, &vdec);
                roofline_prefill(&vs, batches[i], contexts[j], wb, kvb, &d, &vpre);
                vmem = roofline_memory_bytes(&vs, batches[i], contexts[j], wb, kvb);
                vfits = !capacity ? "?" : vmem <= capacity * 1e9 ? "yes" : "no";
                printf(" | %9.3fx %9.3fx %9s", dec.tokens_per_s / vdec.tokens_per_s, pre.tokens_per_s / vpre.tokens_per_s, vfits);
            }
            printf("\n");
            if (cap - len < 2048) csv = xrealloc(csv, cap *= 2);
            len += (size_t)snprintf(csv + len, cap - len, "%s,%s,%d,%d,%.4f,%.4f,%.6g,%.6g,%.6g,%.6g,%.6g,%s,%.6g,%.6g,%.6g,%s", what,
                                    d.name, batches[i], contexts[j], dec.tokens_per_s, pre.tokens_per_s, dec.bytes, dec.flops,
                                    dec.weight_bytes, dec.kv_read_bytes, dec.kv_write_bytes,
                                    dec.memory_bound ? "memory" : "compute", pre.bytes, pre.flops, mem, fits);
            if (versus)
                len += (size_t)snprintf(csv + len, cap - len, ",%s,%.6g,%.6g,%.6g,%s\n", versus, dec.tokens_per_s / vdec.tokens_per_s,
                                        pre.tokens_per_s / vpre.tokens_per_s, vmem, vfits);
            else
                len += (size_t)snprintf(csv + len, cap - len, ",,,,,\n");
        }
    // per context, the largest batch whose weights and KV cache fit
    for (int j = 0; j < nc && capacity; j++)
        for (int which = 0; which < 1 + (versus != NULL); which++) {
            const ModelConfig* mc = which ? &vs : &cfg;
            double per_seq = roofline_memory_bytes(mc, 1, contexts[j], wb, kvb) - roofline_memory_bytes(mc, 0, contexts[j], wb, kvb);
            double room = capacity * 1e9 - roofline_memory_bytes(mc, 0, contexts[j], wb, kvb);
            long largest = room < 0 ? 0 : (long)(room / per_seq);
            printf("# context %d: %s fits at most batch %ld in %.0f GB (weights + KV cache)\n", contexts[j], which ? versus : what,
                   largest, capacity);
        }
    int code = 0;
    if (arg_str(cmd, "csv") && file_write_atomic(arg_str(cmd, "csv"), csv, len, &e)) code = fail(&e);
    free(csv), free(batches), free(contexts);
    return code;
}

int cmd_bench(int argc, char** argv) {
    Option opts[] = {
        {"model", "DIR", "checkpoint directory (or --arch)", NULL},
        ARCH_OPTIONS,
        {"batch", "B", "sequences decoded together", "1"},
        {"prompt-len", "P", "prompt tokens per sequence", "128"},
        {"gen-len", "G", "decode steps", "32"},
        {"repeats", "R", "timed prefill repeats after a warm-up (the median counts)", "3"},
        {"seed", "S", "weights and prompt seed", "0"},
        {"threads", "N", "CPU threads (default: OMP_NUM_THREADS or all cores)", NULL},
        {"device", "cpu|cuda", "backend: the CPU (fp32) or the GPU (bf16, CUDA graphs)", "cpu"},
        WEIGHTS_OPTION,
        {"ceilings", NULL, "cuda: first measure the copy bandwidth and the bf16 GEMM rate", NULL},
        {"label", "NAME", "cuda: what the rows call the model (default: the directory or preset)", NULL},
        {"csv", "FILE", "cuda: also write the rows to FILE", NULL},
        {"cublas-only", NULL, "cuda: decode matmuls through cuBLASLt instead of arbor's GEMV (to compare)", NULL},
        {"chunk-rows", "N", "cuda: prefill rows per call at most (default 16384; less when memory is short)", NULL},
        {"roofline", NULL, "no run: the throughput model's floors per step (--gpu, --batch LIST, --context LIST)", NULL},
        {"gpu", "NAME", "roofline: h100, h200 or a100 (datasheet bandwidth and dense bf16 rate)", NULL},
        {"bandwidth", "GB/s", "roofline: memory bandwidth (overrides --gpu's)", NULL},
        {"flops", "TFLOP/s", "roofline: matrix rate (overrides --gpu's)", NULL},
        {"context", "LIST", "roofline: cached positions for decode, prompt length for prefill (default 128,2048)", NULL},
        {"weight-dtype", "bf16|fp8|fp32", "roofline: bytes per weight (default bf16)", NULL},
        {"kv-dtype", "bf16|fp8|fp32", "roofline: bytes per cached K/V value (default bf16)", NULL},
        {"versus", "ARCH|DIR", "roofline: a second model (preset name or checkpoint) on the same grid, with each cell's ratio", NULL},
        {"memory-gb", "GB", "roofline: the device's memory (default: --gpu's datasheet figure)", NULL},
    };
    Command cmd = {"bench",
                   "Measure prefill and decode throughput. --device cuda takes a list of batch sizes (--batch 1,32,128).",
                   opts, sizeof opts / sizeof opts[0]};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    // an option this mode does not read is refused, never ignored
    static const char* const measuring[] = {"threads", "ceilings", "label", "cublas-only", "weights", "chunk-rows"};
    static const char* const roofline[] = {"gpu", "bandwidth", "flops", "context", "weight-dtype", "kv-dtype", "versus", "memory-gb"};
    static const char* const cuda_only[] = {"ceilings", "label", "csv", "cublas-only", "chunk-rows"};
    if (arg_flag(&cmd, "roofline")) {
        if (arg_refuse(&cmd, measuring, 6, "with --roofline (nothing is measured; --weight-dtype sets its bytes per weight)", &e))
            return fail(&e);
        return bench_roofline(&cmd);
    }
    if (arg_refuse(&cmd, roofline, 8, "without --roofline", &e)) return fail(&e);
    Device device;
    if (device_parse(arg_str(&cmd, "device"), &device, &e)) return fail(&e);  // availability: bench_cuda_run
    if (device == DEVICE_CPU && arg_refuse(&cmd, cuda_only, 5, "with --device cpu (its results are the key=value lines on stdout)", &e))
        return fail(&e);
    static const char* const cpu_only[] = {"threads"};
    if (device == DEVICE_CUDA && arg_refuse(&cmd, cpu_only, 1, "with --device cuda", &e)) return fail(&e);
    WeightType wt;
    if (arg_weights(&cmd, arg_str(&cmd, "device"), &wt, &e)) return fail(&e);
    if (device == DEVICE_CUDA) return bench_cuda_command(&cmd);
    long B, P, G, R, seed;
    if (arg_long(&cmd, "batch", 1, 4096, &B, &e) || arg_long(&cmd, "prompt-len", 1, 1 << 20, &P, &e) ||
        arg_long(&cmd, "gen-len", 0, 1 << 20, &G, &e) || arg_long(&cmd, "repeats", 1, 1000, &R, &e) ||
        arg_long(&cmd, "seed", 0, 0x7fffffffL, &seed, &e))
        return fail(&e);
    if (arg_str(&cmd, "threads")) {
        long threads;
        if (arg_long(&cmd, "threads", 1, 4096, &threads, &e)) return fail(&e);
        omp_set_num_threads((int)threads);
    }
    Model m;
    const char* dir = arg_str(&cmd, "model");
    if (dir) {
        if (model_load_as(&m, dir, wt, &e)) return fail(&e);
    } else {
        ModelConfig cfg;
        if (arch_from_options(&cmd, &cfg, &e)) return fail(&e);
        model_create_as(&m, &cfg, wt);
        model_init_random(&m, (uint64_t)seed);
    }
    BenchOptions bo = {(int)B, (int)P, (int)G, (int)R, (uint64_t)seed, 0};
    BenchResult r;
    if (bench_throughput(&m, &bo, &r, &e)) {
        model_free(&m);
        return fail(&e);
    }
    // the ceiling the prefill's matmuls are measured against, in the same run (the machine is shared)
    double peak = sgemm_gflops(1024, 1024, 1024, 5);
    const char* what = dir ? dir : arg_str(&cmd, "arch");
    char blas[160];
    fprintf(stderr, "bench %s (%s backend, %s weights, %d threads, wait policy %s, BLAS kernels %s): batch %ld, prompt %ld, gen %ld, "
                    "%d repeats\n",
            what, m.ops->name, weight_type_name(wt), kernels_cpu_threads(), cpu_wait_policy(), cpu_blas_note(blas, sizeof blas), B, P, G, r.repeats);
    fprintf(stderr, "  prefill  %10.1f tokens/s  median, range %.1f-%.1f  (%.3f s; matmuls %.0f%% of the time)\n",
            r.prefill_tokens_per_s, r.prefill_tps_min, r.prefill_tps_max, r.prefill_seconds, 100 * r.prefill_matmul_share);
    fprintf(stderr, "  matmuls  %10.1f GFLOP/s  (%.0f%% of cblas_sgemm's %.1f GFLOP/s on 1024^3)\n",
            r.prefill_matmul_gflops, 100 * r.prefill_matmul_gflops / peak, peak);
    fprintf(stderr, "  decode   %10.2f tokens/s  median, range %.2f-%.2f  (%.1f ms/step)\n", r.decode_tokens_per_s,
            r.decode_tps_min, r.decode_tps_max, r.decode_ms_per_step);
    // the floor the throughput model puts under decode here: bytes per step at the read bandwidth
    // measured in the same run (weights as held, fp32 KV cache on the CPU; evals/roofline.h)
    double bw = read_bandwidth_gbs((size_t)256 << 20, 3);
    DeviceSpec cpu_spec = {"cpu", bw, peak * 1e-3};
    RooflineStep floor_dec, floor_pre;
    double weight_bytes = wt == WEIGHT_F32 ? 4 : 2;
    roofline_decode(&m.cfg, (int)B, (int)(P + G / 2), weight_bytes, 4, &cpu_spec, &floor_dec);
    roofline_prefill(&m.cfg, (int)B, (int)P, weight_bytes, 4, &cpu_spec, &floor_pre);
    fprintf(stderr, "  floor    decode %.2f tokens/s (%.3f GB per step at %.1f GB/s read), prefill %.1f tokens/s (%.0f GFLOP/s): "
                    "measured %.0f%% and %.0f%% of them\n",
            floor_dec.tokens_per_s, floor_dec.bytes / 1e9, bw, floor_pre.tokens_per_s, peak,
            100 * r.decode_tokens_per_s / floor_dec.tokens_per_s, 100 * r.prefill_tokens_per_s / floor_pre.tokens_per_s);
    printf("read_bandwidth_gbs=%.2f\ndecode_floor_tokens_per_s=%.3f\ndecode_fraction_of_floor=%.4f\n"
           "prefill_floor_tokens_per_s=%.2f\nprefill_fraction_of_floor=%.4f\n",
           bw, floor_dec.tokens_per_s, r.decode_tokens_per_s / floor_dec.tokens_per_s, floor_pre.tokens_per_s,
           r.prefill_tokens_per_s / floor_pre.tokens_per_s);
    double load = load_average_1m();
    fprintf(stderr, "  cores    %.2f CPU s per wall s; threads waited %.0f%% of their time for a core%s; load %.2f\n",
            r.cpu_per_wall, 100 * r.wait_share, r.wait_share >= CPU_CONTENDED_SHARE ? " (CONTENDED: numbers understate)" : "",
            load);
    printf("model=%s\nbackend=%s\nweights=%s\nthreads=%d\nwait_policy=%s\nblas_core=%s\nbatch=%ld\nprompt_len=%ld\ngen_len=%ld\n"
           "repeats=%d\n",
           what, m.ops->name, weight_type_name(wt), kernels_cpu_threads(), cpu_wait_policy(), blas_core_name(), B, P, G, r.repeats);
    printf("prefill_tokens_per_s=%.2f\nprefill_tokens_per_s_min=%.2f\nprefill_tokens_per_s_max=%.2f\n", r.prefill_tokens_per_s,
           r.prefill_tps_min, r.prefill_tps_max);
    printf("prefill_matmul_gflops=%.2f\nprefill_matmul_share=%.4f\n", r.prefill_matmul_gflops, r.prefill_matmul_share);
    printf("sgemm_peak_gflops=%.2f\nprefill_matmul_fraction_of_peak=%.4f\n", peak, r.prefill_matmul_gflops / peak);
    printf("decode_tokens_per_s=%.3f\ndecode_tokens_per_s_min=%.3f\ndecode_tokens_per_s_max=%.3f\ndecode_ms_per_step=%.3f\n",
           r.decode_tokens_per_s, r.decode_tps_min, r.decode_tps_max, r.decode_ms_per_step);
    printf("cpu_per_wall=%.3f\nwait_share=%.4f\nload_1m=%.2f\nlogits_hash=%016llx\n", r.cpu_per_wall, r.wait_share, load,
           (unsigned long long)r.logits_hash);
    model_free(&m);
    return 0;
}
