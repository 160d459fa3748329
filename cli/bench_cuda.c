// bench_cuda.c: see bench_cuda.h.
#include "bench_cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/file_io.h"
#include "commands.h"

#ifndef ARBOR_HAVE_CUDA
int bench_cuda_run(const CudaBenchRequest* q) {
    (void)q;
    Err e;
    device_available(DEVICE_CUDA, &e);  // says why: this build has no CUDA
    fprintf(stderr, "arbor: bench %s\n", e.msg);
    return ARBOR_EXIT_BAD_INPUT;
}
#else
#include "../evals/roofline.h"
#include "../evals/throughput_cuda.h"

#define CSV_HEADER                                                                                          \
    "model,layers,hidden,ffn,params,batch,prompt_len,gen_len,prefill_tokens_per_s,prefill_tflops,"          \
    "prefill_fraction_of_gemm,decode_tokens_per_s,decode_ms_per_step,decode_gbs,decode_fraction_of_copy,"   \
    "copy_gbs,gemm_tflops,peak_gb,decode_floor_tokens_per_s,decode_fraction_of_floor,prefill_floor_tokens_per_s,"  \
    "prefill_fraction_of_floor,chunk_rows,note\n"

int bench_cuda_run(const CudaBenchRequest* q) {
    Err e;
    if (device_available(DEVICE_CUDA, &e)) {  // no device: a runtime condition, not bad input
        fprintf(stderr, "arbor: bench %s\n", e.msg);
        return ARBOR_EXIT_RUNTIME;
    }
    CudaContext* ctx = cuda_context_create(0);
    cuda_set_gemv(ctx, !q->cublas_only);
    double copy_gbs = 0, gemm_tflops = 0;
    if (q->ceilings) {
        copy_gbs = cuda_copy_gbs(ctx, (size_t)2 << 30, 20);
        gemm_tflops = cuda_gemm_tflops(ctx, 8192, 8192, 8192, 10);
        fprintf(stderr, "ceilings on %s: device-to-device copy %.0f GB/s (read + write), bf16 GEMM 8192^3 %.1f TFLOP/s\n",
                cuda_device_name(ctx), copy_gbs, gemm_tflops);
        printf("device=%s\ncopy_gbs=%.1f\ngemm_tflops=%.2f\n", cuda_device_name(ctx), copy_gbs, gemm_tflops);
    }
    CudaModel g;
    ModelConfig cfg = q->cfg;
    if (q->model_dir) {
        Model m;
        if (model_load(&m, q->model_dir, &e)) {
            cuda_context_free(ctx);
            return fail(&e);
        }
        cfg = m.cfg;
        cuda_model_create(&g, ctx, &cfg);
        cuda_model_upload(&g, &m);
        model_free(&m);
    } else {
        cuda_model_create(&g, ctx, &cfg);
        cuda_model_init_random(&g, q->seed);
    }
    long long params = config_param_count(&cfg);
    fprintf(stderr, "bench %s on %s: %d layers, hidden %d, ffn %d, %.2fB parameters, bf16 weights %.2f GB read per step\n",
            q->label, cuda_device_name(ctx), cfg.n_layers, cfg.hidden, cfg.ffn, params / 1e9,
            cuda_model_weight_bytes(&g) / 1e9);
    fprintf(stderr, "  %5s %6s | %12s %8s %6s | %12s %8s %8s %6s | %7s\n", "batch", "prompt", "prefill t/s", "TFLOP/s",
            "%gemm", "decode t/s", "ms/step", "GB/s", "%copy", "peak GB");
    size_t csv_cap = 1 << 16, csv_len = 0;
    char* csv = xmalloc(csv_cap);
    csv_len += (size_t)snprintf(csv, csv_cap, CSV_HEADER);
    int code = 0;
    for (int i = 0; i < q->n_batches && !code; i++) {
        BenchOptions bo = {q->batches[i], q->prompt_len, q->gen_len, q->repeats, q->seed, q->max_chunk_rows};
        CudaBenchResult r;
        if (bench_throughput_cuda(&g, &bo, &r, &e)) {
            code = fail(&e);
            break;
        }
        double pf = 0, df = 0;
        RooflineStep fd = {0}, fp = {0};
        if (r.skipped) {  // the memory plan says it does not fit: a row that says why (measures 0), on to the next
            fprintf(stderr, "  %5d %6d | %s\n", bo.batch, bo.prompt_len, r.note);
            printf("b%d.skipped=%s\n", bo.batch, r.note);
        } else {
            pf = gemm_tflops > 0 ? r.prefill_tflops / gemm_tflops : 0;
            df = copy_gbs > 0 ? r.decode_gbs / copy_gbs : 0;
            // the throughput model's floors at the ceilings measured in this run (bf16 weights and KV cache);
            // decode's context: the prompt plus half the generated tokens, on average
            if (q->ceilings) {
                DeviceSpec measured = {"measured", copy_gbs, gemm_tflops};
                roofline_decode(&cfg, bo.batch, bo.prompt_len + bo.gen_len / 2, 2, 2, &measured, &fd);
                roofline_prefill(&cfg, bo.batch, bo.prompt_len, 2, 2, &measured, &fp);
                fprintf(stderr, "        floor: decode %.1f tok/s (measured %.0f%% of it), prefill %.0f tok/s (%.0f%%)\n", fd.tokens_per_s,
                        fd.tokens_per_s > 0 ? 100 * r.decode_tokens_per_s / fd.tokens_per_s : 0, fp.tokens_per_s,
                        fp.tokens_per_s > 0 ? 100 * r.prefill_tokens_per_s / fp.tokens_per_s : 0);
            }
            fprintf(stderr, "  %5d %6d | %12.1f %8.1f %5.0f%% | %12.1f %8.3f %8.0f %5.0f%% | %7.1f\n", bo.batch,
                    bo.prompt_len, r.prefill_tokens_per_s, r.prefill_tflops, 100 * pf, r.decode_tokens_per_s,
                    r.decode_ms_per_step, r.decode_gbs, 100 * df, r.peak_gb);
            printf("b%d.prefill_tokens_per_s=%.2f\nb%d.prefill_tflops=%.3f\nb%d.decode_tokens_per_s=%.2f\n"
                   "b%d.decode_ms_per_step=%.4f\nb%d.decode_gbs=%.1f\nb%d.peak_gb=%.2f\nb%d.logits_hash=%016llx\n",
                   bo.batch, r.prefill_tokens_per_s, bo.batch, r.prefill_tflops, bo.batch, r.decode_tokens_per_s, bo.batch,
                   r.decode_ms_per_step, bo.batch, r.decode_gbs, bo.batch, r.peak_gb, bo.batch,
                   (unsigned long long)r.logits_hash);
        }
        if (csv_cap - csv_len < 1024) csv = realloc(csv, csv_cap *= 2);
        if (!csv) FATAL("out of memory");
        char note[sizeof r.note + 2] = "";  // quoted: the reason holds commas
        if (r.skipped) snprintf(note, sizeof note, "\"%s\"", r.note);
        csv_len += (size_t)snprintf(csv + csv_len, csv_cap - csv_len,
                                    "%s,%d,%d,%d,%lld,%d,%d,%d,%.2f,%.3f,%.4f,%.2f,%.4f,%.1f,%.4f,%.1f,%.2f,%.2f,%.2f,%.4f,%.1f,%.4f,%d,%s\n",
                                    q->label, cfg.n_layers, cfg.hidden, cfg.ffn, params, bo.batch, bo.prompt_len, bo.gen_len,
                                    r.prefill_tokens_per_s, r.prefill_tflops, pf, r.decode_tokens_per_s,
                                    r.decode_ms_per_step, r.decode_gbs, df, r.skipped ? 0 : copy_gbs, r.skipped ? 0 : gemm_tflops,
                                    r.peak_gb, fd.tokens_per_s, fd.tokens_per_s > 0 ? r.decode_tokens_per_s / fd.tokens_per_s : 0,
                                    fp.tokens_per_s, fp.tokens_per_s > 0 ? r.prefill_tokens_per_s / fp.tokens_per_s : 0, r.chunk_rows,
                                    note);
        // every row on disk as soon as it is measured (the whole file, atomically): a step killed at its
        // time limit keeps the cells it finished
        if (q->csv_path && file_write_atomic(q->csv_path, csv, csv_len, &e)) code = fail(&e);
        fflush(stdout);
    }
    free(csv);
    cuda_model_free(&g);
    cuda_context_free(ctx);
    return code;
}
#endif
