// cuda_context.cu: the CudaContext (stream, cuBLASLt handle, workspace), device memory, transfers,
// on-device random init, graphs, event timers and the two ceilings a benchmark is measured against.
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

extern "C" {
#include "../clock.h"
#include "../dtype.h"
}

// ---------------------------------------------------------------------------------------------
// context

extern "C" int cuda_device_count(char* why, int why_len) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        if (why) snprintf(why, why_len, "%s", cudaGetErrorString(err));
        cudaGetLastError();  // clear the sticky "no device" error
        return 0;
    }
    if (n == 0 && why) snprintf(why, why_len, "the CUDA runtime reports no devices");
    return n;
}

extern "C" CudaContext* cuda_context_create(int device) {
    CudaContext* ctx = (CudaContext*)calloc(1, sizeof(CudaContext));
    if (!ctx) FATAL("out of host memory for a CUDA context");
    ctx->device = device;
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaGetDeviceProperties(&ctx->prop, device));
    if (ctx->prop.major < 8)
        FATAL("CUDA device %d (%s) has compute capability %d.%d; the bf16 backend needs 8.0 (Ampere) or newer", device,
              ctx->prop.name, ctx->prop.major, ctx->prop.minor);
    CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasLtCreate(&ctx->lt));
    ctx->workspace_bytes = 32u << 20;  // what cuBLAS recommends for Hopper
    ctx->gemv = 1;
    CUDA_CHECK(cudaMalloc(&ctx->workspace, ctx->workspace_bytes));
    return ctx;
}

extern "C" void cuda_context_free(CudaContext* ctx) {
    if (!ctx) return;
    cudaStreamSynchronize(ctx->stream);
    for (int i = 0; i < ctx->plan_cache.n; i++) cuda_gemm_plan_destroy(&ctx->plans[i]);
    cublasLtDestroy(ctx->lt);
    cudaFree(ctx->workspace);
    cudaFree(ctx->scratch);
    cudaStreamDestroy(ctx->stream);
    free(ctx);
}

void* cuda_scratch(CudaContext* ctx, size_t bytes) {
    if (bytes > ctx->scratch_bytes) {
        if (ctx->capturing) FATAL("scratch of %zu bytes first asked for during graph capture", bytes);
        CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
        if (ctx->scratch) CUDA_CHECK(cudaFree(ctx->scratch));
        ctx->scratch = cuda_malloc(bytes);
        ctx->scratch_bytes = bytes;
    }
    return ctx->scratch;
}

extern "C" void cuda_set_gemv(CudaContext* ctx, int on) { ctx->gemv = on; }

extern "C" const char* cuda_device_name(const CudaContext* ctx) { return ctx->prop.name; }

extern "C" void* cuda_context_stream(CudaContext* ctx) { return (void*)ctx->stream; }

extern "C" void cuda_synchronize(CudaContext* ctx) { CUDA_CHECK(cudaStreamSynchronize(ctx->stream)); }

// ---------------------------------------------------------------------------------------------
// memory and transfers

extern "C" void* cuda_malloc(size_t bytes) {
    void* p = NULL;
    cudaError_t err = cudaMalloc(&p, bytes ? bytes : 1);
    if (err != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_b, &total_b);
        FATAL("CUDA: cannot allocate %.3f GB on the device (%.3f GB free of %.3f GB): %s", bytes / 1e9, free_b / 1e9,
              total_b / 1e9, cudaGetErrorString(err));
    }
    return p;
}

extern "C" void cuda_free(void* p) {
    if (p) CUDA_CHECK(cudaFree(p));
}

extern "C" size_t cuda_memory_used(void) {
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return total_b - free_b;
}

extern "C" size_t cuda_memory_free(void) {
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return free_b;
}

extern "C" void cuda_upload(CudaContext* ctx, void* dst, const void* host_src, size_t bytes) {
    CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, ctx->stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
}

extern "C" void cuda_upload_async(CudaContext* ctx, void* dst, const void* host_src, size_t bytes) {
    CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, ctx->stream));
}

extern "C" void cuda_download(CudaContext* ctx, void* host_dst, const void* src, size_t bytes) {
    CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
}

