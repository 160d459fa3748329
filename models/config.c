// config.c: Hugging Face config.json <-> ModelConfig, and presets.
#include "config.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_io.h"

const char* arch_hf_class(ArchKind a) {
    switch (a) {
        case ARCH_QWEN3: return "Qwen3ForCausalLM";
        case ARCH_QWEN2: return "Qwen2ForCausalLM";
        case ARCH_LLAMA: return "LlamaForCausalLM";
    }
    return "?";
}

const char* arch_model_type(ArchKind a) {
    switch (a) {
        case ARCH_QWEN3: return "qwen3";
        case ARCH_QWEN2: return "qwen2";
        case ARCH_LLAMA: return "llama";
    }
    return "?";
}

// ---------------------------------------------------------------------------------------------
// reading

typedef struct {
    const cJSON* root;
    const char* path;
    Err* e;
} JsonCtx;

// Reads an integer field; returns 1 found, 0 absent (or null), -1 bad.
static int json_int(JsonCtx* j, const cJSON* obj, const char* key, int* out) {
    const cJSON* it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || fabs(it->valuedouble) > 2e9)
        return err_set(j->e, "%s: '%s' must be an integer", j->path, key);
    *out = (int)it->valuedouble;
    return 1;
}

static int json_num(JsonCtx* j, const cJSON* obj, const char* key, double* out) {
    const cJSON* it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsNumber(it)) return err_set(j->e, "%s: '%s' must be a number", j->path, key);
    *out = it->valuedouble;
    return 1;
}

static int json_bool(JsonCtx* j, const cJSON* obj, const char* key, bool* out) {
    const cJSON* it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsBool(it)) return err_set(j->e, "%s: '%s' must be true or false", j->path, key);
    *out = cJSON_IsTrue(it);
    return 1;
}

static int require_int(JsonCtx* j, const char* key, int* out) {
    int r = json_int(j, j->root, key, out);
    if (r == 0) return err_set(j->e, "%s: missing required field '%s'", j->path, key);
    return r < 0 ? -1 : 0;
}

static int parse_arch(JsonCtx* j, ArchKind* arch) {
    const cJSON* archs = cJSON_GetObjectItemCaseSensitive(j->root, "architectures");
    const char* name = NULL;
    if (cJSON_IsArray(archs) && cJSON_GetArraySize(archs) > 0 &&
        cJSON_IsString(cJSON_GetArrayItem(archs, 0)))
        name = cJSON_GetArrayItem(archs, 0)->valuestring;
    const cJSON* mt = cJSON_GetObjectItemCaseSensitive(j->root, "model_type");
    const char* model_type = cJSON_IsString(mt) ? mt->valuestring : NULL;
    if (!name && !model_type)
        return err_set(j->e, "%s: neither 'architectures' nor 'model_type' names the architecture", j->path);
    for (int a = ARCH_QWEN3; a <= ARCH_LLAMA; a++) {
        if ((name && strcmp(name, arch_hf_class(a)) == 0) ||
            (!name && strcmp(model_type, arch_model_type(a)) == 0)) {
            *arch = (ArchKind)a;
            return 0;
        }
    }
    return err_set(j->e,
                   "%s: unsupported architecture '%s' (supported: Qwen3ForCausalLM, Qwen2ForCausalLM, "
                   "LlamaForCausalLM)",
                   j->path, name ? name : model_type);
}

// rope_theta lives at the top level (Hub checkpoints) or inside rope_parameters (transformers 5.x).
static int parse_rope(JsonCtx* j, ModelConfig* cfg) {
    cfg->rope_theta = 10000.0;
    const cJSON* scaling = NULL;
    const cJSON* params = cJSON_GetObjectItemCaseSensitive(j->root, "rope_parameters");
    if (params && !cJSON_IsNull(params)) {
        if (!cJSON_IsObject(params)) return err_set(j->e, "%s: 'rope_parameters' must be an object", j->path);
        if (json_num(j, params, "rope_theta", &cfg->rope_theta) < 0) return -1;
        scaling = params;
    }
    if (json_num(j, j->root, "rope_theta", &cfg->rope_theta) < 0) return -1;
    const cJSON* rs = cJSON_GetObjectItemCaseSensitive(j->root, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) {
        if (!cJSON_IsObject(rs)) return err_set(j->e, "%s: 'rope_scaling' must be an object or null", j->path);
        scaling = rs;
    }
    if (scaling) {
        const cJSON* type = cJSON_GetObjectItemCaseSensitive(scaling, "rope_type");
        if (!type) type = cJSON_GetObjectItemCaseSensitive(scaling, "type");
        if (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "default") == 0))
            return err_set(j->e, "%s: rope_type '%s' is not supported (only \"default\")", j->path,
                           cJSON_IsString(type) ? type->valuestring : "?");
    }
    return 0;
}

