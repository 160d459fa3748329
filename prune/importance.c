// importance.c: see importance.h.
#include "importance.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/clock.h"
#include "../models/file_io.h"
#include "../models/progress.h"
#include "../models/train.h"
#include "calib_gpu.h"
#include "../models/vec.h"

static const char* const aggregation_names[] = {[AGG_L2] = "l2", [AGG_MEAN] = "mean", [AGG_VARIANCE] = "variance"};

int aggregation_parse(const char* name, Aggregation* a) {
    for (int i = AGG_L2; i <= AGG_VARIANCE; i++)
        if (!strcmp(name, aggregation_names[i])) return *a = (Aggregation)i, 0;
    return -1;
}

const char* aggregation_name(Aggregation a) { return aggregation_names[a]; }

typedef struct {  // per-item sums over sequences of the per-sequence value, and of its square
    double *sum, *sq;
} Acc;

static Acc acc_new(size_t n) { return (Acc){xcalloc(n, sizeof(double)), xcalloc(n, sizeof(double))}; }
static void acc_add(Acc* a, size_t i, double v) { a->sum[i] += v, a->sq[i] += v * v; }
static void acc_finish(const Acc* a, size_t n, long long count, Aggregation agg, double* out) {
    for (size_t i = 0; i < n; i++) {
        double mean = a->sum[i] / (double)count;
        out[i] = agg == AGG_L2 ? sqrt(a->sq[i]) : agg == AGG_MEAN ? mean : a->sq[i] / (double)count - mean * mean;
    }
    free(a->sum);
    free(a->sq);
}

static double cosine(const float* a, const float* b, int C) {
    double ab = 0, aa = 0, bb = 0;
    for (int c = 0; c < C; c++) ab += (double)a[c] * b[c], aa += (double)a[c] * a[c], bb += (double)b[c] * b[c];
    return ab / (sqrt(aa) * sqrt(bb) + 1e-30);
}

// One batch's tables from the CPU's kept activations (calib_gpu.h makes the same on the GPU):
// cos (rows, P, P) for p < q, the cosine between residual boundaries p and q of each row; mlp (nb, L, F)
// mean |h| of each neuron over a sequence; heads (nb, L, NH) mean norm of each head's output;
// channels (nb, C) the sum over norm sites of each channel's mean |x|.
// With after_norm, boundary L is the final norm's output instead of the stream entering it.
static void batch_tables(const TrainActs* a, const ModelConfig* c, int nb, int after_norm, double* cos_t, double* mlp_t,
                         double* heads_t, double* ch_t) {
    int L = c->n_layers, C = c->hidden, F = c->ffn, NH = c->n_heads, HS = c->head_dim, T = a->T;
    size_t N = (size_t)a->N, P = (size_t)L + 1, rows = (size_t)nb * T;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t p = 0; p < P; p++)
        for (size_t q = p + 1; q < P; q++) {
            const float* hq = after_norm && q == (size_t)L ? a->xnf : a->res + q * N * C;
            for (size_t r = 0; r < rows; r++)
                cos_t[(r * P + p) * P + q] = cosine(a->res + (p * N + r) * C, hq + r * C, C);
        }
    for (int b = 0; b < nb; b++) {
#pragma omp parallel for
        for (int l = 0; l < L; l++) {
            const float* h = a->h + ((size_t)l * N + (size_t)b * T) * F;
            for (int i = 0; i < F; i++) {
                double s = 0;
                for (int t = 0; t < T; t++) s += fabs(h[(size_t)t * F + i]);
                mlp_t[((size_t)b * L + l) * F + i] = s / T;
            }
            const float* att = a->att + ((size_t)l * N + (size_t)b * T) * NH * HS;
            for (int hd = 0; hd < NH; hd++) {
                double s = 0;
                for (int t = 0; t < T; t++) {
                    const float* v = att + ((size_t)t * NH + hd) * HS;
                    double n2 = 0;
                    for (int i = 0; i < HS; i++) n2 += (double)v[i] * v[i];
                    s += sqrt(n2);
                }
                heads_t[((size_t)b * L + l) * NH + hd] = s / T;
            }
        }
        // hidden channels: every norm site (input and post-attention norms of each layer, final norm)
#pragma omp parallel for
        for (int ch = 0; ch < C; ch++) {
            double site_sum = 0;
            for (int site = 0; site <= 2 * L; site++) {
                const float* x = site == 2 * L ? a->xnf : (site % 2 ? a->xn2 : a->xn1) + (size_t)(site / 2) * N * C;
                double s = 0;
                for (int t = 0; t < T; t++) s += fabs(x[((size_t)b * T + t) * C + ch]);
                site_sum += s / T;
            }
            ch_t[(size_t)b * C + ch] = site_sum;
        }
    }
}

