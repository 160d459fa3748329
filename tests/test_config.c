// test_config.c: config.json reading (both dialects), validation, refusal of what we do not support,
// writing, and the presets.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "models/config.h"

static char dir[256];
static void setup(void) { make_temp_dir(dir, sizeof dir); }
TestSuite(config, .init = setup);

static const char* base_qwen3 =
    "{\"architectures\": [\"Qwen3ForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 96,"
    " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 24,"
    " \"vocab_size\": 256, \"rms_norm_eps\": 1e-06, \"tie_word_embeddings\": true, \"use_sliding_window\": false,"
    " %s}";

static int load_with(const char* extra, ModelConfig* cfg, Err* e) {
    char text[2048], path[512];
    snprintf(text, sizeof text, base_qwen3, extra);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, text);
    return config_load(dir, cfg, e);
}

static void expect_refused(const char* json_or_extra, int whole, const char* phrase) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ModelConfig cfg;
    Err e = {{0}, 0};
    int rc;
    if (whole) {
        write_text(path, json_or_extra);
        rc = config_load(dir, &cfg, &e);
    } else {
        rc = load_with(json_or_extra, &cfg, &e);
    }
    cr_assert_eq(rc, -1, "should be refused: %s", json_or_extra);
    cr_expect(contains(e.msg, "config.json"), "names the file: %s", e.msg);
    cr_expect(contains(e.msg, phrase), "says '%s': %s", phrase, e.msg);
}

Test(config, transformers5_dialect_rope_parameters) {
    ModelConfig c;
    Err e;
    cr_assert_eq(load_with("\"rope_parameters\": {\"rope_theta\": 1000000.0, \"rope_type\": \"default\"}", &c, &e), 0,
                 "%s", e.msg);
    cr_expect_eq(c.arch, ARCH_QWEN3);
    cr_expect_eq(c.head_dim, 24);
    cr_expect_eq(c.n_kv_heads, 2);
    cr_expect(c.tie_embeddings && c.qk_norm && !c.qkv_bias && !c.o_bias);
    cr_expect_eq(c.rope_theta, 1e6);
    cr_expect_eq(c.rms_eps, 1e-6f);
}

Test(config, hub_dialect_top_level_rope_theta) {
    ModelConfig c;
    Err e;
    cr_assert_eq(load_with("\"rope_theta\": 500000, \"rope_scaling\": null", &c, &e), 0, "%s", e.msg);
    cr_expect_eq(c.rope_theta, 5e5);
}

Test(config, head_dim_defaults_to_hidden_over_heads) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, "{\"architectures\": [\"Qwen2ForCausalLM\"], \"hidden_size\": 48, \"intermediate_size\": 8,"
                     " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 10}");
    ModelConfig c;
    Err e;
    cr_assert_eq(config_load(dir, &c, &e), 0, "%s", e.msg);
    cr_expect_eq(c.head_dim, 12);
    cr_expect_eq(c.n_kv_heads, 4);
    cr_expect(c.qkv_bias && !c.o_bias && !c.qk_norm && !c.tie_embeddings);
    cr_expect_eq(c.rope_theta, 10000.0);
}

Test(config, attention_bias_on_llama_means_qkvo_biases) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 16, \"intermediate_size\": 8,"
                     " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 10, \"attention_bias\": true}");
    ModelConfig c;
    Err e;
    cr_assert_eq(config_load(dir, &c, &e), 0, "%s", e.msg);
    cr_expect(c.qkv_bias && c.o_bias && !c.qk_norm);
}

Test(config, refuses_missing_file) {
    ModelConfig c;
    Err e;
    cr_assert_eq(config_load("/nonexistent/arbor-model", &c, &e), -1);
    cr_expect(contains(e.msg, "/nonexistent/arbor-model/config.json: cannot open"), "%s", e.msg);
}