static int parse_token_ids(JsonCtx* j, ModelConfig* cfg) {
    cfg->bos_token_id = -1;
    if (json_int(j, j->root, "bos_token_id", &cfg->bos_token_id) < 0) return -1;
    cfg->n_eos = 0;
    const cJSON* eos = cJSON_GetObjectItemCaseSensitive(j->root, "eos_token_id");
    if (!eos || cJSON_IsNull(eos)) return 0;
    if (cJSON_IsNumber(eos)) {
        cfg->eos_token_ids[cfg->n_eos++] = eos->valueint;
        return 0;
    }
    if (!cJSON_IsArray(eos)) return err_set(j->e, "%s: 'eos_token_id' must be an integer or a list", j->path);
    const cJSON* it;
    cJSON_ArrayForEach(it, eos) {
        if (!cJSON_IsNumber(it)) return err_set(j->e, "%s: 'eos_token_id' list holds a non-integer", j->path);
        if (cfg->n_eos < 4) cfg->eos_token_ids[cfg->n_eos++] = it->valueint;
    }
    return 0;
}

// "arbor_layers": [{"intermediate_size": F, "attention": true}, ...], one per layer (arbor's own key for
// heterogeneous models; transformers ignores it, and such a checkpoint does not load there)
static int parse_layers(JsonCtx* j, ModelConfig* cfg) {
    const cJSON* layers = cJSON_GetObjectItemCaseSensitive(j->root, "arbor_layers");
    if (!layers) return 0;
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) != cfg->n_layers)
        return err_set(j->e, "%s: arbor_layers must be an array of num_hidden_layers (%d) objects", j->path, cfg->n_layers);
    cfg->hetero = true;
    for (int l = 0; l < cfg->n_layers; l++) {
        const cJSON* o = cJSON_GetArrayItem(layers, l);
        const cJSON* f = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "intermediate_size") : NULL;
        const cJSON* a = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "attention") : NULL;
        // the range before the cast: a double past int's range would be undefined to convert
        if (!cJSON_IsNumber(f) || !(f->valuedouble >= 0 && f->valuedouble <= (double)(1 << 24)) ||
            f->valuedouble != floor(f->valuedouble) || !cJSON_IsBool(a))
            return err_set(j->e, "%s: arbor_layers[%d] needs an integer intermediate_size in [0, 2^24] and a boolean attention",
                           j->path, l);
        cfg->layer_ffn[l] = (int)f->valuedouble;
        cfg->layer_attention[l] = cJSON_IsTrue(a);
    }
    return config_validate(cfg, j->path, j->e);
}

static int parse_config(JsonCtx* j, ModelConfig* cfg) {
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(j->root)) return err_set(j->e, "%s: not a JSON object", j->path);
    if (parse_arch(j, &cfg->arch)) return -1;
    if (require_int(j, "num_hidden_layers", &cfg->n_layers) || require_int(j, "hidden_size", &cfg->hidden) ||
        require_int(j, "intermediate_size", &cfg->ffn) ||
        require_int(j, "num_attention_heads", &cfg->n_heads) || require_int(j, "vocab_size", &cfg->vocab))
        return -1;
    cfg->n_kv_heads = cfg->n_heads;
    if (json_int(j, j->root, "num_key_value_heads", &cfg->n_kv_heads) < 0) return -1;
    cfg->head_dim = cfg->n_heads > 0 ? cfg->hidden / cfg->n_heads : 0;
    if (json_int(j, j->root, "head_dim", &cfg->head_dim) < 0) return -1;
    // absent: the default of the transformers config class (Llama 2048, Qwen2/Qwen3 32768), which is
    // what transformers and lm-eval's max_length then use
    cfg->max_positions = cfg->arch == ARCH_LLAMA ? 2048 : 32768;
    if (json_int(j, j->root, "max_position_embeddings", &cfg->max_positions) < 0) return -1;
    double eps = 1e-6;
    if (json_num(j, j->root, "rms_norm_eps", &eps) < 0) return -1;
    cfg->rms_eps = (float)eps;
    if (parse_rope(j, cfg)) return -1;
    cfg->tie_embeddings = false;  // the default of all three transformers config classes
    if (json_bool(j, j->root, "tie_word_embeddings", &cfg->tie_embeddings) < 0) return -1;
    bool attention_bias = false, mlp_bias = false, sliding = false;
    if (json_bool(j, j->root, "attention_bias", &attention_bias) < 0) return -1;
    if (json_bool(j, j->root, "mlp_bias", &mlp_bias) < 0) return -1;
    if (json_bool(j, j->root, "use_sliding_window", &sliding) < 0) return -1;
    if (mlp_bias) return err_set(j->e, "%s: mlp_bias true is not supported", j->path);
    if (sliding) return err_set(j->e, "%s: use_sliding_window true is not supported", j->path);
    const cJSON* act = cJSON_GetObjectItemCaseSensitive(j->root, "hidden_act");
    if (act && !(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0))
        return err_set(j->e, "%s: hidden_act '%s' is not supported (only \"silu\")", j->path,
                       cJSON_IsString(act) ? act->valuestring : "?");
    cfg->qkv_bias = cfg->arch == ARCH_QWEN2 || attention_bias;
    cfg->o_bias = cfg->arch != ARCH_QWEN2 && attention_bias;
    cfg->qk_norm = cfg->arch == ARCH_QWEN3;
    if (parse_token_ids(j, cfg)) return -1;
    if (config_validate(cfg, j->path, j->e)) return -1;
    return parse_layers(j, cfg);
}