void importance_mlp_order(const Importance* imp, int l, int* order) {
    int F = imp->ffn;
    const double* s = imp->mlp + (size_t)l * F;
    for (int i = 0; i < F; i++) order[i] = i;
    for (int i = 1; i < F; i++) {  // insertion sort, stable: ties keep the lower index first
        int x = order[i], j = i - 1;
        while (j >= 0 && s[order[j]] < s[x]) order[j + 1] = order[j], j--;
        order[j + 1] = x;
    }
}

int importance_compute(const Model* m, const Shard* calib, const CalibOptions* o, Importance* imp, Err* e) {
    const ModelConfig* c = &m->cfg;
    int L = c->n_layers, C = c->hidden, F = c->ffn, NH = c->n_heads, NKV = c->n_kv_heads;
    int T = o->seq_len, B = o->batch > 0 ? o->batch : 1;
    memset(imp, 0, sizeof *imp);
    if (config_require_uniform(c, "calibrating importance scores", e)) return -1;
    if (calib->vocab_size > c->vocab)
        return err_set(e, "%s: the shard's vocabulary (%d) exceeds the model's (%d)", calib->path, calib->vocab_size, c->vocab);
    if (T < 1 || T > c->max_positions) return err_set(e, "calibration seq_len %d must be in [1, %d]", T, c->max_positions);
    if (o->gpu && (o->bi_after_norm || o->ablation_windows > 0))
        return err_set(e, "layer ablation and Block Influence after the final norm run on the CPU calibration path only "
                          "(calibrate with device cpu)");
    long long available = (long long)(calib->n_tokens / (uint64_t)T);
    if (available < 1) return err_set(e, "%s: empty calibration data (%llu tokens, seq_len %d)", calib->path,
                                      (unsigned long long)calib->n_tokens, T);
    if (o->ablation_windows > 0 && ablation_init(&imp->ablation, L, o->ablation_sizes, o->n_ablation_sizes, e)) return -1;
    int windows = o->windows > 0 && o->windows < available ? o->windows : (int)available;
    if (B > windows) B = windows;
    imp->n_layers = L, imp->ffn = F, imp->n_heads = NH, imp->n_kv_heads = NKV, imp->hidden = C, imp->agg = o->agg;
    imp->bi_after_norm = o->bi_after_norm;
    double* bi_sum = xcalloc((size_t)L, sizeof(double));
    double* ang_sum = xcalloc((size_t)(L + 1) * (L + 1), sizeof(double));
    Acc mlp = acc_new((size_t)L * F), heads = acc_new((size_t)L * NH), channels = acc_new((size_t)C);
    size_t P = (size_t)L + 1, N = (size_t)B * T;
    // one batch's tables, from either backend: cos (rows, P, P) for p < q, mlp (nb, L, F),
    // heads (nb, L, NH), channels (nb, C)
    double* cos_t = xmalloc(sizeof(double) * N * P * P);
    double* mlp_t = xmalloc(sizeof(double) * (size_t)B * L * F);
    double* heads_t = xmalloc(sizeof(double) * (size_t)B * L * NH);
    double* ch_t = xmalloc(sizeof(double) * (size_t)B * C);
    TrainActs a = {0};
    CalibGpu* gpu = NULL;
    int rc = 0;
    if (o->gpu)
        rc = calib_gpu_open(&gpu, m, B, T, e);
    else
        train_acts_create(&a, c, B, T, 0);
    int* tokens = xmalloc(sizeof(int) * N);
    Progress prog;
    progress_begin(&prog, "calibrate", "tokens", 1.0, (double)windows * T, 1);
    for (int w0 = 0; w0 < windows && !rc; w0 += B) {
        int nb = windows - w0 < B ? windows - w0 : B;
        for (int b = 0; b < B; b++)  // a short last batch repeats its first window; only nb count
            for (int t = 0; t < T; t++) tokens[b * T + t] = shard_token(calib, (uint64_t)(w0 + (b < nb ? b : 0)) * T + t);
        if (gpu) {
            if ((rc = calib_gpu_batch(gpu, tokens, nb, cos_t, mlp_t, heads_t, ch_t, e))) break;
        } else {
            if ((rc = train_forward(m, &a, tokens, e))) break;
            batch_tables(&a, c, nb, o->bi_after_norm, cos_t, mlp_t, heads_t, ch_t);
            long long left = o->ablation_windows - imp->ablation.sequences;  // after the tables: it reuses a
            if (left > 0) ablation_batch(m, &a, (int)(left < nb ? left : nb) * T, &imp->ablation);
        }
        size_t rows = (size_t)nb * T;
        // depth: Block Influence of each layer and the angular distance of every pair of boundaries
#pragma omp parallel for schedule(dynamic, 1)
        for (size_t p = 0; p < P; p++) {
            for (size_t q = p + 1; q < P; q++) {
                double sum = 0;
                for (size_t r = 0; r < rows; r++) {
                    double cs = cos_t[(r * P + p) * P + q];
                    sum += acos(cs > 1 ? 1 : cs < -1 ? -1 : cs) / M_PI;
                    if (q == p + 1) bi_sum[p] += 1.0 - cs;
                }
                ang_sum[p * P + q] += sum;
            }
        }
        // width: each sequence's value is one sample of the aggregation
        for (int b = 0; b < nb; b++) {
            for (size_t i = 0; i < (size_t)L * F; i++) acc_add(&mlp, i, mlp_t[(size_t)b * L * F + i]);
            for (size_t i = 0; i < (size_t)L * NH; i++) acc_add(&heads, i, heads_t[(size_t)b * L * NH + i]);
            for (int ch = 0; ch < C; ch++) acc_add(&channels, (size_t)ch, ch_t[(size_t)b * C + ch]);
        }
        imp->tokens += (long long)rows;
        imp->sequences += nb;
        progress_update(&prog, (double)imp->tokens);
    }
    free(cos_t), free(mlp_t), free(heads_t), free(ch_t);
    if (gpu)
        calib_gpu_close(gpu);
    else
        train_acts_free(&a);
    if (!rc) progress_end(&prog);
    imp->bi = bi_sum;
    imp->angular = ang_sum;
    for (int l = 0; l < L; l++) imp->bi[l] /= (double)imp->tokens;
    for (size_t i = 0; i < (size_t)(L + 1) * (L + 1); i++) imp->angular[i] /= (double)imp->tokens;
    imp->mlp = xmalloc(sizeof(double) * (size_t)L * F);
    imp->heads = xmalloc(sizeof(double) * (size_t)L * NH);
    imp->kv = xcalloc((size_t)L * NKV, sizeof(double));
    imp->channels = xmalloc(sizeof(double) * (size_t)C);
    acc_finish(&mlp, (size_t)L * F, imp->sequences, o->agg, imp->mlp);
    acc_finish(&heads, (size_t)L * NH, imp->sequences, o->agg, imp->heads);
    acc_finish(&channels, (size_t)C, imp->sequences, o->agg, imp->channels);
    for (int l = 0; l < L; l++)
        for (int hd = 0; hd < NH; hd++) imp->kv[(size_t)l * NKV + hd / (NH / NKV)] += imp->heads[(size_t)l * NH + hd];
    free(tokens);
    if (imp->ablation.n_sizes) ablation_finish(&imp->ablation);
    if (rc) importance_free(imp);
    return rc;
}

