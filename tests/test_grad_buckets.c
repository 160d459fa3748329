// test_grad_buckets.c: the data-parallel reduction's bucket plan (distill/grad_buckets.h) for the real
// shapes of Qwen3-0.6B (tied), 4B (tied) and 8B: every parameter element in exactly one bucket, buckets
// issued in the order the backward finishes them (the lm_head and final norm, layers from the last to the
// first, the embedding last), no bucket issued before all of its tensors are final, sizes within the
// bound; and a padded device-like layout, whose gaps are bridged only when allowed.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "distill/grad_buckets.h"
#include "helpers.h"

static void check_plan(const GradTensor* t, int n, const GradBucketPlan* p, size_t bound, const char* what) {
    cr_assert_gt(p->n, 0, "%s: no buckets", what);
    for (int b = 0; b < p->n; b++) {
        const GradBucket* k = &p->buckets[b];
        cr_assert(k->hi > k->lo && k->hi - k->lo <= bound, "%s: bucket %d holds %zu elements (bound %zu)", what, b, k->hi - k->lo, bound);
        if (b) cr_assert_leq(k->ready_after, p->buckets[b - 1].ready_after, "%s: bucket %d issued out of the backward's order", what, b);
        for (int c = 0; c < b; c++)  // disjoint
            cr_assert(k->hi <= p->buckets[c].lo || k->lo >= p->buckets[c].hi, "%s: buckets %d and %d overlap", what, b, c);
    }
    for (int i = 0; i < n; i++) {  // each tensor covered exactly once, by buckets not issued before it is final
        size_t covered = 0;
        for (int b = 0; b < p->n; b++) {
            const GradBucket* k = &p->buckets[b];
            size_t lo = k->lo > t[i].offset ? k->lo : t[i].offset, hi = k->hi < t[i].offset + t[i].numel ? k->hi : t[i].offset + t[i].numel;
            if (hi <= lo) continue;
            covered += hi - lo;
            cr_assert_leq(k->ready_after, t[i].ready_after, "%s: bucket %d (ready after %d) holds tensor %d, final only after %d", what, b,
                          k->ready_after, i, t[i].ready_after);
        }
        cr_assert_eq(covered, t[i].numel, "%s: tensor %d: %zu of %zu elements in buckets", what, i, covered, t[i].numel);
    }
}

Test(grad_buckets, qwen3_shapes_in_the_backward_order) {
    const char* presets[] = {"qwen3-0.6b", "qwen3-4b", "qwen3-8b"};
    for (int k = 0; k < 3; k++) {
        ModelConfig c;
        Err e;
        cr_assert_eq(config_preset(presets[k], &c, &e), 0, "%s", e.msg);
        ParamTable table;
        param_table_build(&c, &table);
        GradTensor* t = grad_tensors_of_table(&table);
        size_t bound = GRAD_BUCKET_DEFAULT_BYTES / sizeof(float);
        GradBucketPlan p;
        cr_assert_eq(grad_bucket_plan(t, table.n_params, bound, 0, &p, &e), 0, "%s", e.msg);
        check_plan(t, table.n_params, &p, bound, presets[k]);
        // the first bucket holds the lm_head's last rows (untied: ready before any layer) or the final norm
        // with the last layer's top tensors (tied: the lm_head is the embedding, final only after the
        // embedding's backward); the last holds the embedding's first rows
        cr_expect_eq(p.buckets[0].ready_after, c.tie_embeddings ? c.n_layers - 1 : c.n_layers, "%s", presets[k]);
        cr_expect_eq(p.buckets[p.n - 1].ready_after, -1, "%s", presets[k]);
        cr_expect_eq(p.buckets[p.n - 1].lo, 0, "%s: the embedding sits at offset 0", presets[k]);
        // the CPU arena is one contiguous run: all of it covered, in as few buckets as the bound allows
        size_t total = 0;
        for (int b = 0; b < p.n; b++) total += p.buckets[b].hi - p.buckets[b].lo;
        cr_expect_eq(total, table.n_floats, "%s", presets[k]);
        cr_expect_eq(p.n, (int)((table.n_floats + bound - 1) / bound), "%s: %d buckets", presets[k], p.n);
        cr_log_info("%s: %d buckets of at most 25 MB (fp32) over %zu parameters", presets[k], p.n, table.n_floats);
        grad_bucket_plan_free(&p);
        free(t);
        param_table_free(&table);
    }
}

Test(grad_buckets, padding_is_bridged_only_when_allowed) {
    // a device-like layout: embedding, final norm at 1024, then 2 layers of 2 tensors each, every tensor
    // padded to a multiple of 128 elements
    GradTensor t[6] = {{0, 1000, -1}, {1024, 64, 2}, {1152, 300, 0}, {1536, 200, 0}, {1792, 100, 1}, {1920, 128, 1}};
    GradBucketPlan p;
    Err e;
    cr_assert_eq(grad_bucket_plan(t, 6, 10000, 127, &p, &e), 0, "%s", e.msg);
    check_plan(t, 6, &p, 10000, "bridged");
    // final norm alone (ready first), then layers 1 and 0 bridged into one, then the embedding (not
    // adjacent to layer 0: the final norm's bucket sits between them)
    cr_expect_eq(p.n, 3);
    cr_expect(p.n == 3 && p.buckets[1].lo == 1152 && p.buckets[1].hi == 2048 && p.buckets[1].ready_after == 0, "layers bridged: %zu..%zu",
              p.n == 3 ? p.buckets[1].lo : 0, p.n == 3 ? p.buckets[1].hi : 0);
    grad_bucket_plan_free(&p);
    cr_assert_eq(grad_bucket_plan(t, 6, 10000, 0, &p, &e), 0, "%s", e.msg);
    check_plan(t, 6, &p, 10000, "unbridged");
    cr_expect_eq(p.n, 6, "no gap bridged: every tensor alone");
    grad_bucket_plan_free(&p);
    // a bound smaller than the tensors: split, still covering each exactly once
    cr_assert_eq(grad_bucket_plan(t, 6, 70, 127, &p, &e), 0, "%s", e.msg);
    check_plan(t, 6, &p, 70, "split");
    grad_bucket_plan_free(&p);
    cr_expect_eq(grad_bucket_plan(t, 6, 0, 0, &p, &e), -1);
    cr_expect(strstr(e.msg, "at least one element"), "%s", e.msg);
}
