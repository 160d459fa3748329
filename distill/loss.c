// loss.c: see loss.h.
#include "loss.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/clock.h"
#include "../kernels/cpu/fast_exp.h"
#include "../kernels/cpu/ops_cpu.h"
#ifdef _OPENMP
#include <omp.h>
#endif

// Rows of logits per pass through the lm_head. Each pass reads the lm_head twice and reads and writes
// its gradient (V x C each) once, so fewer, larger passes move less memory: on the 21.7M-parameter
// bench (V 32000, 2048 rows) 64 rows ran 1,386-1,405 training tokens/s, 128 1,534-1,551, 256
// 1,640-1,651, 512 1,670-1,681. Capped at 64M floats of logits (256 MB; one more with a teacher).
#define LOSS_CHUNK_ROWS 256
#define LOSS_CHUNK_FLOATS ((size_t)64 << 20)

// The exponentials of a softmax of x / T, unnormalised, into e (fp32, the vectorised exp of
// kernels/cpu/fast_exp.h), with *inv = 1 / their sum (summed in double): p_i = e_i x *inv. Returns the
// log of the normaliser of x / T.
static double softmax_t(const float* x, int n, float T, float* e, float* inv) {
    float maxv = x[0], invT = 1.0f / T;
#pragma omp simd reduction(max : maxv)
    for (int i = 1; i < n; i++) maxv = x[i] > maxv ? x[i] : maxv;
#pragma omp simd
    for (int i = 0; i < n; i++) e[i] = exp_fast((x[i] - maxv) * invT);
    double sum = 0;  // a loop of its own: beside the exps, the double sum kept GCC 12 from vectorising them
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; i++) sum += e[i];
    *inv = (float)(1.0 / sum);
    return (double)maxv * invT + log(sum);
}

// idx[0..K) := the indices of the K largest z, in no particular order,
// through a min-heap of size K
static void top_k(const float* z, int V, int K, int* idx) {
    int n = 0;
    for (int i = 0; i < V; i++) {
        if (n == K && !(z[i] > z[idx[0]])) continue;
        int at;
        if (n < K) {
            at = n++;
            while (at > 0 && z[i] < z[idx[(at - 1) / 2]]) idx[at] = idx[(at - 1) / 2], at = (at - 1) / 2;
            idx[at] = i;
            continue;
        }
        at = 0;  // replace the smallest and sift down
        for (;;) {
            int l = 2 * at + 1, r = l + 1, m = at;
            float v = m == at ? z[i] : z[idx[m]];
            if (l < K && z[idx[l]] < v) m = l, v = z[idx[l]];
            if (r < K && z[idx[r]] < v) m = r;
            if (m == at) break;
            idx[at] = idx[m];
            at = m;
        }
        idx[at] = i;
    }
}