void importance_free(Importance* imp) {
    free(imp->bi);
    free(imp->angular);
    free(imp->mlp);
    free(imp->heads);
    free(imp->kv);
    free(imp->channels);
    ablation_free(&imp->ablation);
    memset(imp, 0, sizeof *imp);
}

// ---------------------------------------------------------------------------------------------
// scores file

static cJSON* array_of(const double* v, int n) {
    cJSON* a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON* matrix_of(const double* v, int rows, int cols) {
    cJSON* a = cJSON_CreateArray();
    for (int r = 0; r < rows; r++) cJSON_AddItemToArray(a, array_of(v + (size_t)r * cols, cols));
    return a;
}


static cJSON* shape_of(const ModelConfig* c) {
    cJSON* s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "architecture", arch_hf_class(c->arch));
    cJSON_AddNumberToObject(s, "layers", c->n_layers);
    cJSON_AddNumberToObject(s, "hidden", c->hidden);
    cJSON_AddNumberToObject(s, "ffn", c->ffn);
    cJSON_AddNumberToObject(s, "heads", c->n_heads);
    cJSON_AddNumberToObject(s, "kv_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(s, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(s, "vocab", c->vocab);
    return s;
}

static cJSON* ablation_json(const Ablation* ab) {
    cJSON* o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "definition", "NMSE = sum (ablated - full)^2 / sum full^2 over calibration tokens; "
                                             "hidden: final norm output; blocks by start layer");
    cJSON_AddNumberToObject(o, "sequences", (double)ab->sequences);
    cJSON_AddNumberToObject(o, "tokens", (double)ab->tokens);
    cJSON* blocks = cJSON_AddArrayToObject(o, "blocks");
    for (int k = 0; k < ab->n_sizes; k++) {
        cJSON* b = cJSON_CreateObject();
        cJSON_AddNumberToObject(b, "size", ab->sizes[k]);
        cJSON_AddItemToObject(b, "hidden_nmse", array_of(ab->hidden + ablation_offset(ab, k), ablation_count(ab, k)));
        cJSON_AddItemToObject(b, "logits_nmse", array_of(ab->logits + ablation_offset(ab, k), ablation_count(ab, k)));
        cJSON_AddItemToArray(blocks, b);
    }
    return o;
}

