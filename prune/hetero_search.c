// hetero_search.c: see hetero_search.h.
#include "hetero_search.h"

#include <glpk.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void block_variant_costs(const ModelConfig* c, int ffn, int attention, const HeteroRegime* r, BlockVariant* v) {
    double C = c->hidden, HS = c->head_dim, Q = (double)c->n_heads * HS, KV = (double)c->n_kv_heads * HS;
    double B = r->batch, L = r->context;
    double attn_matmul = attention ? C * (Q + 2 * KV) + Q * C : 0;
    double attn_vectors = attention ? C + (c->qk_norm ? 2 * HS : 0) + (c->qkv_bias ? Q + 2 * KV : 0) + (c->o_bias ? C : 0) : 0;
    double ffn_matmul = 3.0 * C * ffn, ffn_vectors = ffn ? C : 0;
    v->ffn = ffn, v->attention = attention;
    v->params = attn_matmul + attn_vectors + ffn_matmul + ffn_vectors;
    double kv_per_token = attention ? 2 * KV * 2 : 0;  // k and v, bf16
    v->memory = 2 * v->params + B * L * kv_per_token;
    double bytes = 2 * v->params + B * L * kv_per_token + B * kv_per_token;  // weights, the cache read and written
    double flops = 2 * B * (attn_matmul + ffn_matmul) + (attention ? 4.0 * B * (L + 1) * Q : 0);
    double mem_s = bytes / (r->device.bandwidth_gbs * 1e9), math_s = flops / (r->device.tflops * 1e12);
    v->seconds = mem_s > math_s ? mem_s : math_s;
}

void block_library_costs(const ModelConfig* c, const HeteroRegime* r, BlockVariant* v, int n) {
    for (int j = 0; j < n; j++) block_variant_costs(c, v[j].ffn, v[j].attention, r, &v[j]);
}

void hetero_choice_layers(const BlockVariant* v, const int* choice, int n_layers, int* ffn, unsigned char* attention,
                          char* ffn_text, char* attention_text, size_t cap) {
    size_t fl = 0, al = 0;
    ffn_text[0] = attention_text[0] = 0;
    for (int l = 0; l < n_layers; l++) {
        const BlockVariant* x = &v[choice[l]];
        ffn[l] = x->ffn, attention[l] = (unsigned char)x->attention;
        if (fl < cap) fl += (size_t)snprintf(ffn_text + fl, cap - fl, "%s%d", l ? " " : "", x->ffn);
        if (al < cap) al += (size_t)snprintf(attention_text + al, cap - al, "%s%d", l ? " " : "", x->attention);
    }
}

