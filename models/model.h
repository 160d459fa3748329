// model.h: a Qwen3-family model's parameters. All parameters live in one fp32 arena whose layout
// (the ParamTable: one entry per Hugging Face tensor, in a fixed order) is derived from the config
// alone, so gradients and optimizer moments can mirror it and bind the same ModelWeights struct.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "../kernels/ops.h"
#include "config.h"
#include "safetensors.h"

typedef struct {
    float* attn_norm;  // (C) input_layernorm
    float* wq;         // (NH*HS, C)
    float* bq;         // (NH*HS) or NULL
    float* wk;         // (NKV*HS, C)
    float* bk;         // (NKV*HS) or NULL
    float* wv;         // (NKV*HS, C)
    float* bv;         // (NKV*HS) or NULL
    float* wo;         // (C, NH*HS)
    float* bo;         // (C) or NULL
    float* q_norm;     // (HS) or NULL (Qwen3 only)
    float* k_norm;     // (HS) or NULL
    float* mlp_norm;   // (C) post_attention_layernorm
    float* w_gate;     // (F, C)
    float* w_up;       // (F, C)
    float* w_down;     // (C, F)
} LayerWeights;

typedef struct {
    float* wte;             // (V, C) embed_tokens
    float* final_norm;      // (C)
    float* lm_head;         // (V, C); the same pointer as wte when embeddings are tied
    LayerWeights* layers;   // (n_layers)
} ModelWeights;

// The matrices of a model held 16-bit for inference (model_load_as with WEIGHT_BF16 or WEIGHT_F16):
// shapes as in LayerWeights and ModelWeights. The vectors (norms, biases) stay fp32 in ModelWeights,
// whose matrix fields are then NULL.
typedef struct {
    uint16_t *wq, *wk, *wv, *wo, *w_gate, *w_up, *w_down;
} LayerWeights16;

typedef struct {
    WeightType type;          // WEIGHT_F32: no 16-bit matrices, ModelWeights holds everything
    uint16_t* arena;          // the matrices, 64-byte aligned each
    uint16_t* wte;            // (V, C)
    uint16_t* lm_head;        // (V, C); = wte when tied
    LayerWeights16* layers;   // (n_layers)
} Weights16;

typedef enum {
    P_WTE, P_FINAL_NORM, P_LM_HEAD,
    P_ATTN_NORM, P_WQ, P_BQ, P_WK, P_BK, P_WV, P_BV, P_WO, P_BO, P_Q_NORM, P_K_NORM,
    P_MLP_NORM, P_W_GATE, P_W_UP, P_W_DOWN,
} ParamField;

typedef struct {
    char name[96];  // Hugging Face tensor name, e.g. "model.layers.3.mlp.up_proj.weight"
    ParamField field;
    int layer;      // -1 for the global tensors
    int ndim;
    int64_t shape[2];
    size_t offset;  // in floats from the arena start
    size_t numel;
} ParamInfo;

typedef struct {
    ParamInfo* params;
    int n_params;
    size_t n_floats;
} ParamTable;

void param_table_build(const ModelConfig* cfg, ParamTable* t);
// 1 when AdamW decays the parameter: not norm weights, not biases (both trainers)
int param_takes_decay(const ParamInfo* p);
void param_table_free(ParamTable* t);
// Points w's fields into `arena` following t (any arena of t->n_floats: parameters, gradients, ...).
void weights_bind(const ParamTable* t, const ModelConfig* cfg, float* arena, ModelWeights* w);
void weights_free(ModelWeights* w);

typedef struct {
    ModelConfig cfg;
    ParamTable table;
    float* arena;       // (table.n_floats); with 16-bit matrices only the vectors, packed
    ModelWeights w;
    Weights16 w16;      // the matrices when held 16-bit (w16.type != WEIGHT_F32)
    const KernelOps* ops;
    float* inv_freq;    // (HS/2) RoPE inverse frequencies
} Model;

// Allocates a zeroed model of this shape.
void model_create(Model* m, const ModelConfig* cfg);
// The same with the matrices held as t (WEIGHT_F32: model_create). A 16-bit model is for inference on
// the CPU: training, pruning, saving and the GPU read the fp32 arena by the table's offsets and refuse
// it (model_require_f32).
void model_create_as(Model* m, const ModelConfig* cfg, WeightType t);
// Where parameter i of m->table lives: fp32 (model_param_f32, NULL for a 16-bit matrix) or 16-bit.
float* model_param_f32(const Model* m, int i);
uint16_t* model_param_16(const Model* m, int i);
// 0 when m holds fp32 weights; -1 with e saying that `what` needs them otherwise.
int model_require_f32(const Model* m, const char* what, Err* e);
// "fp32", "bf16" or "f16"
int weight_type_parse(const char* name, WeightType* t, Err* e);
const char* weight_type_name(WeightType t);
// RoPE inverse frequencies inv_freq (HS/2) of cfg, in fp32 as transformers computes them
void rope_inv_freq(const ModelConfig* cfg, float* inv_freq);
void model_free(Model* m);
typedef struct {
    long long n_params;  // distinct parameters (tied lm_head once)
    size_t disk_bytes;   // all safetensors files
    int n_files;
    char dtypes[32];     // dtypes found on disk, e.g. "BF16"
} CheckpointSummary;
// Validates DIR's config.json and every tensor header against it, without reading the weights.
int checkpoint_inspect(const char* dir, ModelConfig* cfg, CheckpointSummary* sum, Err* e);
// Loads DIR (config.json + model.safetensors or sharded with model.safetensors.index.json).
int model_load(Model* m, const char* dir, Err* e);
// The same with the matrices held as t: stored 16-bit values of that type are kept bit for bit,
// others rounded to nearest even (as torch's .to(dtype)).
int model_load_as(Model* m, const char* dir, WeightType t, Err* e);

// Deterministic random init, tensor by tensor and element by element (counter-based), so the same
// values come out whether written to disk in a stream or filled into an arena in parallel:
// norms 1, biases 0, matrices N(0, 0.02) as transformers' _init_weights does.
void param_init_values(const ParamInfo* p, uint64_t seed, float* dst);
#define PARAM_INIT_STD 0.02
typedef enum { INIT_ONES, INIT_ZEROS, INIT_NORMAL } ParamInitKind;
// What param_init_values fills p with; for INIT_NORMAL, *key is the stream's key (pair k of the
// Box-Muller uses splitmix64(key + k)), so another backend can draw the same values.
ParamInitKind param_init_kind(const ParamInfo* p, uint64_t seed, uint64_t* key);
void model_init_random(Model* m, uint64_t seed);

#define ARBOR_DEFAULT_SHARD_BYTES 5000000000ull
// Writes a Hugging Face checkpoint directory (config.json, safetensors, index when sharded).
int model_save(const Model* m, const char* dir, StDtype dtype, size_t max_shard_bytes, Err* e);
// Same, without an arena: the parameters come from param_init_values (for models larger than RAM).
int checkpoint_write_random(const ModelConfig* cfg, uint64_t seed, const char* dir, StDtype dtype,
                            size_t max_shard_bytes, Err* e);