// One row: loss terms, and z (V) overwritten by scale x d(row loss)/dz. fp32 terms, every sum over the
// vocabulary in double; the softmaxes stay unnormalised (their 1 / sum beside them) and z is written in
// one last pass. The KL's log-ratio is (zt - z) / T - (lt - lz): the logits' difference first and the
// log-normalisers' in double, so a KL far below the normalisers keeps its digits. work: 3 V floats and
// 4096 more.
static void row_loss(const LossConfig* cfg, float* z, const float* zt, int V, int target, float scale, double* ce, double* kd,
                     float* work, int* idx) {
    float T = cfg->temperature > 0 ? cfg->temperature : 1.0f, invT = 1.0f / T, t2 = cfg->t2_scaling ? T * T : 1.0f;
    float *e1 = work, *ez = e1 + V, *et = ez + V;  // exp of z, of z / T, of zt / T
    float inv1 = 0, invz = 0, invt = 0, wce = cfg->ce_weight, b = scale * cfg->kd_weight * t2 * invT;
    int kl = cfg->kd == KD_KL || cfg->kd == KD_RKL;
    double lse = 0, lz = 0, lt = 0, sum = 0;
    *ce = *kd = 0;
    if (wce != 0.0f) {
        lse = softmax_t(z, V, 1.0f, e1, &inv1);
        *ce = lse - z[target];
    }
    if (kl && wce != 0.0f && T == 1.0f) {
        ez = e1, invz = inv1, lz = lse;  // the same softmax
    } else if (kl) {
        lz = softmax_t(z, V, T, ez, &invz);
    }
    if (kl) lt = softmax_t(zt, V, T, et, &invt);
    if (wce == 0.0f) e1 = et;  // read with weight 0: any finite values
    float a = scale * wce * inv1, dl = (float)(lt - lz);
    if (cfg->kd == KD_KL) {
#pragma omp simd reduction(+ : sum)
        for (int i = 0; i < V; i++) {
            float q = et[i] * invt;
            sum += q * ((zt[i] - z[i]) * invT - dl);
            z[i] = a * e1[i] + b * (ez[i] * invz - q);
        }
    } else if (cfg->kd == KD_RKL) {
#pragma omp simd reduction(+ : sum)
        for (int i = 0; i < V; i++) sum += ez[i] * invz * (dl - (zt[i] - z[i]) * invT);
        float klf = (float)sum;
#pragma omp simd
        for (int i = 0; i < V; i++) {
            float p = ez[i] * invz;
            z[i] = a * e1[i] + b * p * (dl - (zt[i] - z[i]) * invT - klf);
        }
    } else {
        int K = cfg->kd == KD_TOPK ? (cfg->topk < V ? cfg->topk : V) : 0;
        float* zs = (float*)(idx + V);  // the caller gives idx room for V ints and 2 x 4096 floats
        float* zk = zs + 4096;
        if (K) {  // the KL over the teacher's top K, both renormalised there
            top_k(zt, V, K, idx);
            for (int j = 0; j < K; j++) zs[j] = z[idx[j]], zk[j] = zt[idx[j]];
            lz = softmax_t(zs, K, T, ez, &invz), lt = softmax_t(zk, K, T, et, &invt), dl = (float)(lt - lz);
            for (int j = 0; j < K; j++) sum += et[j] * invt * ((zk[j] - zs[j]) * invT - dl);
        }
        if (wce == 0.0f) {
            memset(z, 0, sizeof(float) * (size_t)V);
        } else {
#pragma omp simd
            for (int i = 0; i < V; i++) z[i] = a * e1[i];
        }
        for (int j = 0; j < K; j++) z[idx[j]] += b * (ez[j] * invz - et[j] * invt);
    }
    if (wce != 0.0f) z[target] -= scale * wce;
    *kd = t2 * sum;
}

int lm_head_loss(const LossConfig* cfg, const float* xnf, const float* lm_head, int N, int C, int V,
                 const int* targets, const float* t_xnf, const float* t_lm_head, int Ct, float grad_scale,
                 float* d_xnf, float* d_lm_head, LossValues* out, Err* e) {
    if (cfg->kd != KD_NONE && (!t_xnf || !t_lm_head)) return err_set(e, "a KD loss needs the teacher's outputs");
    if (cfg->kd == KD_TOPK && (cfg->topk < 1 || cfg->topk > 4096)) return err_set(e, "top-k KD needs k in [1, 4096]");
    if (cfg->ce_weight != 0.0f && !targets) return err_set(e, "cross-entropy needs targets");
    size_t fit = LOSS_CHUNK_FLOATS / (size_t)V;
    int chunk = fit < LOSS_CHUNK_ROWS ? (fit > 0 ? (int)fit : 1) : LOSS_CHUNK_ROWS;
    float* logits = xmalloc(sizeof(float) * (size_t)chunk * V);
    float* t_logits = cfg->kd != KD_NONE ? xmalloc(sizeof(float) * (size_t)chunk * V) : NULL;
    double* row_ce = xcalloc((size_t)N * 2, sizeof(double));
    double* row_kd = row_ce + N;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    size_t work_stride = 3 * (size_t)V + 4096;
    float* work = xmalloc(sizeof(float) * (size_t)threads * work_stride);
    size_t idx_stride = (size_t)V + 2 * 4096;
    int* idx = xmalloc(sizeof(int) * (size_t)threads * idx_stride);
    float inv_n = grad_scale / (float)N;
    double mm_seconds = 0, mm_flops = 0;
    for (int r0 = 0; r0 < N; r0 += chunk) {
        int R = N - r0 < chunk ? N - r0 : chunk;
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, V, C, 1.0f, xnf + (size_t)r0 * C, C, lm_head, C, 0.0f, logits, V);
        if (t_logits)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, V, Ct, 1.0f, t_xnf + (size_t)r0 * Ct, Ct, t_lm_head, Ct, 0.0f,
                        t_logits, V);
        mm_seconds += now_seconds() - t0;
        mm_flops += 2.0 * R * V * C + (t_logits ? 2.0 * R * V * Ct : 0.0);
