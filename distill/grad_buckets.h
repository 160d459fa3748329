// grad_buckets.h: the plan of a data-parallel step's gradient reduction: the flat gradient arena cut
// into buckets of at most a bound (PyTorch DDP's bucket_cap_mb, default 25 MB), in the order the
// backward pass finishes them (the lm_head and final norm first, then layer L-1 down to 0, the
// embedding last: with tied embeddings the embedding's gradient is complete only then), so each
// bucket's reduction can start while the backward still runs the layers below it. Plain C: the
// same plan drives the MPI path (host buffers) and the NCCL one (device buffers); unit-tested.
#pragma once
#include <stddef.h>

#include "../kernels/check.h"
#include "../models/model.h"

#define GRAD_BUCKET_DEFAULT_BYTES ((size_t)25 << 20)

typedef struct {
    size_t lo, hi;  // elements [lo, hi) of the arena
    int ready_after;  // the backward's point after which every gradient in it is final: n_layers for the
                      // lm_head / final norm, l for layer l's tensors, -1 for the embedding
} GradBucket;

typedef struct {
    GradBucket* buckets;  // in issue order
    int n;
} GradBucketPlan;

// One tensor of an arena: where it lives and when the backward finishes its gradient.
typedef struct {
    size_t offset, numel;
    int ready_after;  // as GradBucket's
} GradTensor;

// The tensors of t in the CPU arena's layout (ParamTable offsets), ready points by layer.
// out: t->n_params entries, malloc'd.
GradTensor* grad_tensors_of_table(const ParamTable* t);
// Buckets of at most max_elems elements (>= 1) over the tensors: walked in order of readiness (latest
// layer first; within a layer, highest offset first), a tensor fills the open bucket up to the bound
// when it is next to it in memory (its top part when it does not fit whole), the rest goes to new
// buckets of the bound; a bucket is ready when the last of its tensors is. gap_elems: padding between
// tensors that may be bridged (a device layout's alignment; the padding's gradients are zero on every
// rank).
int grad_bucket_plan(const GradTensor* tensors, int n, size_t max_elems, size_t gap_elems, GradBucketPlan* p, Err* e);
void grad_bucket_plan_free(GradBucketPlan* p);
// The owners' parts of bucket b under ZeRO-1's shards: out[r] = bounds[r] clamped to [b->lo, b->hi]
// (world + 1 entries each), the ranges a reduce-scatter of the bucket sends to each rank.
void grad_bucket_owners(const GradBucket* b, const size_t* bounds, int world, size_t* out);