Test(config, refuses_malformed_json) { expect_refused("{\"hidden_size\": 64,,}", 1, "malformed JSON"); }
Test(config, refuses_non_object) { expect_refused("[1, 2]", 1, "not a JSON object"); }
Test(config, refuses_unsupported_architecture) {
    expect_refused("{\"architectures\": [\"MistralForCausalLM\"]}", 1, "unsupported architecture 'MistralForCausalLM'");
}
Test(config, refuses_missing_field) {
    expect_refused("{\"architectures\": [\"Qwen3ForCausalLM\"], \"hidden_size\": 64}", 1,
                   "missing required field 'num_hidden_layers'");
}
Test(config, refuses_non_integer) { expect_refused("\"max_position_embeddings\": 1.5", 0, "must be an integer"); }
Test(config, refuses_rope_scaling) {
    expect_refused("\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}", 0, "rope_type 'yarn'");
}
Test(config, refuses_rope_parameters_type) {
    expect_refused("\"rope_parameters\": {\"rope_theta\": 1e6, \"rope_type\": \"llama3\"}", 0, "rope_type 'llama3'");
}
Test(config, refuses_sliding_window) {
    char text[1024];
    snprintf(text, sizeof text,
             "{\"architectures\": [\"Qwen3ForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 96,"
             " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 256, \"use_sliding_window\": true}");
    expect_refused(text, 1, "use_sliding_window");
}
#define SMALL_QWEN3(layers, kv)                                                                               \
    "{\"architectures\": [\"Qwen3ForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 96,"                \
    " \"num_hidden_layers\": " #layers ", \"num_attention_heads\": 4, \"num_key_value_heads\": " #kv ", \"vocab_size\": 9}"
Test(config, refuses_indivisible_heads) { expect_refused(SMALL_QWEN3(2, 3), 1, "not a multiple"); }
Test(config, refuses_zero_layers) { expect_refused(SMALL_QWEN3(0, 2), 1, "num_hidden_layers = 0 is out of range"); }
Test(config, refuses_other_activation) { expect_refused("\"hidden_act\": \"gelu\"", 0, "hidden_act 'gelu'"); }

Test(config, save_then_load_round_trip) {
    Err e;
    for (int a = ARCH_QWEN3; a <= ARCH_LLAMA; a++) {
        ModelConfig c, back;
        cr_assert_eq(config_preset("tiny", &c, &e), 0);
        c.arch = (ArchKind)a;
        c.qk_norm = a == ARCH_QWEN3;
        c.qkv_bias = a == ARCH_QWEN2;
        c.tie_embeddings = a != ARCH_LLAMA;
        c.n_eos = 2;
        c.eos_token_ids[0] = 7;
        c.eos_token_ids[1] = 9;
        cr_assert_eq(config_save(&c, dir, "float32", &e), 0, "%s", e.msg);
        cr_assert_eq(config_load(dir, &back, &e), 0, "%s", e.msg);
        cr_expect_eq(memcmp(&c, &back, sizeof c), 0, "arch %d differs after a round trip", a);
    }
}

Test(config, presets_match_released_shapes) {
    // parameter counts published for the Qwen3 checkpoints (model cards): 0.6B, 1.7B, 4.0B, 8.2B
    const struct {
        const char* name;
        double billions;
    } want[] = {{"qwen3-0.6b", 0.596}, {"qwen3-1.7b", 1.72}, {"qwen3-4b", 4.02}, {"qwen3-8b", 8.19}};
    for (int i = 0; i < 4; i++) {
        ModelConfig c;
        Err e;
        cr_assert_eq(config_preset(want[i].name, &c, &e), 0);
        cr_assert_eq(config_validate(&c, want[i].name, &e), 0, "%s", e.msg);
        double b = (double)config_param_count(&c) * 1e-9;
        cr_expect(fabs(b - want[i].billions) / want[i].billions < 0.01, "%s: %.3f B", want[i].name, b);
    }
    ModelConfig c;
    Err e;
    cr_expect_eq(config_preset("qwen9", &c, &e), -1);
    cr_expect(contains(e.msg, "unknown --arch 'qwen9'"), "%s", e.msg);
}
