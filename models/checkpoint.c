// checkpoint.c: Hugging Face checkpoint directories in and out. Reading: config.json, then
// model.safetensors or the shards named by model.safetensors.index.json, every tensor checked against
// the shape config.json implies and converted to fp32. Writing: config.json, safetensors (F32 or
// BF16), sharded with an index past max_shard_bytes, each file written atomically.
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file_io.h"
#include "model.h"
#include "progress.h"

typedef struct {
    StFile* files;
    int n_files;
} ShardSet;

static void shards_close(ShardSet* s) {
    for (int i = 0; i < s->n_files; i++) st_close(&s->files[i]);
    free(s->files);
    memset(s, 0, sizeof *s);
}

static int shards_open_index(ShardSet* s, const char* dir, const char* index_path, Err* e) {
    char* text = file_read_all(index_path, NULL, e);
    if (!text) return -1;
    cJSON* root = cJSON_Parse(text);
    free(text);
    const cJSON* map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return err_set(e, "%s: malformed index: no 'weight_map' object", index_path);
    }
    int cap = cJSON_GetArraySize(map), rc = 0;
    s->files = xcalloc((size_t)(cap ? cap : 1), sizeof(StFile));
    char** names = xcalloc((size_t)(cap ? cap : 1), sizeof(char*));
    const cJSON* it;
    cJSON_ArrayForEach(it, map) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/')) {
            rc = err_set(e, "%s: weight_map entry '%s' is not a file name in the same directory", index_path,
                         it->string);
            break;
        }
        int seen = 0;
        for (int i = 0; i < s->n_files && !seen; i++) seen = strcmp(names[i], it->valuestring) == 0;
        if (seen) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, it->valuestring);
        if ((rc = st_open(&s->files[s->n_files], path, e))) break;
        names[s->n_files++] = it->valuestring;
    }
    free(names);
    cJSON_Delete(root);
    return rc;
}

static int shards_open(ShardSet* s, const char* dir, Err* e) {
    memset(s, 0, sizeof *s);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (access(path, F_OK) == 0) return shards_open_index(s, dir, path, e);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (access(path, F_OK) != 0)
        return err_set(e, "%s: no model.safetensors or model.safetensors.index.json", dir);
    s->files = xcalloc(1, sizeof(StFile));
    if (st_open(&s->files[0], path, e)) return -1;
    s->n_files = 1;
    return 0;
}

static const StTensor* shards_find(const ShardSet* s, const char* name, const StFile** owner) {
    for (int i = 0; i < s->n_files; i++) {
        const StTensor* t = st_find(&s->files[i], name);
        if (t) {
            *owner = &s->files[i];
            return t;
        }
    }
    return NULL;
}

static void shape_str(char* buf, size_t n, const int64_t* shape, int ndim) {
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && len < n; i++) len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < n) snprintf(buf + len, n - len, "]");
}

// Tensors in the files that the config does not account for mean the config and the weights disagree
// (e.g. more layers on disk than num_hidden_layers), except those transformers itself ignores.
static int check_unexpected(const ShardSet* s, const ParamTable* t, const ModelConfig* cfg, Err* e) {
    for (int f = 0; f < s->n_files; f++) {
        for (int i = 0; i < s->files[f].n_tensors; i++) {
            const char* name = s->files[f].tensors[i].name;
            if (strstr(name, "rotary_emb.inv_freq")) continue;
            if (cfg->tie_embeddings && strcmp(name, "lm_head.weight") == 0) continue;
            int known = 0;
            for (int k = 0; k < t->n_params && !known; k++) known = strcmp(t->params[k].name, name) == 0;
            if (!known)
                return err_set(e, "%s: unexpected tensor '%s': config.json describes no such parameter",
                               s->files[f].path, name);
        }
    }
    return 0;
}