int importance_save(const Importance* imp, const ModelConfig* cfg, const char* path, Err* e) {
    cJSON* root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "arbor_scores", 1);
    cJSON_AddItemToObject(root, "model", shape_of(cfg));
    cJSON* cal = cJSON_AddObjectToObject(root, "calibration");
    cJSON_AddNumberToObject(cal, "tokens", (double)imp->tokens);
    cJSON_AddNumberToObject(cal, "sequences", (double)imp->sequences);
    cJSON_AddStringToObject(cal, "aggregation", aggregation_name(imp->agg));
    int L = imp->n_layers;
    cJSON_AddItemToObject(root, "block_influence", array_of(imp->bi, L));
    cJSON_AddStringToObject(root, "block_influence_last", imp->bi_after_norm ? "after_final_norm" : "before_final_norm");
    if (imp->ablation.n_sizes) cJSON_AddItemToObject(root, "layer_ablation", ablation_json(&imp->ablation));
    cJSON_AddItemToObject(root, "angular_distance", matrix_of(imp->angular, L + 1, L + 1));
    cJSON_AddItemToObject(root, "mlp", matrix_of(imp->mlp, L, imp->ffn));
    cJSON_AddItemToObject(root, "heads", matrix_of(imp->heads, L, imp->n_heads));
    cJSON_AddItemToObject(root, "kv_groups", matrix_of(imp->kv, L, imp->n_kv_heads));
    cJSON_AddItemToObject(root, "hidden", array_of(imp->channels, imp->hidden));
    char* text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    int rc = file_write_atomic(path, text, strlen(text), e);
    cJSON_free(text);
    return rc;
}

