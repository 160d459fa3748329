// bench_memory_plan.c: see bench_memory_plan.h.
#include "bench_memory_plan.h"

#include <stdio.h>
#include <string.h>

int bench_memory_plan(const ModelConfig* c, int B, int P, int G, size_t free_bytes, int max_chunk_rows,
                      BenchMemoryPlan* p) {
    memset(p, 0, sizeof *p);
    p->free = free_bytes;
    p->reserve = BENCH_RESERVE_BYTES;
    p->kv_cache = kvcache_device_bytes(c, c->n_layers, B, P + G + 2);
    long long rows = (long long)B * P, cap = max_chunk_rows > 0 ? max_chunk_rows : BENCH_MAX_CHUNK_ROWS;
    if (cap < B) cap = B;  // a decode step holds B rows
    // the largest chunk the memory left takes: per-row bytes from the run state's own formula
    size_t fixed = runstate_device_bytes(c, 0, B), per_row = runstate_device_bytes(c, 1, B) - fixed;
    size_t used = p->kv_cache + p->reserve + fixed;
    long long afford = free_bytes > used ? (long long)((free_bytes - used) / per_row) : 0;
    long long chunk = rows < cap ? rows : cap;
    if (chunk > afford) chunk = afford;
    if (chunk >= P && chunk < rows) chunk = chunk / P * P;  // whole prompts per call: one shape for all calls
    if (chunk < B) chunk = B;
    p->chunk_rows = (int)chunk;
    p->run_state = runstate_device_bytes(c, p->chunk_rows, B);
    p->need = p->kv_cache + p->run_state + p->reserve;
    p->fits = p->need <= free_bytes;
    if (!p->fits)
        snprintf(p->why, sizeof p->why,
                 "skipped: needs %.1f GB (KV cache %.1f GB, activations of %d rows %.1f GB, reserve %.1f GB), %.1f GB free",
                 p->need / 1e9, p->kv_cache / 1e9, p->chunk_rows, p->run_state / 1e9, p->reserve / 1e9, free_bytes / 1e9);
    return p->fits;
}
