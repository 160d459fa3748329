// test_hf_parity.c: arbor's fp32 forward against Hugging Face transformers' own Qwen3, Qwen2 and
// Llama classes (fixtures made by tools/make_hf_fixtures.py): batched prefill of unequal prompts,
// token-by-token decode through the KV cache, and 32 greedy steps; and with the matrices held 16-bit
// (tools/make_16bit_fixtures.py for the fp32 checkpoints rounded).
#include <criterion/criterion.h>
#include <stdlib.h>

#include "helpers.h"
#include "models/generate.h"

#define TOL 1e-5

static const char* cases[] = {
    "qwen3_gqa_headdim_tied_bf16",   // head_dim != hidden/heads, GQA 2, tied, BF16 on disk
    "qwen3_odd_untied_bias_f32_sharded",  // hidden 45, GQA 3, untied, attention_bias, 5 shards
    "qwen2_bias_untied_f16",         // q/k/v biases, no QK-norm, F16 on disk
    "llama_tied_hubdialect_f32",     // no biases, no QK-norm, top-level rope_theta, GQA 4
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

typedef struct {
    Model m;
    StFile ref;
    cJSON* json;
    int n_prompts;
    int* prompts[8];
    int lens[8];
    int generated[64];
    int n_generated;
} Case;

static void int_array(const cJSON* arr, int* out, int* n) {
    *n = 0;
    const cJSON* it;
    cJSON_ArrayForEach(it, arr) out[(*n)++] = it->valueint;
}

// The case's checkpoint with its matrices held as t, and the reference logits in ref_file
static void case_open_as(Case* c, const char* name, WeightType t, const char* ref_file) {
    char dir[4096], path[4200];
    Err e;
    fixture_dir(dir, sizeof dir, name);
    cr_assert_eq(model_load_as(&c->m, dir, t, &e), 0, "%s", e.msg);
    snprintf(path, sizeof path, "%s/%s", dir, ref_file);
    cr_assert_eq(st_open(&c->ref, path, &e), 0, "%s", e.msg);
    snprintf(path, sizeof path, "%s/reference.json", dir);
    c->json = read_json(path);
    const cJSON* prompts = cJSON_GetObjectItem(c->json, "prompts");
    c->n_prompts = 0;
    const cJSON* p;
    cJSON_ArrayForEach(p, prompts) {
        c->prompts[c->n_prompts] = malloc(sizeof(int) * 64);
        int_array(p, c->prompts[c->n_prompts], &c->lens[c->n_prompts]);
        c->n_prompts++;
    }
    int_array(cJSON_GetObjectItem(c->json, "generated"), c->generated, &c->n_generated);
    cr_assert_eq(c->n_generated, 32);
}

static void case_open(Case* c, const char* name) { case_open_as(c, name, WEIGHT_F32, "reference.safetensors"); }

static void case_close(Case* c) {
    for (int i = 0; i < c->n_prompts; i++) free(c->prompts[i]);
    cJSON_Delete(c->json);
    st_close(&c->ref);
    model_free(&c->m);
}

static float* reference(Case* c, const char* name, int rows) {
    Err e;
    const StTensor* t = st_find(&c->ref, name);
    cr_assert_not_null(t, "reference tensor %s missing", name);
    cr_assert_eq(t->shape[0], rows);
    cr_assert_eq(t->shape[1], c->m.cfg.vocab);
    float* out = malloc(sizeof(float) * (size_t)st_numel(t));
    cr_assert_eq(st_read_f32(&c->ref, t, out, &e), 0, "%s", e.msg);
    return out;
}

// All prompts in one batched prefill; prompt i's logits against the reference tensor <prefix>prompt<i>.
// Returns the largest relative L2 error.
static double batched_prefill_error(Case* c, const char* label, const char* prefix) {
    int V = c->m.cfg.vocab, total = 0;
    for (int i = 0; i < c->n_prompts; i++) total += c->lens[i];
    KVCache cache;
    RunState s;
    kvcache_create(&cache, &c->m.cfg, c->n_prompts, 64);
    runstate_create(&s, &c->m.cfg, total, 64);
    float* logits = malloc(sizeof(float) * (size_t)total * V);
    Err e;
    cr_assert_eq(model_prefill(&c->m, &s, &cache, (const int* const*)c->prompts, c->lens, c->n_prompts, true, logits, &e), 0,
                 "%s", e.msg);
    double worst = 0;
    for (int i = 0, row = 0; i < c->n_prompts; row += c->lens[i], i++) {
        char name[32];
        snprintf(name, sizeof name, "%sprompt%d", prefix, i);
        float* ref = reference(c, name, c->lens[i]);
        double err = rel_l2(logits + (size_t)row * V, ref, (size_t)c->lens[i] * V);
        cr_log_info("%s prompt %d (batched prefill): rel L2 %.2e", label, i, err);
        worst = err > worst ? err : worst;
        free(ref);
    }
    free(logits);
    runstate_free(&s);
    kvcache_free(&cache);
    return worst;
}

// Prompt 0 and its reference continuation one token per call through the KV cache, against the
// reference tensor ref_name; returns the relative L2 error.
static double decode_error(Case* c, const char* label, const char* ref_name) {
    int V = c->m.cfg.vocab, T = c->lens[0] + c->n_generated;
    int ids[128];
    for (int t = 0; t < c->lens[0]; t++) ids[t] = c->prompts[0][t];
    for (int t = 0; t < c->n_generated; t++) ids[c->lens[0] + t] = c->generated[t];
    float* ref = reference(c, ref_name, T);
    KVCache cache;
    RunState s;
    kvcache_create(&cache, &c->m.cfg, 1, T);
    runstate_create(&s, &c->m.cfg, 1, T);
    float* logits = malloc(sizeof(float) * (size_t)T * V);
    Err e;
    int seq = 0;
    for (int t = 0; t < T; t++)
        cr_assert_eq(model_forward(&c->m, &s, &cache, &ids[t], &seq, &t, 1, NULL, 1, logits + (size_t)t * V, &e), 0, "%s",
                     e.msg);
    double err = rel_l2(logits, ref, (size_t)T * V);
    cr_log_info("%s (token-by-token decode, %d steps): rel L2 %.2e", label, T, err);
    free(logits);
    free(ref);
    runstate_free(&s);
    kvcache_free(&cache);
    return err;
}

Test(hf_parity, batched_prefill_of_unequal_prompts) {
    for (int k = 0; k < N_CASES; k++) {
        Case c;
        case_open(&c, cases[k]);
        double err = batched_prefill_error(&c, cases[k], "");
        cr_expect_leq(err, TOL, "%s: batched prefill rel L2 %.3g", cases[k], err);
        case_close(&c);
    }
}

Test(hf_parity, token_by_token_decode_through_kv_cache) {
    for (int k = 0; k < N_CASES; k++) {
        Case c;
        case_open(&c, cases[k]);
        double err = decode_error(&c, cases[k], "decode");
        cr_expect_leq(err, TOL, "%s: decode rel L2 %.3g", cases[k], err);
        case_close(&c);
    }
}

// --weights bf16 / f16 on a checkpoint stored so: the matrices are kept bit for bit, so the logits are
// transformers' on the same checkpoint (the few-rows, widened-sgemm and single-row kernels all run:
// prompts of 4-13 rows alone, 24 batched, decode one row at a time).
Test(hf_parity, sixteen_bit_weights_as_stored_match_transformers) {
    struct {
        const char* name;
        WeightType type;
    } kept[] = {{"qwen3_gqa_headdim_tied_bf16", WEIGHT_BF16}, {"qwen2_bias_untied_f16", WEIGHT_F16}};
    for (int k = 0; k < 2; k++) {
        Case c, wide;
        case_open_as(&c, kept[k].name, kept[k].type, "reference.safetensors");
        case_open(&wide, kept[k].name);
        for (int i = 0; i < c.m.table.n_params; i++) {  // the 16-bit copy is what the fp32 load widened
            const ParamInfo* p = &c.m.table.params[i];
            const uint16_t* h = model_param_16(&c.m, i);
            const float* f = model_param_f32(&c.m, i);
            const float* ref = wide.m.arena + p->offset;
            cr_assert((p->ndim == 2) == (h != NULL) && (h == NULL) == (f != NULL), "%s: where %s lives", kept[k].name, p->name);
            for (size_t j = 0; j < p->numel; j++)
                cr_assert_eq(h ? f32_from_16(h[j], kept[k].type) : f[j], ref[j], "%s: %s[%zu]", kept[k].name, p->name, j);
        }
        double pre = batched_prefill_error(&c, kept[k].name, ""), dec = decode_error(&c, kept[k].name, "decode");
        cr_expect_leq(pre, TOL, "%s %s: batched prefill rel L2 %.3g", kept[k].name, weight_type_name(kept[k].type), pre);
        cr_expect_leq(dec, TOL, "%s %s: decode rel L2 %.3g", kept[k].name, weight_type_name(kept[k].type), dec);
        case_close(&wide);
        case_close(&c);
    }
}

// --weights bf16 / f16 on an fp32 checkpoint: the matrices rounded to nearest even. Reference: the
// same model in transformers with its 2-D parameters rounded by torch (tools/make_16bit_fixtures.py).
// The rounding moves the logits by the 16-bit tolerance from the fp32 ones, no more.
Test(hf_parity, fp32_checkpoints_rounded_to_16_bit_match_transformers) {
    const char* f32_cases[] = {"qwen3_odd_untied_bias_f32_sharded", "llama_tied_hubdialect_f32"};
    WeightType types[] = {WEIGHT_BF16, WEIGHT_F16};
    double moved_most[] = {2e-2, 3e-3};  // bf16 keeps 8 significant bits, f16 11
    for (int k = 0; k < 2; k++)
        for (int t = 0; t < 2; t++) {
            Case c, ref32;
            char prefix[16], label[96], decode_name[32];
            snprintf(prefix, sizeof prefix, "%s_", weight_type_name(types[t]));
            snprintf(label, sizeof label, "%s as %s", f32_cases[k], weight_type_name(types[t]));
            snprintf(decode_name, sizeof decode_name, "%sdecode", prefix);
            case_open_as(&c, f32_cases[k], types[t], "reference16.safetensors");
            double pre = batched_prefill_error(&c, label, prefix), dec = decode_error(&c, label, decode_name);
            cr_expect_leq(pre, TOL, "%s: batched prefill rel L2 %.3g", label, pre);
            cr_expect_leq(dec, TOL, "%s: decode rel L2 %.3g", label, dec);
            // against the fp32 model's logits: moved, within the type's tolerance
            case_open_as(&ref32, f32_cases[k], types[t], "reference.safetensors");
            double moved = batched_prefill_error(&ref32, label, "");
            cr_expect(moved > 1e-6 && moved < moved_most[t], "%s: rel L2 %.3g from the fp32 logits", label, moved);
            case_close(&ref32);
            case_close(&c);
        }
}

Test(hf_parity, greedy_generation_matches_transformers) {
    for (int k = 0; k < N_CASES; k++) {
        Case c;
        case_open(&c, cases[k]);
        // all prompts decode together; prompt 0 is the one with a reference continuation
        int out[8 * 32], got[8];
        SampleOptions greedy = {.greedy = true, .stop_at_eos = false};
        Err e;
        cr_assert_eq(generate(&c.m, (const int* const*)c.prompts, c.lens, c.n_prompts, 32, &greedy, out, got, &e), 0,
                     "%s", e.msg);
        cr_assert_eq(got[0], 32);
        for (int t = 0; t < 32; t++)
            cr_expect_eq(out[t], c.generated[t], "%s: step %d: arbor %d, transformers %d", cases[k], t, out[t],
                         c.generated[t]);
        // the same prompt alone gives the same ids: batching does not leak between sequences
        int alone[32], n_alone;
        const int* p0[1] = {c.prompts[0]};
        cr_assert_eq(generate(&c.m, p0, c.lens, 1, 32, &greedy, alone, &n_alone, &e), 0, "%s", e.msg);
        cr_expect_arr_eq(alone, out, sizeof alone);
        case_close(&c);
    }
}
