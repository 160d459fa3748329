// test_hetero_search.c: the heterogeneous architecture search (prune/hetero_search.h). The optimum
// GLPK proves against brute force over every per-layer choice of 300 random instances (up to 4 layers x
// 4 variants, one to three budgets, infeasible ones included); the cost model against independent
// counts: per-layer parameters summed with the fixed part equal config_param_count, and per-layer decode
// bytes and FLOPs summed equal the roofline's whole-model step (evals/roofline.c).
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/hash.h"
#include "prune/hetero_search.h"
#include "helpers.h"

static double uniform(uint64_t* s) { return (double)(splitmix64_next(s) >> 11) / 9007199254740992.0; }

// the best summed damage over every choice, or INFINITY when none meets the budget
static double brute_force(const BlockVariant* v, int L, int per, const HeteroFixed* f, const HeteroBudget* b) {
    double best = INFINITY;
    int combos = 1;
    for (int l = 0; l < L; l++) combos *= per;
    for (int k = 0; k < combos; k++) {
        double d = 0, p = f->params, m = f->memory, s = f->seconds;
        for (int l = 0, code = k; l < L; l++, code /= per) {
            const BlockVariant* x = &v[l * per + code % per];
            d += x->damage, p += x->params, m += x->memory, s += x->seconds;
        }
        if ((b->params > 0 && p > b->params) || (b->memory > 0 && m > b->memory) || (b->seconds > 0 && s > b->seconds)) continue;
        if (d < best) best = d;
    }
    return best;
}

Test(hetero_search, the_optimum_equals_brute_force) {
    uint64_t s = 12345;
    int infeasible = 0, feasible = 0;
    for (int t = 0; t < 300; t++) {
        int L = 2 + (int)(splitmix64_next(&s) % 3), per = 2 + (int)(splitmix64_next(&s) % 3), n = L * per;
        BlockVariant v[16];
        double total[3] = {0, 0, 0};
        for (int j = 0; j < n; j++) {
            v[j] = (BlockVariant){j / per, 0, 1, uniform(&s), 1 + 99 * uniform(&s), 1 + 999 * uniform(&s), 1e-3 * uniform(&s)};
            total[0] += v[j].params / per, total[1] += v[j].memory / per, total[2] += v[j].seconds / per;
        }
        HeteroFixed f = {10 * uniform(&s), 50 * uniform(&s), 1e-4 * uniform(&s)};
        // budgets around the mean choice's costs: some loose, some tight, some impossible
        int mask = 1 + (int)(splitmix64_next(&s) % 7);
        HeteroBudget b = {0, 0, 0};
        if (mask & 1) b.params = f.params + total[0] * (0.6 + 0.6 * uniform(&s));
        if (mask & 2) b.memory = f.memory + total[1] * (0.6 + 0.6 * uniform(&s));
        if (mask & 4) b.seconds = f.seconds + total[2] * (0.6 + 0.6 * uniform(&s));
        double want = brute_force(v, L, per, &f, &b), got = -1;
        int choice[4];
        Err e;
        int rc = hetero_search(v, n, L, &f, &b, choice, &got, &e);
        if (!isfinite(want)) {
            cr_expect_eq(rc, 1, "instance %d: brute force finds no choice, the search %d (%s)", t, rc, e.msg);
            infeasible++;
            continue;
        }
        cr_assert_eq(rc, 0, "instance %d: %s", t, e.msg);
        feasible++;
        cr_expect(fabs(got - want) < 1e-9, "instance %d: search %.12g, brute force %.12g", t, got, want);
        double d = 0, p = f.params, m = f.memory, sec = f.seconds;
        for (int l = 0; l < L; l++) {
            cr_assert(choice[l] >= 0 && v[choice[l]].layer == l, "instance %d: layer %d's choice %d", t, l, choice[l]);
            d += v[choice[l]].damage, p += v[choice[l]].params, m += v[choice[l]].memory, sec += v[choice[l]].seconds;
        }
        cr_expect(fabs(d - got) < 1e-9, "instance %d: the reported damage is the chosen variants'", t);
        cr_expect((!b.params || p <= b.params * (1 + 1e-9)) && (!b.memory || m <= b.memory * (1 + 1e-9)) &&
                      (!b.seconds || sec <= b.seconds * (1 + 1e-9)),
                  "instance %d: the choice breaks the budget", t);
    }
    cr_log_info("%d feasible, %d infeasible instances", feasible, infeasible);
    cr_expect(feasible > 100 && infeasible > 5, "the instances cover both: %d feasible, %d infeasible", feasible, infeasible);
}