// Every tensor the config implies is present with the implied shape in a dtype arbor reads.
static int verify_tensors(const ShardSet* s, const ParamTable* t, const ModelConfig* cfg, const char* dir, Err* e) {
    if (check_unexpected(s, t, cfg, e)) return -1;
    for (int i = 0; i < t->n_params; i++) {
        const ParamInfo* p = &t->params[i];
        const StFile* f = NULL;
        const StTensor* st = shards_find(s, p->name, &f);
        if (!st) return err_set(e, "%s: missing tensor '%s' required by config.json", dir, p->name);
        int same = st->ndim == p->ndim;
        for (int d = 0; d < p->ndim && same; d++) same = st->shape[d] == p->shape[d];
        if (!same) {
            char got[96], want[96];
            shape_str(got, sizeof got, st->shape, st->ndim);
            shape_str(want, sizeof want, p->shape, p->ndim);
            return err_set(e, "%s: tensor '%s' has shape %s but config.json implies %s", f->path, p->name, got, want);
        }
        if (st->dtype == ST_UNSUPPORTED)
            return err_set(e, "%s: tensor '%s' has dtype %s; arbor reads F32, F16 and BF16", f->path, p->name,
                           st->dtype_name);
    }
    return 0;
}

static int open_checked(const char* dir, ModelConfig* cfg, ParamTable* t, ShardSet* s, Err* e) {
    memset(t, 0, sizeof *t);
    memset(s, 0, sizeof *s);
    if (config_load(dir, cfg, e)) return -1;
    param_table_build(cfg, t);
    if (shards_open(s, dir, e) || verify_tensors(s, t, cfg, dir, e)) {
        shards_close(s);
        param_table_free(t);
        return -1;
    }
    return 0;
}

int checkpoint_inspect(const char* dir, ModelConfig* cfg, CheckpointSummary* sum, Err* e) {
    ParamTable t;
    ShardSet s;
    if (open_checked(dir, cfg, &t, &s, e)) return -1;
    memset(sum, 0, sizeof *sum);
    sum->n_files = s.n_files;
    for (int f = 0; f < s.n_files; f++) {
        sum->disk_bytes += s.files[f].size;
        for (int i = 0; i < s.files[f].n_tensors; i++) {
            const char* d = s.files[f].tensors[i].dtype_name;
            if (!strstr(sum->dtypes, d) && strlen(sum->dtypes) + strlen(d) + 2 < sizeof sum->dtypes)
                snprintf(sum->dtypes + strlen(sum->dtypes), sizeof sum->dtypes - strlen(sum->dtypes), "%s%s",
                         sum->dtypes[0] ? "," : "", d);
        }
    }
    for (int i = 0; i < t.n_params; i++) sum->n_params += (long long)t.params[i].numel;
    shards_close(&s);
    param_table_free(&t);
    return 0;
}

int model_load(Model* m, const char* dir, Err* e) { return model_load_as(m, dir, WEIGHT_F32, e); }

