// test_checkpoint.c: Hugging Face checkpoint directories: save/load round trips (F32, BF16,
// sharded), inspection without reading weights, and the refusals for weights that disagree with
// config.json.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "kernels/dtype.h"
#include "models/model.h"

static char dir[256];
static void setup(void) { make_temp_dir(dir, sizeof dir); }
TestSuite(checkpoint, .init = setup);

static void tiny(ModelConfig* c, int tied) {
    Err e;
    cr_assert_eq(config_preset("tiny", c, &e), 0);
    c->tie_embeddings = tied;
}

static void expect_load_error(const char* phrase) {
    Model m;
    Err e = {{0}, 0};
    cr_assert_eq(model_load(&m, dir, &e), -1, "load should fail with '%s'", phrase);
    cr_expect(contains(e.msg, phrase), "says '%s': %s", phrase, e.msg);
    cr_expect(contains(e.msg, dir), "names the directory or file: %s", e.msg);
    ModelConfig c;
    CheckpointSummary s;
    cr_expect_eq(checkpoint_inspect(dir, &c, &s, &e), -1, "inspect refuses it too");
}

Test(checkpoint, f32_round_trip_is_exact_and_tied_head_not_written) {
    ModelConfig c;
    tiny(&c, 1);
    Model m, back;
    model_create(&m, &c);
    model_init_random(&m, 7);
    Err e;
    cr_assert_eq(model_save(&m, dir, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, &e), 0, "%s", e.msg);
    cr_assert_eq(model_load(&back, dir, &e), 0, "%s", e.msg);
    cr_expect_eq(back.table.n_floats, m.table.n_floats);
    cr_expect_eq(memcmp(back.arena, m.arena, m.table.n_floats * sizeof(float)), 0);
    cr_expect_eq(back.w.lm_head, back.w.wte, "tied: lm_head is the embedding");
    StFile f;
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(st_open(&f, path, &e), 0, "%s", e.msg);
    cr_expect_null(st_find(&f, "lm_head.weight"));
    cr_expect_eq(f.n_tensors, m.table.n_params);
    st_close(&f);
    model_free(&m);
    model_free(&back);
}

Test(checkpoint, bf16_sharded_round_trip) {
    ModelConfig c;
    tiny(&c, 0);
    Model m, back;
    model_create(&m, &c);
    model_init_random(&m, 3);
    Err e;
    cr_assert_eq(model_save(&m, dir, ST_BF16, 100000, &e), 0, "%s", e.msg);
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    cr_assert_eq(access(path, F_OK), 0, "sharded save writes an index");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_expect_neq(access(path, F_OK), 0, "and no single-file checkpoint");
    cr_assert_eq(model_load(&back, dir, &e), 0, "%s", e.msg);
    for (size_t i = 0; i < m.table.n_floats; i++)
        if (bf16_to_f32(f32_to_bf16(m.arena[i])) != back.arena[i]) cr_assert_fail("float %zu differs", i);
    cr_expect_neq(back.w.lm_head, back.w.wte, "untied");
    ModelConfig ci;
    CheckpointSummary s;
    cr_assert_eq(checkpoint_inspect(dir, &ci, &s, &e), 0, "%s", e.msg);
    cr_expect_gt(s.n_files, 1);
    cr_expect_eq(s.n_params, config_param_count(&c));
    cr_expect_str_eq(s.dtypes, "BF16");
    model_free(&m);
    model_free(&back);
}

Test(checkpoint, streamed_random_init_equals_arena_init) {
    ModelConfig c;
    tiny(&c, 1);
    Err e;
    cr_assert_eq(checkpoint_write_random(&c, 11, dir, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, &e), 0, "%s", e.msg);
    Model disk, mem;
    cr_assert_eq(model_load(&disk, dir, &e), 0, "%s", e.msg);
    model_create(&mem, &c);
    model_init_random(&mem, 11);
    cr_expect_eq(memcmp(disk.arena, mem.arena, mem.table.n_floats * sizeof(float)), 0);
    // N(0, 0.02) matrices, unit norms
    double ss = 0;
    size_t n = mem.table.params[0].numel;
    for (size_t i = 0; i < n; i++) ss += (double)mem.w.wte[i] * mem.w.wte[i];
    double std = sqrt(ss / n);
    cr_expect(std > 0.019 && std < 0.021, "embedding std %.4f", std);
    cr_expect_eq(mem.w.final_norm[0], 1.0f);
    model_free(&disk);
    model_free(&mem);
}

// Saves a tiny untied model, then rewrites config.json with `edit` applied.
static void save_then_edit_config(void (*edit)(ModelConfig*)) {
    ModelConfig c;
    tiny(&c, 0);
    Model m;
    model_create(&m, &c);
    Err e;
    cr_assert_eq(model_save(&m, dir, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, &e), 0, "%s", e.msg);
    model_free(&m);
    edit(&c);
    cr_assert_eq(config_save(&c, dir, "float32", &e), 0, "%s", e.msg);
}