int config_load(const char* dir, ModelConfig* cfg, Err* e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len;
    char* text = file_read_all(path, &len, e);
    if (!text) return -1;
    const char* end = NULL;
    cJSON* root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        long off = end ? (long)(end - text) : 0;
        free(text);
        return err_set(e, "%s: malformed JSON near byte %ld", path, off);
    }
    JsonCtx j = {root, path, e};
    int rc = parse_config(&j, cfg);
    cJSON_Delete(root);
    free(text);
    return rc;
}

int config_validate(const ModelConfig* c, const char* src, Err* e) {
    const struct {
        const char* name;
        int v, lo, hi;
    } ranges[] = {
        {"num_hidden_layers", c->n_layers, 1, 1024},     {"hidden_size", c->hidden, 1, 1 << 17},
        {"intermediate_size", c->ffn, 1, 1 << 19},       {"num_attention_heads", c->n_heads, 1, 4096},
        {"num_key_value_heads", c->n_kv_heads, 1, 4096}, {"head_dim", c->head_dim, 2, 4096},
        {"vocab_size", c->vocab, 1, 1 << 24},            {"max_position_embeddings", c->max_positions, 1, 1 << 24},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (ranges[i].v < ranges[i].lo || ranges[i].v > ranges[i].hi)
            return err_set(e, "%s: %s = %d is out of range [%d, %d]", src, ranges[i].name, ranges[i].v,
                           ranges[i].lo, ranges[i].hi);
    if (c->n_heads % c->n_kv_heads)
        return err_set(e, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", src,
                       c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2) return err_set(e, "%s: head_dim %d must be even for RoPE", src, c->head_dim);
    if (!(c->rms_eps > 0.0f) || !isfinite(c->rms_eps))
        return err_set(e, "%s: rms_norm_eps must be positive", src);
    if (!(c->rope_theta > 1.0) || !isfinite(c->rope_theta))
        return err_set(e, "%s: rope_theta must be greater than 1", src);
    if (c->hetero) {
        if (c->n_layers > CONFIG_MAX_LAYERS) return err_set(e, "%s: at most %d heterogeneous layers", src, CONFIG_MAX_LAYERS);
        int widest = 0;
        for (int l = 0; l < c->n_layers; l++) {
            if (c->layer_ffn[l] < 0 || c->layer_ffn[l] > c->ffn)
                return err_set(e, "%s: arbor_layers[%d].intermediate_size = %d is outside [0, intermediate_size %d]", src, l,
                               c->layer_ffn[l], c->ffn);
            widest = c->layer_ffn[l] > widest ? c->layer_ffn[l] : widest;
        }
        if (widest != c->ffn && !(widest == 0 && c->ffn == 1))  // (no FFN anywhere: intermediate_size 1)
            return err_set(e, "%s: intermediate_size %d must be the widest layer's (%d)", src, c->ffn, widest);
    }
    return 0;
}

int config_require_uniform(const ModelConfig* c, const char* what, Err* e) {
    if (!c->hetero) return 0;
    return err_set(e, "%s: this model's layers differ (heterogeneous: per-layer FFN widths or attention removed), which runs "
                      "on the CPU path only for now", what);
}

// ---------------------------------------------------------------------------------------------
// writing

static cJSON* add_int_or_null(cJSON* o, const char* key, int v) {
    return v >= 0 ? cJSON_AddNumberToObject(o, key, v) : cJSON_AddNullToObject(o, key);
}

int config_save(const ModelConfig* c, const char* dir, const char* dtype, Err* e) {
    cJSON* o = cJSON_CreateObject();
    cJSON* archs = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(arch_hf_class(c->arch)));
    cJSON_AddStringToObject(o, "model_type", arch_model_type(c->arch));
    if (c->arch != ARCH_QWEN2) cJSON_AddBoolToObject(o, "attention_bias", c->o_bias);
    if (c->arch == ARCH_LLAMA) cJSON_AddBoolToObject(o, "mlp_bias", false);
    cJSON_AddNumberToObject(o, "attention_dropout", 0.0);
    add_int_or_null(o, "bos_token_id", c->bos_token_id);
    if (c->n_eos == 1) {
        cJSON_AddNumberToObject(o, "eos_token_id", c->eos_token_ids[0]);
    } else if (c->n_eos > 1) {
        cJSON* eos = cJSON_AddArrayToObject(o, "eos_token_id");
        for (int i = 0; i < c->n_eos; i++) cJSON_AddItemToArray(eos, cJSON_CreateNumber(c->eos_token_ids[i]));
    } else {
        cJSON_AddNullToObject(o, "eos_token_id");
    }
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    cJSON_AddNumberToObject(o, "hidden_size", c->hidden);
    cJSON_AddNumberToObject(o, "initializer_range", 0.02);
    cJSON_AddNumberToObject(o, "intermediate_size", c->ffn);
    if (c->hetero) {
        cJSON* layers = cJSON_AddArrayToObject(o, "arbor_layers");
        for (int l = 0; l < c->n_layers; l++) {
            cJSON* x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "intermediate_size", c->layer_ffn[l]);
            cJSON_AddBoolToObject(x, "attention", c->layer_attention[l]);
            cJSON_AddItemToArray(layers, x);
        }
    }
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_positions);
    cJSON_AddNumberToObject(o, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "rms_norm_eps", c->rms_eps);
    // Top-level rope_theta: the Hub dialect, read by transformers 4.x and 5.x alike.
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    cJSON_AddNullToObject(o, "rope_scaling");
    if (c->arch != ARCH_LLAMA) {
        cJSON_AddBoolToObject(o, "use_sliding_window", false);
        cJSON_AddNullToObject(o, "sliding_window");
    }
    cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_embeddings);
    cJSON_AddStringToObject(o, "torch_dtype", dtype);
    cJSON_AddBoolToObject(o, "use_cache", true);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab);
    return json_write_atomic(dir, "config.json", o, e);
}

