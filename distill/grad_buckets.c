// grad_buckets.c: see grad_buckets.h.
#include "grad_buckets.h"

#include <stdlib.h>
#include <string.h>

GradTensor* grad_tensors_of_table(const ParamTable* t) {
    GradTensor* g = xmalloc(sizeof(GradTensor) * (size_t)(t->n_params > 0 ? t->n_params : 1));
    int L = 0;
    for (int i = 0; i < t->n_params; i++)
        if (t->params[i].layer + 1 > L) L = t->params[i].layer + 1;
    for (int i = 0; i < t->n_params; i++) {
        const ParamInfo* p = &t->params[i];
        g[i].offset = p->offset, g[i].numel = p->numel;
        g[i].ready_after = p->layer >= 0 ? p->layer : p->field == P_WTE ? -1 : L;
    }
    return g;
}

// readiness first (latest first), then offset (highest first): the order the backward frees them
static int by_readiness(const void* a, const void* b) {
    const GradTensor *x = a, *y = b;
    if (x->ready_after != y->ready_after) return x->ready_after > y->ready_after ? -1 : 1;
    return x->offset > y->offset ? -1 : x->offset < y->offset ? 1 : 0;
}

static void push(GradBucketPlan* p, int* cap, size_t lo, size_t hi, int ready) {
    if (p->n == *cap) p->buckets = realloc(p->buckets, sizeof(GradBucket) * (size_t)(*cap = *cap ? 2 * *cap : 16));
    if (!p->buckets) FATAL("out of memory");
    p->buckets[p->n++] = (GradBucket){lo, hi, ready};
}

int grad_bucket_plan(const GradTensor* tensors, int n, size_t max_elems, size_t gap_elems, GradBucketPlan* p, Err* e) {
    memset(p, 0, sizeof *p);
    if (max_elems < 1) return err_set(e, "gradient buckets: the bound must hold at least one element");
    GradTensor* t = xmalloc(sizeof(GradTensor) * (size_t)(n > 0 ? n : 1));
    memcpy(t, tensors, sizeof(GradTensor) * (size_t)n);
    qsort(t, (size_t)n, sizeof *t, by_readiness);
    int cap = 0, open = 0;  // open: the last bucket may still grow downwards (lo decreases)
    for (int i = 0; i < n; i++) {
        size_t lo = t[i].offset, hi = t[i].offset + t[i].numel;
        if (t[i].numel == 0) continue;
        GradBucket* last = open ? &p->buckets[p->n - 1] : NULL;
        // the open bucket takes the tensor's top part when the tensor ends at (or within gap_elems below)
        // the bucket's start and room is left: buckets are filled to the bound, so a contiguous arena
        // needs exactly ceil(elements / bound) of them
        if (last && hi <= last->lo && last->lo - hi <= gap_elems && last->hi - hi < max_elems) {
            size_t room = max_elems - (last->hi - hi), take = hi - lo < room ? hi - lo : room;
            last->lo = hi - take;
            last->ready_after = t[i].ready_after;  // the bucket is ready when its last tensor is
            hi -= take;
        }
        // the rest in buckets of the bound, top first (the backward finishes a tensor whole, so its
        // pieces are ready at once); the lowest stays open for the next tensor
        for (size_t top = hi; top > lo;) {
            size_t bottom = top - lo > max_elems ? top - max_elems : lo;
            push(p, &cap, bottom, top, t[i].ready_after);
            top = bottom;
        }
        open = 1;
    }
    free(t);
    return 0;
}

void grad_bucket_owners(const GradBucket* b, const size_t* bounds, int world, size_t* out) {
    for (int r = 0; r <= world; r++) out[r] = bounds[r] < b->lo ? b->lo : bounds[r] > b->hi ? b->hi : bounds[r];
}

void grad_bucket_plan_free(GradBucketPlan* p) {
    free(p->buckets);
    memset(p, 0, sizeof *p);
}