static void wider_ffn(ModelConfig* c) { c->ffn += 8; }
static void fewer_layers(ModelConfig* c) { c->n_layers -= 1; }
static void more_layers(ModelConfig* c) { c->n_layers += 1; }
static void with_bias(ModelConfig* c) { c->qkv_bias = c->o_bias = true; }

Test(checkpoint, refuses_shape_disagreeing_with_config) {
    save_then_edit_config(wider_ffn);
    expect_load_error("has shape [192, 64] but config.json implies [200, 64]");
}
Test(checkpoint, refuses_tensors_config_does_not_describe) {
    save_then_edit_config(fewer_layers);
    expect_load_error("unexpected tensor 'model.layers.3.");
}
Test(checkpoint, refuses_missing_layer) {
    save_then_edit_config(more_layers);
    expect_load_error("missing tensor 'model.layers.4.input_layernorm.weight'");
}
Test(checkpoint, refuses_missing_bias) {
    save_then_edit_config(with_bias);
    expect_load_error("missing tensor 'model.layers.0.self_attn.q_proj.bias'");
}

// A tiny config.json and, when index_json is given, that text as the shard index: no weights.
static void config_without_weights(const char* index_json) {
    ModelConfig c;
    tiny(&c, 1);
    Err e;
    cr_assert_eq(config_save(&c, dir, "float32", &e), 0);
    if (!index_json) return;
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_text(path, index_json);
}

Test(checkpoint, refuses_missing_weights_file) {
    config_without_weights(NULL);
    expect_load_error("no model.safetensors or model.safetensors.index.json");
}

Test(checkpoint, refuses_malformed_index) {
    config_without_weights("{\"metadata\": {}}");
    expect_load_error("no 'weight_map'");
}

Test(checkpoint, refuses_index_naming_a_missing_shard) {
    config_without_weights("{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}");
    expect_load_error("model-00001-of-00002.safetensors: cannot open");
}

Test(checkpoint, refuses_unreadable_dtype) {
    ModelConfig c;
    tiny(&c, 1);
    c.n_layers = 1;
    c.vocab = 4;
    Err e;
    cr_assert_eq(config_save(&c, dir, "float32", &e), 0);
    // a checkpoint whose embedding is stored as I32
    char header[256];
    int n = snprintf(header, sizeof header,
                     "{\"model.embed_tokens.weight\":{\"dtype\":\"I32\",\"shape\":[4,64],\"data_offsets\":[0,1024]}}");
    uint8_t* buf = calloc(1, 8 + (size_t)n + 1024);
    buf[0] = (uint8_t)n;
    memcpy(buf + 8, header, (size_t)n);
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_bytes(path, buf, 8 + (size_t)n + 1024);
    free(buf);
    expect_load_error("dtype I32");
}

// A model held 16-bit (--weights f16): the matrices are the fp32 values rounded to nearest even,
// whether drawn at random or loaded from an fp32 checkpoint; the vectors stay fp32 as they were; and
// saving, which reads the fp32 arena, is refused rather than writing the packed arena's garbage.
Test(checkpoint, sixteen_bit_models_round_the_fp32_values_and_refuse_saving) {
    ModelConfig c;
    tiny(&c, 1);
    Model f, h, disk;
    model_create(&f, &c);
    model_init_random(&f, 7);
    model_create_as(&h, &c, WEIGHT_F16);
    model_init_random(&h, 7);
    Err e;
    cr_assert_eq(model_save(&f, dir, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, &e), 0, "%s", e.msg);
    cr_assert_eq(model_load_as(&disk, dir, WEIGHT_F16, &e), 0, "%s", e.msg);
    int matrices = 0;
    for (int i = 0; i < f.table.n_params; i++) {
        const ParamInfo* p = &f.table.params[i];
        const float* want = f.arena + p->offset;
        if (p->ndim == 2) {
            matrices++;
            const uint16_t *a = model_param_16(&h, i), *b = model_param_16(&disk, i);
            cr_assert(a && b && !model_param_f32(&h, i), "%s is held 16-bit", p->name);
            for (size_t j = 0; j < p->numel; j++)
                cr_assert(a[j] == f32_to_f16(want[j]) && b[j] == a[j], "%s[%zu]", p->name, j);
        } else {
            const float *a = model_param_f32(&h, i), *b = model_param_f32(&disk, i);
            cr_assert(a && b && !model_param_16(&h, i), "%s stays fp32", p->name);
            cr_assert(!memcmp(a, want, p->numel * sizeof(float)) && !memcmp(b, want, p->numel * sizeof(float)), "%s", p->name);
        }
    }
    cr_expect_eq(matrices, 2 + 7 * c.n_layers - c.tie_embeddings, "embedding, lm_head and 7 matrices per layer");
    cr_expect_eq(model_save(&h, dir, ST_F32, ARBOR_DEFAULT_SHARD_BYTES, &e), -1);
    cr_expect(strstr(e.msg, "saving a checkpoint needs fp32 weights") != NULL, "%s", e.msg);
    model_free(&f);
    model_free(&h);
    model_free(&disk);
}