static int read_array(const cJSON* a, double* out, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return -1;
    for (int i = 0; i < n; i++) {
        const cJSON* v = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(v)) return -1;
        out[i] = v->valuedouble;
    }
    return 0;
}

static int read_matrix(const cJSON* a, double* out, int rows, int cols) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != rows) return -1;
    for (int r = 0; r < rows; r++)
        if (read_array(cJSON_GetArrayItem(a, r), out + (size_t)r * cols, cols)) return -1;
    return 0;
}

// A count in a scores file: a whole number in [0, 2^53], else -1 (never cast out of range).
static int read_count(const cJSON* v, long long* out) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 9007199254740992.0) ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (long long)v->valuedouble;
    return 0;
}

// block_influence_last (absent in older files: before the final norm) and layer_ablation, if present.
static int read_depth_options(const cJSON* root, Importance* imp) {
    const cJSON* last = cJSON_GetObjectItem(root, "block_influence_last");
    if (last && !(cJSON_IsString(last) && (!strcmp(last->valuestring, "after_final_norm") || !strcmp(last->valuestring, "before_final_norm"))))
        return -1;
    imp->bi_after_norm = last && !strcmp(last->valuestring, "after_final_norm");
    const cJSON* abl = cJSON_GetObjectItem(root, "layer_ablation");
    if (!abl) return 0;
    const cJSON* blocks = cJSON_GetObjectItem(abl, "blocks");
    const cJSON *seq = cJSON_GetObjectItem(abl, "sequences"), *tok = cJSON_GetObjectItem(abl, "tokens");
    int n = cJSON_GetArraySize(blocks), sizes[ABLATION_MAX_SIZES];
    long long n_seq, n_tok;
    if (!cJSON_IsArray(blocks) || n < 1 || n > ABLATION_MAX_SIZES || read_count(seq, &n_seq) || read_count(tok, &n_tok)) return -1;
    for (int k = 0; k < n; k++) {
        const cJSON* size = cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, k), "size");
        if (!cJSON_IsNumber(size) || size->valueint != size->valuedouble || (k == 0) != (size->valueint == 1)) return -1;
        sizes[k] = size->valueint;
    }
    Err e;
    if (ablation_init(&imp->ablation, imp->n_layers, sizes + 1, n - 1, &e) || imp->ablation.n_sizes != n) return -1;
    imp->ablation.sequences = n_seq, imp->ablation.tokens = n_tok;
    for (int k = 0; k < n; k++) {
        const cJSON* b = cJSON_GetArrayItem(blocks, k);
        size_t off = ablation_offset(&imp->ablation, k);
        int count = ablation_count(&imp->ablation, k);
        if (read_array(cJSON_GetObjectItem(b, "hidden_nmse"), imp->ablation.hidden + off, count) ||
            read_array(cJSON_GetObjectItem(b, "logits_nmse"), imp->ablation.logits + off, count))
            return -1;
    }
    return 0;
}

