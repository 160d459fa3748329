// roofline.c: see roofline.h.
#include "roofline.h"

#include <string.h>

int device_spec(const char* name, DeviceSpec* d) {
    static const DeviceSpec known[] = {{"h100", 3350, 989}, {"h200", 4800, 989}, {"a100", 2039, 312}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(name, known[i].name)) return *d = known[i], 0;
    return -1;
}

double device_memory_gb(const char* name) {
    static const struct {
        const char* name;
        double gb;
    } known[] = {{"h100", 80}, {"h200", 141}, {"a100", 80}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(name, known[i].name)) return known[i].gb;
    return 0;
}

// layers with an attention sublayer (all but heterogeneous layers that lost theirs)
static int attention_layers(const ModelConfig* c) {
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) n += config_layer_attention(c, l);
    return n;
}

static double kv_per_position(const ModelConfig* c) {  // K and V values of one position, all layers
    return 2.0 * attention_layers(c) * c->n_kv_heads * c->head_dim;
}

double roofline_memory_bytes(const ModelConfig* c, int batch, int context, double weight_bytes, double kv_bytes) {
    return (double)config_param_count(c) * weight_bytes + kv_per_position(c) * kv_bytes * context * batch;
}

// weights multiplied per row: every matrix of every layer and the lm_head (norms and biases are noise)
static double matmul_params(const ModelConfig* c) {  // per layer: its attention's and its FFN's, when it has them
    double C = c->hidden, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim, total = 0;
    for (int l = 0; l < c->n_layers; l++)
        total += (config_layer_attention(c, l) ? C * q + 2 * C * kv + q * C : 0) + 3 * C * (double)config_layer_ffn(c, l);
    return total;
}

static double norm_params(const ModelConfig* c) {  // each sublayer's input norm, and the final norm
    int n = 1;
    for (int l = 0; l < c->n_layers; l++) n += config_layer_attention(c, l) + (config_layer_ffn(c, l) > 0);
    return (double)n * c->hidden;
}

static void finish(RooflineStep* s, const DeviceSpec* d, double tokens) {
    s->bytes = s->weight_bytes + s->kv_read_bytes + s->kv_write_bytes;
    s->flops = s->matmul_flops + s->attention_flops;
    double t_mem = s->bytes / (d->bandwidth_gbs * 1e9), t_math = s->flops / (d->tflops * 1e12);
    s->memory_bound = t_mem >= t_math;
    s->seconds = s->memory_bound ? t_mem : t_math;
    s->tokens_per_s = s->seconds > 0 ? tokens / s->seconds : 0;
}

// bytes of weights read by one step that handles `rows` rows (an untied embedding table is only gathered)
static double weights_read(const ModelConfig* c, double rows, double wb) {
    double lm_head = (double)c->vocab * c->hidden;
    double gathered = rows * c->hidden;
    double norms = norm_params(c);
    return wb * (matmul_params(c) + lm_head + norms + (c->tie_embeddings ? 0 : gathered));
}

void roofline_decode(const ModelConfig* c, int batch, int context, double wb, double kvb, const DeviceSpec* d,
                     RooflineStep* s) {
    memset(s, 0, sizeof *s);
    double B = batch, L = context, lm_head = (double)c->vocab * c->hidden;
    s->weight_bytes = weights_read(c, B, wb);
    s->kv_read_bytes = B * L * kv_per_position(c) * kvb;
    s->kv_write_bytes = B * kv_per_position(c) * kvb;
    s->matmul_flops = 2 * B * (matmul_params(c) + lm_head);
    // the new token attends to L cached positions and itself
    s->attention_flops = 4.0 * B * (L + 1) * attention_layers(c) * c->n_heads * c->head_dim;
    finish(s, d, B);
}

void roofline_prefill(const ModelConfig* c, int batch, int prompt_len, double wb, double kvb, const DeviceSpec* d,
                      RooflineStep* s) {
    memset(s, 0, sizeof *s);
    double B = batch, P = prompt_len, lm_head = (double)c->vocab * c->hidden;
    s->weight_bytes = weights_read(c, B * P, wb);
    s->kv_write_bytes = B * P * kv_per_position(c) * kvb;
    s->matmul_flops = 2 * B * P * matmul_params(c) + 2 * B * lm_head;  // logits for each prompt's last token
    s->attention_flops = 4.0 * B * (P * (P + 1) / 2) * attention_layers(c) * c->n_heads * c->head_dim;
    finish(s, d, B * P);
}
