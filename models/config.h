// config.h: the model's hyperparameters, read from a Hugging Face config.json (Qwen3ForCausalLM,
// Qwen2ForCausalLM, LlamaForCausalLM), written back in the form transformers loads, and the presets
// `arbor init` knows.
#pragma once
#include <stdbool.h>

#include "../kernels/check.h"

typedef enum { ARCH_QWEN3, ARCH_QWEN2, ARCH_LLAMA } ArchKind;

#define CONFIG_MAX_LAYERS 1024

typedef struct {
    ArchKind arch;
    int n_layers;    // num_hidden_layers
    int hidden;      // hidden_size (C)
    int ffn;         // intermediate_size (F)
    int n_heads;     // num_attention_heads (NH)
    int n_kv_heads;  // num_key_value_heads (NKV)
    int head_dim;    // head_dim (HS); its own field: not always hidden / n_heads
    int vocab;       // vocab_size (V)
    int max_positions;
    float rms_eps;
    double rope_theta;
    bool tie_embeddings;
    bool qkv_bias;  // Qwen2 always; Qwen3/Llama with attention_bias
    bool o_bias;    // Qwen3/Llama with attention_bias
    bool qk_norm;   // Qwen3 only
    int bos_token_id;  // -1 when absent
    int eos_token_ids[4];
    int n_eos;
    // Layers that differ (heterogeneous pruning; arbor's config.json key "arbor_layers"): layer l keeps
    // layer_ffn[l] FFN neurons (0: no FFN sublayer, nor its norm) and its attention sublayer (with its
    // norm) when layer_attention[l]; ffn is then the largest width. hetero false: every layer has ffn
    // neurons and its attention, and the arrays are not read.
    bool hetero;
    int layer_ffn[CONFIG_MAX_LAYERS];
    unsigned char layer_attention[CONFIG_MAX_LAYERS];
} ModelConfig;

// Layer l's FFN width (0: none) and whether it has its attention.
static inline int config_layer_ffn(const ModelConfig* c, int l) { return c->hetero ? c->layer_ffn[l] : c->ffn; }
static inline int config_layer_attention(const ModelConfig* c, int l) { return c->hetero ? c->layer_attention[l] : 1; }
// -1 with "WHAT: ... heterogeneous ..." when the layers differ (paths that do not run such models yet).
int config_require_uniform(const ModelConfig* c, const char* what, Err* e);

const char* arch_hf_class(ArchKind a);   // "Qwen3ForCausalLM"
const char* arch_model_type(ArchKind a); // "qwen3"

// Reads and validates DIR/config.json. Returns 0, or -1 with e naming the file and the problem.
int config_load(const char* dir, ModelConfig* cfg, Err* e);
// Checks ranges and consistency (heads divisible by kv heads, even head_dim, ...); `source` names the
// file or preset in the message.
int config_validate(const ModelConfig* cfg, const char* source, Err* e);
// Writes DIR/config.json (atomically); `dtype` is "float32" or "bfloat16".
int config_save(const ModelConfig* cfg, const char* dir, const char* dtype, Err* e);

// Presets: "tiny", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b". Returns -1 if unknown.
int config_preset(const char* name, ModelConfig* cfg, Err* e);
const char* config_preset_names(void);

// Parameter counts: total distinct parameters (a tied lm_head counted once).
long long config_param_count(const ModelConfig* cfg);