Test(hetero_search, bad_input_is_refused) {
    BlockVariant v[2] = {{0, 8, 1, 0.1, 1, 1, 1}, {0, 0, 1, 0.5, 1, 1, 1}};
    HeteroFixed f = {0, 0, 0};
    HeteroBudget b = {0, 0, 0};
    int choice[2];
    double d;
    Err e;
    cr_expect_eq(hetero_search(v, 2, 2, &f, &b, choice, &d, &e), -1);
    cr_expect(strstr(e.msg, "layer 1 has no variant"), "%s", e.msg);
    v[1].damage = NAN;
    cr_expect_eq(hetero_search(v, 2, 1, &f, &b, choice, &d, &e), -1);
    cr_expect(strstr(e.msg, "not usable"), "%s", e.msg);
    v[1].damage = 0.5;
    b.params = 0.5;  // below the cheapest
    cr_expect_eq(hetero_search(v, 2, 1, &f, &b, choice, &d, &e), 1);
    cr_expect(strstr(e.msg, "cheapest needs 1 parameters"), "%s", e.msg);
}

Test(hetero_search, costs_add_up_to_the_whole_model) {
    const char* presets[] = {"qwen3-0.6b", "qwen3-8b"};
    for (int k = 0; k < 2; k++) {
        ModelConfig c;
        Err e;
        cr_assert_eq(config_preset(presets[k], &c, &e), 0, "%s", e.msg);
        HeteroRegime r = {1, 2048, {"h100", 3350, 989}};
        HeteroFixed f;
        hetero_fixed_costs(&c, &r, &f);
        BlockVariant full;
        block_variant_costs(&c, c.ffn, 1, &r, &full);
        cr_expect_eq(f.params + c.n_layers * full.params, (double)config_param_count(&c), "%s: parameters", presets[k]);
        // batch 1 is memory-bound in every layer: the summed floors are the roofline's step floor, plus what the
        // roofline leaves out: Qwen3's q/k norm weights (2 x head_dim per layer), and with tied embeddings the
        // embedding row each sequence reads
        RooflineStep st;
        roofline_decode(&c, 1, 2048, 2, 2, &r.device, &st);
        double sum = f.seconds + c.n_layers * full.seconds;
        double extra = (c.n_layers * (c.qk_norm ? 2.0 * c.head_dim : 0) + (c.tie_embeddings ? c.hidden : 0)) * 2;
        double want = st.seconds + extra / (r.device.bandwidth_gbs * 1e9);
        cr_expect(fabs(sum - want) < 1e-12 * want, "%s: %.12g s summed, roofline + %.0f bytes %.12g s", presets[k], sum, extra, want);
        // removing a block removes its parameters, memory and time; a narrower FFN costs less
        BlockVariant no_ffn, no_attn, half;
        block_variant_costs(&c, 0, 1, &r, &no_ffn);
        block_variant_costs(&c, 0 + c.ffn, 0, &r, &no_attn);
        block_variant_costs(&c, c.ffn / 2, 1, &r, &half);
        cr_expect_eq(no_ffn.params, full.params - 3.0 * c.hidden * c.ffn - c.hidden);
        cr_expect(no_attn.memory < full.memory && no_attn.seconds < full.seconds && half.params < full.params && half.params > no_ffn.params);
        // a heterogeneous model of these variants: the roofline of the model itself (evals/roofline.c reads
        // its per-layer list) equals the summed variant floors, and its parameters config_param_count
        ModelConfig h = c;
        h.hetero = true;
        double sum_h = f.seconds, params_h = f.params;
        for (int l = 0; l < c.n_layers; l++) {
            int kind = l % 3;  // full, half FFN, no attention
            h.layer_ffn[l] = kind == 1 ? c.ffn / 2 : c.ffn;
            h.layer_attention[l] = kind != 2;
            const BlockVariant* x = kind == 0 ? &full : kind == 1 ? &half : &no_attn;
            sum_h += x->seconds, params_h += x->params;
        }
        cr_expect_eq(params_h, (double)config_param_count(&h), "%s heterogeneous: parameters", presets[k]);
        roofline_decode(&h, 1, 2048, 2, 2, &r.device, &st);
        int with_attention = 0;
        for (int l = 0; l < c.n_layers; l++) with_attention += h.layer_attention[l];
        double extra_h = (with_attention * (c.qk_norm ? 2.0 * c.head_dim : 0) + (c.tie_embeddings ? c.hidden : 0)) * 2;
        double want_h = st.seconds + extra_h / (r.device.bandwidth_gbs * 1e9);
        cr_expect(fabs(sum_h - want_h) < 1e-12 * want_h, "%s heterogeneous: %.12g s summed, roofline %.12g s", presets[k], sum_h, want_h);
    }
}
