// gemm_plan_cache.c: see gemm_plan_cache.h.
#include "gemm_plan_cache.h"

#include <string.h>

void gemm_plan_cache_init(GemmPlanCache* c) { memset(c, 0, sizeof *c); }

static int same(const GemmKey* a, const GemmKey* b) { return memcmp(a, b, sizeof *a) == 0; }

int gemm_plan_cache_slot(GemmPlanCache* c, const GemmKey* key, int* build, int* evict) {
    c->clock++;
    *build = 0, *evict = 0;
    for (int i = 0; i < c->n; i++)
        if (same(&c->keys[i], key)) {
            c->last_use[i] = c->clock;
            c->hits++;
            return i;
        }
    c->misses++;
    *build = 1;
    int slot = c->n;
    if (c->n < GEMM_PLAN_CACHE_CAP) {
        c->n++;
    } else {  // full: the least recently used plan goes
        slot = 0;
        for (int i = 1; i < c->n; i++)
            if (c->last_use[i] < c->last_use[slot]) slot = i;
        *evict = 1;
        c->evictions++;
    }
    memset(&c->keys[slot], 0, sizeof c->keys[slot]);
    c->keys[slot] = *key;
    c->last_use[slot] = c->clock;
    c->no_epilogue[slot] = 0;
    return slot;
}

void gemm_plan_cache_mark_no_epilogue(GemmPlanCache* c, int slot) { c->no_epilogue[slot] = 1; }

int gemm_plan_cache_epilogue(const GemmPlanCache* c, int slot) { return c->keys[slot].bias_epilogue && !c->no_epilogue[slot]; }

int gemm_alignment(const void* p) {
    uintptr_t a = (uintptr_t)p;
    int align = 256;
    while (align > 1 && a % (uintptr_t)align) align /= 2;
    return align;
}