int share_list_parse(const char* text, int zero_ok, int one_ok, double* out, int cap, int* n) {
    *n = 0;
    for (const char* p = text; *p;) {
        char* end;
        double x = strtod(p, &end);
        if (end == p || (*end && *end != ',' && *end != ' ') || !(x >= 0 && x <= 1) || (!zero_ok && x == 0) ||
            (!one_ok && x == 1) || *n >= cap)
            return -1;
        out[(*n)++] = x;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    return 0;
}

void hetero_fixed_costs(const ModelConfig* c, const HeteroRegime* r, HeteroFixed* f) {
    double C = c->hidden, V = c->vocab, B = r->batch;
    f->params = V * C * (c->tie_embeddings ? 1 : 2) + C;
    f->memory = 2 * f->params;
    double bytes = 2 * (V * C + C) + B * 2 * C;  // the lm_head and final norm read, one embedding row per sequence
    double flops = 2 * B * V * C;
    double mem_s = bytes / (r->device.bandwidth_gbs * 1e9), math_s = flops / (r->device.tflops * 1e12);
    f->seconds = mem_s > math_s ? mem_s : math_s;
}

static void quiet_glpk(void) { glp_term_out(GLP_OFF); }

int hetero_search(const BlockVariant* v, int n, int n_layers, const HeteroFixed* fixed, const HeteroBudget* b, int* choice,
                  double* damage, Err* e) {
    if (n_layers < 1 || n < n_layers) return err_set(e, "heterogeneous search: %d variants for %d layers", n, n_layers);
    int* per_layer = xcalloc((size_t)n_layers, sizeof(int));
    for (int j = 0; j < n; j++) {
        if (v[j].layer < 0 || v[j].layer >= n_layers || !isfinite(v[j].damage)) {
            free(per_layer);
            return err_set(e, "heterogeneous search: variant %d (layer %d, damage %g) is not usable", j, v[j].layer, v[j].damage);
        }
        per_layer[v[j].layer]++;
    }
    for (int l = 0; l < n_layers; l++)
        if (!per_layer[l]) {
            free(per_layer);
            return err_set(e, "heterogeneous search: layer %d has no variant", l);
        }
    free(per_layer);
    // the cheapest choice per budget, to say why an infeasible one is
    double need[3] = {fixed->params, fixed->memory, fixed->seconds}, cap[3] = {b->params, b->memory, b->seconds};
    static const char* names[3] = {"parameters", "memory bytes", "decode seconds"};
    for (int k = 0; k < 3; k++)
        for (int l = 0; l < n_layers; l++) {
            double least = INFINITY;
            for (int j = 0; j < n; j++) {
                double cost = k == 0 ? v[j].params : k == 1 ? v[j].memory : v[j].seconds;
                if (v[j].layer == l && cost < least) least = cost;
            }
            need[k] += least;
        }
    for (int k = 0; k < 3; k++)
        if (cap[k] > 0 && need[k] > cap[k] * (1 + 1e-12))
            return err_set(e, "no per-layer architecture meets the budget: its cheapest needs %.6g %s, the budget is %.6g", need[k],
                           names[k], cap[k]), 1;

    quiet_glpk();
    glp_prob* lp = glp_create_prob();
    glp_set_obj_dir(lp, GLP_MIN);
    int rows = n_layers;
    for (int k = 0; k < 3; k++) rows += cap[k] > 0;
    glp_add_rows(lp, rows);
    glp_add_cols(lp, n);
    for (int l = 0; l < n_layers; l++) glp_set_row_bnds(lp, l + 1, GLP_FX, 1.0, 1.0);  // one variant per layer
    int row = n_layers, budget_row[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++)
        if (cap[k] > 0) {
            budget_row[k] = ++row;
            double fixed_k = k == 0 ? fixed->params : k == 1 ? fixed->memory : fixed->seconds;
            glp_set_row_bnds(lp, row, GLP_UP, 0.0, (cap[k] - fixed_k) / cap[k]);  // rows scaled to the budget: O(1)
        }
    // the matrix: each variant's column holds a 1 in its layer's row and its costs in the budget rows
    int nz = n * (1 + 3);
    int* ia = xmalloc(sizeof(int) * (size_t)(nz + 1));
    int* ja = xmalloc(sizeof(int) * (size_t)(nz + 1));
    double* ar = xmalloc(sizeof(double) * (size_t)(nz + 1));
    int at = 0;
    for (int j = 0; j < n; j++) {
        glp_set_col_kind(lp, j + 1, GLP_BV);
        glp_set_obj_coef(lp, j + 1, v[j].damage);
        ++at, ia[at] = v[j].layer + 1, ja[at] = j + 1, ar[at] = 1.0;
        double cost[3] = {v[j].params, v[j].memory, v[j].seconds};
        for (int k = 0; k < 3; k++)
            if (budget_row[k]) ++at, ia[at] = budget_row[k], ja[at] = j + 1, ar[at] = cost[k] / cap[k];
    }
    glp_load_matrix(lp, at, ia, ja, ar);
    free(ia), free(ja), free(ar);
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.presolve = GLP_ON;
    parm.msg_lev = GLP_MSG_OFF;
    parm.mip_gap = 0.0;  // exact: the proven optimum, not one within a gap
    int rc = glp_intopt(lp, &parm), status = glp_mip_status(lp);
    int result = 0;
    if (rc == GLP_ENOPFS || rc == GLP_ENODFS || status == GLP_NOFEAS) {
        result = 1;
        err_set(e, "no per-layer architecture meets the budget (GLPK: infeasible)");
    } else if (rc != 0 || status != GLP_OPT) {
        result = -1;
        err_set(e, "heterogeneous search: GLPK ended without an optimum (code %d, status %d)", rc, status);
    } else {
        *damage = 0;
        double used[3] = {fixed->params, fixed->memory, fixed->seconds};
        for (int l = 0; l < n_layers; l++) choice[l] = -1;
        for (int j = 0; j < n; j++)
            if (glp_mip_col_val(lp, j + 1) > 0.5) {
                choice[v[j].layer] = j;
                *damage += v[j].damage;
                used[0] += v[j].params, used[1] += v[j].memory, used[2] += v[j].seconds;
            }
        // GLPK's feasibility tolerance is relative 1e-7: a choice past a budget by less is reported as such
        for (int k = 0; k < 3 && !result; k++)
            if (cap[k] > 0 && used[k] > cap[k] * (1 + 1e-9))
                result = 1, err_set(e, "no per-layer architecture meets the budget: the best needs %.9g %s, the budget is %.9g "
                                       "(within GLPK's tolerance)", used[k], names[k], cap[k]);
    }
    glp_delete_prob(lp);
    return result;
}