// ---------------------------------------------------------------------------------------------
// presets (shapes of the released checkpoints; tiny is for tests and the demo)

typedef struct {
    const char* name;
    int layers, hidden, ffn, heads, kv, head_dim, vocab;
    bool tied;
} Preset;

static const Preset presets[] = {
    {"tiny", 4, 64, 192, 4, 2, 16, 512, true},
    {"qwen3-0.6b", 28, 1024, 3072, 16, 8, 128, 151936, true},
    {"qwen3-1.7b", 28, 2048, 6144, 16, 8, 128, 151936, true},
    {"qwen3-4b", 36, 2560, 9728, 32, 8, 128, 151936, true},
    {"qwen3-8b", 36, 4096, 12288, 32, 8, 128, 151936, false},
};

const char* config_preset_names(void) { return "tiny, qwen3-0.6b, qwen3-1.7b, qwen3-4b, qwen3-8b"; }

int config_preset(const char* name, ModelConfig* c, Err* e) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const Preset* p = &presets[i];
        if (strcmp(name, p->name) != 0) continue;
        memset(c, 0, sizeof *c);
        c->arch = ARCH_QWEN3;
        c->n_layers = p->layers;
        c->hidden = p->hidden;
        c->ffn = p->ffn;
        c->n_heads = p->heads;
        c->n_kv_heads = p->kv;
        c->head_dim = p->head_dim;
        c->vocab = p->vocab;
        c->tie_embeddings = p->tied;
        c->qk_norm = true;
        c->rms_eps = 1e-6f;
        c->rope_theta = 1e6;
        c->max_positions = 40960;
        bool real = p->vocab == 151936;
        c->bos_token_id = real ? 151643 : -1;
        c->n_eos = real ? 1 : 0;
        c->eos_token_ids[0] = 151645;
        return 0;
    }
    return err_set(e, "unknown --arch '%s' (known: %s)", name, config_preset_names());
}

long long config_param_count(const ModelConfig* c) {
    long long C = c->hidden, q = (long long)c->n_heads * c->head_dim, kv = (long long)c->n_kv_heads * c->head_dim;
    long long attention = C + C * q + 2 * C * kv + q * C;  // its norm, q, k, v, o
    if (c->qkv_bias) attention += q + 2 * kv;
    if (c->o_bias) attention += C;
    if (c->qk_norm) attention += 2LL * c->head_dim;
    long long total = (long long)c->vocab * C + C;
    for (int l = 0; l < c->n_layers; l++) {
        int f = config_layer_ffn(c, l);
        total += (config_layer_attention(c, l) ? attention : 0) + (f ? C + 3 * C * (long long)f : 0);
    }
    if (!c->tie_embeddings) total += (long long)c->vocab * C;
    return total;
}