#define CONVERT_CHUNK ((size_t)1 << 22)

extern "C" void cuda_upload_f32_as_bf16(CudaContext* ctx, bf16* dst, const float* host_src, size_t n) {
    bf16* staging = (bf16*)xmalloc(sizeof(bf16) * (n < CONVERT_CHUNK ? n : CONVERT_CHUNK) + 1);
    for (size_t at = 0; at < n; at += CONVERT_CHUNK) {
        size_t m = n - at < CONVERT_CHUNK ? n - at : CONVERT_CHUNK;
        for (size_t i = 0; i < m; i++) staging[i] = f32_to_bf16(host_src[at + i]);
        cuda_upload(ctx, dst + at, staging, m * sizeof(bf16));
    }
    free(staging);
}

extern "C" void cuda_download_bf16_as_f32(CudaContext* ctx, float* host_dst, const bf16* src, size_t n) {
    bf16* staging = (bf16*)xmalloc(sizeof(bf16) * n + 1);
    cuda_download(ctx, staging, src, n * sizeof(bf16));
    for (size_t i = 0; i < n; i++) host_dst[i] = bf16_to_f32(staging[i]);
    free(staging);
}

// ---------------------------------------------------------------------------------------------
// fills

extern "C" void cuda_copy(CudaContext* ctx, void* dst, const void* src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx->stream));
}

extern "C" void cuda_memset(CudaContext* ctx, void* p, int byte, size_t bytes) {
    CUDA_CHECK(cudaMemsetAsync(p, byte, bytes, ctx->stream));
}

__global__ void fill_kernel(__nv_bfloat16* dst, size_t n, float value) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = to_bf(value);
}

extern "C" void cuda_fill_bf16(CudaContext* ctx, bf16* dst, size_t n, float value) {
    if (n == 0) return;
    int blocks = (int)(n / 256 + 1 < 65536 ? n / 256 + 1 : 65536);
    fill_kernel<<<blocks, 256, 0, ctx->stream>>>(BF(dst), n, value);
    CUDA_CHECK_LAUNCH();
}

__device__ __forceinline__ uint64_t splitmix64_dev(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// pair k -> elements 2k, 2k+1, exactly the CPU's formula (models/model.c param_init_values)
__global__ void init_normal_kernel(__nv_bfloat16* dst, size_t n, uint64_t key, double std) {
    size_t pairs = (n + 1) / 2;
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < pairs; k += (size_t)gridDim.x * blockDim.x) {
        uint64_t r = splitmix64_dev(key + (uint64_t)k);
        double u1 = ((r >> 11) + 1.0) * (1.0 / 9007199254740993.0);
        double u2 = (double)(splitmix64_dev(r) >> 11) * (1.0 / 9007199254740992.0);
        double radius = std * sqrt(-2.0 * log(u1)), angle = 6.283185307179586 * u2;
        dst[2 * k] = to_bf((float)(radius * cos(angle)));
        if (2 * k + 1 < n) dst[2 * k + 1] = to_bf((float)(radius * sin(angle)));
    }
}