int importance_load(Importance* imp, const ModelConfig* c, const char* path, Err* e) {
    memset(imp, 0, sizeof *imp);
    char* text = file_read_all(path, NULL, e);
    if (!text) return -1;
    cJSON* root = cJSON_Parse(text);
    free(text);
    if (!root || !cJSON_GetObjectItem(root, "arbor_scores")) {
        cJSON_Delete(root);
        return err_set(e, "%s: not an arbor scores file", path);
    }
    cJSON* want = shape_of(c);
    int same = cJSON_Compare(cJSON_GetObjectItem(root, "model"), want, 1);
    cJSON_Delete(want);
    if (!same) {
        cJSON_Delete(root);
        return err_set(e, "%s: scores of another model (its shape differs from this checkpoint's)", path);
    }
    int L = c->n_layers;
    imp->n_layers = L, imp->ffn = c->ffn, imp->n_heads = c->n_heads, imp->n_kv_heads = c->n_kv_heads, imp->hidden = c->hidden;
    imp->bi = xmalloc(sizeof(double) * (size_t)L);
    imp->angular = xmalloc(sizeof(double) * (size_t)(L + 1) * (L + 1));
    imp->mlp = xmalloc(sizeof(double) * (size_t)L * c->ffn);
    imp->heads = xmalloc(sizeof(double) * (size_t)L * c->n_heads);
    imp->kv = xmalloc(sizeof(double) * (size_t)L * c->n_kv_heads);
    imp->channels = xmalloc(sizeof(double) * (size_t)c->hidden);
    const cJSON* cal = cJSON_GetObjectItem(root, "calibration");
    const cJSON* cal_tokens = cJSON_GetObjectItem(cal, "tokens");  // absent: 0
    int rc = (cal_tokens && read_count(cal_tokens, &imp->tokens)) || read_array(cJSON_GetObjectItem(root, "block_influence"), imp->bi, L) ||
             read_matrix(cJSON_GetObjectItem(root, "angular_distance"), imp->angular, L + 1, L + 1) ||
             read_matrix(cJSON_GetObjectItem(root, "mlp"), imp->mlp, L, c->ffn) ||
             read_matrix(cJSON_GetObjectItem(root, "heads"), imp->heads, L, c->n_heads) ||
             read_matrix(cJSON_GetObjectItem(root, "kv_groups"), imp->kv, L, c->n_kv_heads) ||
             read_array(cJSON_GetObjectItem(root, "hidden"), imp->channels, c->hidden) ||
             read_depth_options(root, imp);
    cJSON_Delete(root);
    if (rc) {
        importance_free(imp);
        return err_set(e, "%s: malformed scores (a table is missing or has the wrong size)", path);
    }
    return 0;
}

int importance_write_table(const Importance* imp, const char* path, Err* e) {
    ByteVec t = {0};
    char line[256];
    int L = imp->n_layers, abl = imp->ablation.n_sizes > 0;
    int n = snprintf(line, sizeof line, "layer  block_influence%s  angular(l,l+1)  mlp_score_mean  head_score_mean%s\n",
                     imp->bi_after_norm ? "(last: after final norm)" : "", abl ? "  ablation_hidden_nmse  ablation_logits_nmse" : "");
    bytevec_append(&t, line, (size_t)n);
    for (int l = 0; l < L; l++) {
        double mm = 0, hm = 0;
        for (int i = 0; i < imp->ffn; i++) mm += imp->mlp[(size_t)l * imp->ffn + i];
        for (int h = 0; h < imp->n_heads; h++) hm += imp->heads[(size_t)l * imp->n_heads + h];
        n = snprintf(line, sizeof line, "%5d  %15.6f  %14.6f  %14.6f  %15.6f", l, imp->bi[l],
                     imp->angular[(size_t)l * (L + 1) + l + 1], mm / imp->ffn, hm / imp->n_heads);
        if (abl) n += snprintf(line + n, sizeof line - (size_t)n, "  %20.6g  %20.6g", imp->ablation.hidden[l], imp->ablation.logits[l]);
        line[n++] = '\n';
        bytevec_append(&t, line, (size_t)n);
    }
    int rc = file_write_atomic(path, t.data, t.len, e);
    free(t.data);
    return rc;
}