int model_load_as(Model* m, const char* dir, WeightType type, Err* e) {
    ModelConfig cfg;
    ParamTable t;
    ShardSet s;
    if (open_checked(dir, &cfg, &t, &s, e)) return -1;
    param_table_free(&t);
    model_create_as(m, &cfg, type);
    Progress prog;
    progress_begin(&prog, "load", "GB", 1e-9, (double)m->table.n_floats * 4, 2e9);
    int rc = 0;
    double done = 0;
    for (int i = 0; i < m->table.n_params && !rc; i++) {
        const ParamInfo* p = &m->table.params[i];
        const StFile* f = NULL;
        const StTensor* st = shards_find(&s, p->name, &f);
        float* dst = model_param_f32(m, i);
        rc = dst ? st_read_f32(f, st, dst, e) : st_read_16(f, st, type, model_param_16(m, i), e);
        progress_update(&prog, done += (double)p->numel * 4);
    }
    if (!rc) progress_end(&prog);
    shards_close(&s);
    if (rc) model_free(m);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// writing

typedef struct {
    const ParamTable* table;
    const float* arena;  // NULL: random init from seed
    uint64_t seed;
    int first;           // index of the shard's first parameter in the table
    Progress* progress;
    double* done;        // bytes handed to the writer so far
    size_t dtype_size;
} FillCtx;

static void fill_param(void* ctx, int index, float* dst) {
    FillCtx* c = ctx;
    const ParamInfo* p = &c->table->params[c->first + index];
    if (c->arena)
        memcpy(dst, c->arena + p->offset, p->numel * sizeof(float));
    else
        param_init_values(p, c->seed, dst);
    progress_update(c->progress, *c->done += (double)p->numel * c->dtype_size);
}

static int write_index(const char* dir, const ParamTable* t, const int* shard_of, int n_shards, size_t total,
                       Err* e) {
    cJSON* root = cJSON_CreateObject();
    cJSON* meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddNumberToObject(meta, "total_size", (double)total);
    cJSON* map = cJSON_AddObjectToObject(root, "weight_map");
    char fname[64];
    for (int i = 0; i < t->n_params; i++) {
        snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", shard_of[i] + 1, n_shards);
        cJSON_AddStringToObject(map, t->params[i].name, fname);
    }
    return json_write_atomic(dir, "model.safetensors.index.json", root, e);
}

static int checkpoint_write(const ModelConfig* cfg, const ParamTable* t, const float* arena, uint64_t seed,
                            const char* dir, StDtype dtype, size_t max_shard_bytes, Err* e) {
    if (make_dirs(dir, e)) return -1;
    // config.json goes last, so a directory whose writing was interrupted does not load
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    int* shard_of = xmalloc(sizeof(int) * (size_t)t->n_params);
    int n_shards = 0;
    size_t in_shard = 0, total = 0;
    for (int i = 0; i < t->n_params; i++) {
        size_t bytes = t->params[i].numel * st_dtype_size(dtype);
        if (i == 0 || (in_shard > 0 && in_shard + bytes > max_shard_bytes)) {
            n_shards++;
            in_shard = 0;
        }
        shard_of[i] = n_shards - 1;
        in_shard += bytes;
        total += bytes;
    }
    StSpec* specs = xcalloc((size_t)t->n_params, sizeof(StSpec));
    Progress prog;
    progress_begin(&prog, "save", "GB", 1e-9, (double)total, 1e9);
    double done = 0;
    int rc = 0;
    for (int s = 0, first = 0; s < n_shards && !rc; s++) {
        int n = 0;
        while (first + n < t->n_params && shard_of[first + n] == s) {
            const ParamInfo* p = &t->params[first + n];
            StSpec* sp = &specs[n++];
            snprintf(sp->name, sizeof sp->name, "%s", p->name);
            sp->dtype = dtype;
            sp->ndim = p->ndim;
            sp->shape[0] = p->shape[0];
            sp->shape[1] = p->shape[1];
        }
        if (n_shards == 1)
            snprintf(path, sizeof path, "%s/model.safetensors", dir);
        else
            snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, s + 1, n_shards);
        FillCtx ctx = {t, arena, seed, first, &prog, &done, st_dtype_size(dtype)};
        rc = st_write(path, specs, n, fill_param, &ctx, e);
        first += n;
    }
    if (!rc && n_shards > 1) rc = write_index(dir, t, shard_of, n_shards, total, e);
    if (!rc) {
        snprintf(path, sizeof path, "%s/model.safetensors%s", dir, n_shards > 1 ? "" : ".index.json");
        unlink(path);  // a stale file of the other layout would shadow or confuse the new one
        rc = config_save(cfg, dir, dtype == ST_F32 ? "float32" : "bfloat16", e);
    }
    if (!rc) progress_end(&prog);
    free(specs);
    free(shard_of);
    return rc;
}

int model_save(const Model* m, const char* dir, StDtype dtype, size_t max_shard_bytes, Err* e) {
    if (model_require_f32(m, "saving a checkpoint", e)) return -1;
    return checkpoint_write(&m->cfg, &m->table, m->arena, 0, dir, dtype, max_shard_bytes, e);
}

int checkpoint_write_random(const ModelConfig* cfg, uint64_t seed, const char* dir, StDtype dtype,
                            size_t max_shard_bytes, Err* e) {
    ParamTable t;
    param_table_build(cfg, &t);
    int rc = checkpoint_write(cfg, &t, NULL, seed, dir, dtype, max_shard_bytes, e);
    param_table_free(&t);
    return rc;
}