extern "C" void cuda_init_normal_bf16(CudaContext* ctx, bf16* dst, size_t n, uint64_t key, float std) {
    if (n == 0) return;
    size_t pairs = (n + 1) / 2;
    int blocks = (int)(pairs / 256 + 1 < 65536 ? pairs / 256 + 1 : 65536);
    init_normal_kernel<<<blocks, 256, 0, ctx->stream>>>(BF(dst), n, key, (double)std);
    CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------
// graphs

struct CudaGraph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

extern "C" void cuda_graph_begin(CudaContext* ctx) {
    CUDA_CHECK(cudaStreamBeginCapture(ctx->stream, cudaStreamCaptureModeThreadLocal));
    ctx->capturing = 1;
}

extern "C" CudaGraph* cuda_graph_end(CudaContext* ctx) {
    CudaGraph* g = (CudaGraph*)xmalloc(sizeof(CudaGraph));
    CUDA_CHECK(cudaStreamEndCapture(ctx->stream, &g->graph));
    ctx->capturing = 0;
    CUDA_CHECK(cudaGraphInstantiate(&g->exec, g->graph, 0));
    return g;
}

extern "C" void cuda_graph_launch(CudaContext* ctx, CudaGraph* g) { CUDA_CHECK(cudaGraphLaunch(g->exec, ctx->stream)); }

extern "C" void cuda_graph_free(CudaGraph* g) {
    if (!g) return;
    cudaGraphExecDestroy(g->exec);
    cudaGraphDestroy(g->graph);
    free(g);
}

// ---------------------------------------------------------------------------------------------
// timers

struct CudaTimer {
    cudaEvent_t start, stop;
};

extern "C" CudaTimer* cuda_timer_create(void) {
    CudaTimer* t = (CudaTimer*)xmalloc(sizeof(CudaTimer));
    CUDA_CHECK(cudaEventCreate(&t->start));
    CUDA_CHECK(cudaEventCreate(&t->stop));
    return t;
}

extern "C" void cuda_timer_free(CudaTimer* t) {
    if (!t) return;
    cudaEventDestroy(t->start);
    cudaEventDestroy(t->stop);
    free(t);
}

extern "C" void cuda_timer_start(CudaContext* ctx, CudaTimer* t) { CUDA_CHECK(cudaEventRecord(t->start, ctx->stream)); }

extern "C" double cuda_timer_stop_ms(CudaContext* ctx, CudaTimer* t) {
    CUDA_CHECK(cudaEventRecord(t->stop, ctx->stream));
    CUDA_CHECK(cudaEventSynchronize(t->stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, t->start, t->stop));
    return ms;
}

// ---------------------------------------------------------------------------------------------
// ceilings

// the median over reps timed runs of run() (device events), after `warmups` untimed ones
template <typename F>
static double median_time_ms(CudaContext* ctx, int warmups, int reps, F run) {
    CudaTimer* t = cuda_timer_create();
    double* ms = (double*)xmalloc(sizeof(double) * reps);
    for (int i = -warmups; i < reps; i++) {
        cuda_timer_start(ctx, t);
        run();
        double elapsed = cuda_timer_stop_ms(ctx, t);
        if (i >= 0) ms[i] = elapsed;
    }
    double med = median_inplace(ms, reps);
    free(ms);
    cuda_timer_free(t);
    return med;
}

extern "C" double cuda_copy_gbs(CudaContext* ctx, size_t bytes, int reps) {
    bf16* a = (bf16*)cuda_malloc(bytes);
    bf16* b = (bf16*)cuda_malloc(bytes);
    cuda_init_normal_bf16(ctx, a, bytes / sizeof(bf16), 1, 1.0f);  // never time on zeros
    int flip = 0;
    double med = median_time_ms(ctx, 2, reps, [&] {
        CUDA_CHECK(cudaMemcpyAsync(flip ? a : b, flip ? b : a, bytes, cudaMemcpyDeviceToDevice, ctx->stream));
        flip ^= 1;
    });
    cuda_free(a);
    cuda_free(b);
    return 2.0 * (double)bytes / (med * 1e-3) / 1e9;
}

extern "C" double cuda_gemm_tflops(CudaContext* ctx, int M, int N, int K, int reps) {
    bf16* inp = (bf16*)cuda_malloc(sizeof(bf16) * (size_t)M * K);
    bf16* w = (bf16*)cuda_malloc(sizeof(bf16) * (size_t)N * K);
    bf16* out = (bf16*)cuda_malloc(sizeof(bf16) * (size_t)M * N);
    cuda_init_normal_bf16(ctx, inp, (size_t)M * K, 2, 1.0f);
    cuda_init_normal_bf16(ctx, w, (size_t)N * K, 3, 1.0f);
    // three warm-ups: the first makes the plan
    double med = median_time_ms(ctx, 3, reps, [&] { cuda_matmul_forward(ctx, out, 0, inp, w, NULL, M, K, N); });
    cuda_free(inp);
    cuda_free(w);
    cuda_free(out);
    return 2.0 * M * N * (double)K / (med * 1e-3) / 1e12;
}
