// engine.c: see engine.h.
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#ifdef ARBOR_HAVE_CUDA
#include "cuda_model.h"

typedef struct {
    CudaKVCache cache;
    CudaRunState rs;
} CudaRun;
#endif

int device_parse(const char* name, Device* d, Err* e) {
    if (strcmp(name, "cpu") == 0) return *d = DEVICE_CPU, 0;
    if (strcmp(name, "cuda") == 0) return *d = DEVICE_CUDA, 0;
    return err_set(e, "device '%s' is neither cpu nor cuda", name);
}

const char* device_name(Device d) { return d == DEVICE_CUDA ? "cuda" : "cpu"; }

const char* device_weights_name(Device d, WeightType t) { return d == DEVICE_CUDA ? "bf16" : weight_type_name(t); }

int device_available(Device d, Err* e) {
    if (d == DEVICE_CPU) return 0;
#ifndef ARBOR_HAVE_CUDA
    return err_set(e, "--device cuda: this arbor was built without CUDA (configure with -DARBOR_CUDA=ON)");
#else
    char why[256] = "";
    if (cuda_device_count(why, sizeof why) == 0) return err_set(e, "--device cuda: no CUDA device: %s", why);
    return 0;
#endif
}

int engine_open(Engine* en, const Model* m, Device d, Err* e) {
    memset(en, 0, sizeof *en);
    en->m = m;
    en->device = d;
    if (d == DEVICE_CPU) return 0;
    if (model_require_f32(m, "--device cuda (it uploads its own bf16 copy)", e) ||
        config_require_uniform(&m->cfg, "--device cuda", e) || device_available(d, e))
        return -1;
#ifdef ARBOR_HAVE_CUDA
    CudaModel* g = xmalloc(sizeof(CudaModel));
    cuda_model_create(g, cuda_context_create(0), &m->cfg);
    cuda_model_upload(g, m);
    en->gpu = g;
#endif
    return 0;
}

void engine_close(Engine* en) {
#ifdef ARBOR_HAVE_CUDA
    if (en->gpu) {
        CudaModel* g = en->gpu;
        CudaContext* ctx = g->ctx;
        cuda_model_free(g);
        cuda_context_free(ctx);
        free(g);
    }
#endif
    memset(en, 0, sizeof *en);
}

const char* engine_device_name(const Engine* en) {
#ifdef ARBOR_HAVE_CUDA
    if (en->gpu) return cuda_device_name(((const CudaModel*)en->gpu)->ctx);
#endif
    (void)en;
    return NULL;
}

void engine_run_create(EngineRun* r, const Engine* en, int max_seqs, int max_len, int max_rows, int max_out) {
    memset(r, 0, sizeof *r);
    r->en = en;
    r->max_len = max_len;
#ifdef ARBOR_HAVE_CUDA
    if (en->device == DEVICE_CUDA) {
        CudaRun* c = xmalloc(sizeof(CudaRun));
        const CudaModel* g = en->gpu;
        cuda_kvcache_create(&c->cache, &g->cfg, max_seqs, max_len);
        cuda_runstate_create(&c->rs, &g->cfg, max_rows, max_out);
        r->gpu = c;
        return;
    }
#endif
    (void)max_out;
    kvcache_create(&r->cache, &en->m->cfg, max_seqs, max_len);
    runstate_create(&r->rs, &en->m->cfg, max_rows, max_len);
}

void engine_run_free(EngineRun* r) {
#ifdef ARBOR_HAVE_CUDA
    if (r->gpu) {
        CudaRun* c = r->gpu;
        cuda_kvcache_free(&c->cache);
        cuda_runstate_free(&c->rs);
        free(c);
        memset(r, 0, sizeof *r);
        return;
    }
#endif
    kvcache_free(&r->cache);
    runstate_free(&r->rs);
    memset(r, 0, sizeof *r);
}

void engine_run_set_prefix(EngineRun* r, int prefix_seq, int prefix_len) {
#ifdef ARBOR_HAVE_CUDA
    if (r->gpu) {
        CudaRun* c = r->gpu;
        c->cache.prefix_seq = prefix_seq;
        c->cache.prefix_len = prefix_len;
        return;
    }
#endif
    r->cache.prefix_seq = prefix_seq;
    r->cache.prefix_len = prefix_len;
}

int engine_run_forward(EngineRun* r, const int* tokens, const int* seq, const int* pos, int N, const int* out_rows,
                       int n_out, float* logits, Err* e) {
#ifdef ARBOR_HAVE_CUDA
    if (r->gpu) {
        CudaRun* c = r->gpu;
        return cuda_model_forward(r->en->gpu, &c->rs, &c->cache, tokens, seq, pos, N, out_rows, n_out, logits, e);
    }
#endif
    return model_forward(r->en->m, &r->rs, &r->cache, tokens, seq, pos, N, out_rows, n_out, logits, e);
}