#pragma omp parallel for schedule(static)
        for (int r = 0; r < R; r++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            row_loss(cfg, logits + (size_t)r * V, t_logits ? t_logits + (size_t)r * V : NULL, V, targets ? targets[r0 + r] : 0,
                     inv_n, &row_ce[r0 + r], &row_kd[r0 + r], work + (size_t)tid * work_stride,
                     idx + (size_t)tid * idx_stride);  // inv_n: the mean over rows
        }
        // d_xnf (R,C) = dlogits (R,V) @ lm_head (V,C);  d_lm_head (V,C) += dlogits^T @ xnf
        if (d_lm_head) {
            t0 = now_seconds();
            matmul_backward_cpu(d_xnf + (size_t)r0 * C, d_lm_head, NULL, logits, xnf + (size_t)r0 * C, lm_head, R, C, V);
            mm_seconds += now_seconds() - t0;
            mm_flops += 4.0 * R * V * C;
        }
    }
    double ce = 0, kd = 0;
    for (int n = 0; n < N; n++) ce += row_ce[n], kd += row_kd[n];  // in row order: deterministic
    out->ce = ce / N;
    out->kd = kd / N;
    out->total = cfg->ce_weight * out->ce + cfg->kd_weight * out->kd;
    out->matmul_seconds = mm_seconds;
    out->matmul_flops = mm_flops;
    free(logits);
    free(t_logits);
    free(row_ce);
    free(work);
    free(idx);
    if (!isfinite(out->total)) return err_set(e, "the loss is not finite (%g)", out->total);
    return 0;
}

static int topk_of(const char* s) {  // "64" -> 64; anything but a whole number in 1..4096 -> 0
    char* end;
    long k = strtol(s, &end, 10);
    return end != s && !*end && k >= 1 && k <= 4096 ? (int)k : 0;
}

// --loss: kl | rkl | topk:K | ce | mix:W_CE,KIND  (KIND kl, rkl or topk:K; the KD weight is 1)
int loss_parse(const char* s, int have_teacher, LossConfig* l, Err* e) {
    memset(l, 0, sizeof *l);
    l->kd_weight = 1.0f;
    const char* kind = s;
    if (strncmp(s, "mix:", 4) == 0) {
        char* end;
        l->ce_weight = strtof(s + 4, &end);
        if (end == s + 4 || *end != ',' || !(l->ce_weight >= 0 && l->ce_weight <= 1e6))
            return err_set(e, "loss '%s': expected mix:W_CE,KIND with 0 <= W_CE <= 1e6", s);
        kind = end + 1;
    }
    if (strcmp(kind, "ce") == 0 && kind == s) {
        l->ce_weight = 1.0f;
        l->kd_weight = 0.0f;
        l->kd = KD_NONE;
    } else if (strcmp(kind, "kl") == 0) {
        l->kd = KD_KL;
    } else if (strcmp(kind, "rkl") == 0) {
        l->kd = KD_RKL;
    } else if (strncmp(kind, "topk:", 5) == 0 && topk_of(kind + 5) > 0) {
        l->kd = KD_TOPK;
        l->topk = topk_of(kind + 5);
    } else {
        return err_set(e, "loss '%s': expected kl, rkl, topk:K (1..4096), ce or mix:W_CE,KIND", s);
    }
    if (l->kd != KD_NONE && !have_teacher) return err_set(e, "loss '%s' needs a teacher", s);
    return 0;
}

int kd_scale_parse(const char* s, LossConfig* l, Err* e) {
    l->kd_auto_scale = 0;
    if (!strcmp(s, "none")) return 0;
    float scale = 1.0f;
    if (strncmp(s, "auto", 4) || (s[4] && s[4] != ':')) return err_set(e, "--kd-scale '%s': expected none, auto or auto:S", s);
    if (s[4] == ':') {
        char* end;
        scale = strtof(s + 5, &end);
        if (end == s + 5 || *end || !(scale > 0 && scale <= 1e6)) return err_set(e, "--kd-scale '%s': S must be in (0, 1e6]", s);
    }
    if (l->kd == KD_NONE || l->ce_weight <= 0)
        return err_set(e, "--kd-scale '%s': it balances the KD term against the LM loss, and this loss has %s (use mix:W_CE,KIND)", s,
                       l->kd == KD_NONE ? "no KD term" : "no LM term");
    l->kd_auto_scale = scale;
    return 0;
}
