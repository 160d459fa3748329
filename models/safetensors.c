// safetensors.c: see safetensors.h.
#include "safetensors.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/dtype.h"
#include "file_io.h"

#define ST_MAX_HEADER (100u << 20)

// Element sizes of every dtype the format defines; only F32/F16/BF16 can be loaded.
static const struct {
    const char* name;
    size_t size;
    StDtype dtype;
} known_dtypes[] = {
    {"F32", 4, ST_F32},  {"F16", 2, ST_F16},  {"BF16", 2, ST_BF16},  {"F64", 8, ST_UNSUPPORTED},
    {"I64", 8, ST_UNSUPPORTED}, {"U64", 8, ST_UNSUPPORTED}, {"I32", 4, ST_UNSUPPORTED}, {"U32", 4, ST_UNSUPPORTED},
    {"I16", 2, ST_UNSUPPORTED}, {"U16", 2, ST_UNSUPPORTED}, {"I8", 1, ST_UNSUPPORTED}, {"U8", 1, ST_UNSUPPORTED},
    {"BOOL", 1, ST_UNSUPPORTED}, {"F8_E4M3", 1, ST_UNSUPPORTED}, {"F8_E5M2", 1, ST_UNSUPPORTED},
};

size_t st_dtype_size(StDtype d) { return d == ST_F32 ? 4 : 2; }

static const char* dtype_name(StDtype d) { return d == ST_F32 ? "F32" : d == ST_F16 ? "F16" : "BF16"; }

int64_t st_numel(const StTensor* t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int64_t st_spec_numel(const StSpec* s) {
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->shape[i];
    return n;
}

static int cmp_begin(const void* a, const void* b) {
    const StTensor *x = *(const StTensor* const*)a, *y = *(const StTensor* const*)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int is_uint(const cJSON* v) {
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble == floor(v->valuedouble) &&
           v->valuedouble < 9007199254740992.0;
}

static int parse_entry(StFile* f, const cJSON* item, StTensor* t, size_t data_start, Err* e) {
    const char* p = f->path;
    const char* nm = item->string;
    if (!cJSON_IsObject(item)) return err_set(e, "%s: header entry '%s' is not an object", p, nm);
    t->name = strdup(nm);
    const cJSON* dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON* shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON* offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt)) return err_set(e, "%s: tensor '%s' has no dtype", p, nm);
    size_t esize = 0;
    for (size_t i = 0; i < sizeof known_dtypes / sizeof known_dtypes[0]; i++)
        if (strcmp(dt->valuestring, known_dtypes[i].name) == 0) {
            esize = known_dtypes[i].size;
            t->dtype = known_dtypes[i].dtype;
        }
    if (!esize) return err_set(e, "%s: tensor '%s' has unknown dtype '%.16s'", p, nm, dt->valuestring);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->valuestring);
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > ST_MAX_DIMS)
        return err_set(e, "%s: tensor '%s' has a malformed shape", p, nm);
    t->ndim = cJSON_GetArraySize(shape);
    double numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        const cJSON* d = cJSON_GetArrayItem(shape, i);
        if (!is_uint(d)) return err_set(e, "%s: tensor '%s' has a malformed shape", p, nm);
        t->shape[i] = (int64_t)d->valuedouble;
        numel *= d->valuedouble;
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !is_uint(cJSON_GetArrayItem(offs, 0)) ||
        !is_uint(cJSON_GetArrayItem(offs, 1)))
        return err_set(e, "%s: tensor '%s' has malformed data_offsets", p, nm);
    double b = cJSON_GetArrayItem(offs, 0)->valuedouble, en = cJSON_GetArrayItem(offs, 1)->valuedouble;
    if (en < b) return err_set(e, "%s: tensor '%s' has data_offsets [%.0f, %.0f] ending before they begin", p, nm, b, en);
    if (data_start + en > (double)f->size)
        return err_set(e, "%s: tensor '%s' ends at byte %.0f past file size %zu", p, nm, data_start + en, f->size);
    if (numel * esize != en - b)
        return err_set(e, "%s: tensor '%s' holds %.0f bytes but its shape and dtype %s need %.0f", p, nm, en - b,
                       t->dtype_name, numel * esize);
    t->begin = data_start + (size_t)b;
    t->end = data_start + (size_t)en;
    return 0;
}

// UTF-8 as the format requires of the header (no overlong forms, surrogates or code points past U+10FFFF)
static int valid_utf8(const uint8_t* s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || i + len > n) return 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static int parse_header(StFile* f, const char* json, size_t n, size_t data_start, Err* e) {
    if (!valid_utf8((const uint8_t*)json, n)) return err_set(e, "%s: the header is not UTF-8", f->path);
    if (n == 0 || json[0] != '{') return err_set(e, "%s: the header does not start with '{'", f->path);
    cJSON* root = cJSON_ParseWithLength(json, n);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set(e, "%s: malformed header JSON", f->path);
    }
    int count = 0;
    const cJSON* item;
    cJSON_ArrayForEach(item, root) count += strcmp(item->string, "__metadata__") != 0;
    f->tensors = xcalloc((size_t)count, sizeof(StTensor));
    int rc = 0;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "__metadata__") == 0) continue;
        if ((rc = parse_entry(f, item, &f->tensors[f->n_tensors++], data_start, e))) break;
    }
    cJSON_Delete(root);
    if (rc) return rc;
    // as the format's own loader validates: no name twice, and the tensors tile the data exactly (the
    // first at offset 0, each beginning where the one before ends, the last ending at the end of the
    // file): overlaps, gaps and trailing bytes mean a corrupt file, or one written by something we must
    // not trust
    StTensor** order = xmalloc(sizeof(StTensor*) * (size_t)(count ? count : 1));
    for (int i = 0; i < count; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)count, sizeof *order, cmp_begin);
    for (int i = 0; i < count && !rc; i++)
        for (int j = i + 1; j < count && !rc; j++)
            if (!strcmp(f->tensors[i].name, f->tensors[j].name))
                rc = err_set(e, "%s: tensor '%s' is named twice in the header", f->path, f->tensors[i].name);
    size_t at = data_start;
    for (int i = 0; i < count && !rc; i++) {
        if (order[i]->begin < at)
            rc = err_set(e, "%s: tensors '%s' and '%s' overlap", f->path, order[i - 1]->name, order[i]->name);
        else if (order[i]->begin > at)
            rc = err_set(e, "%s: %zu unaccounted bytes before tensor '%s' (a gap in the data)", f->path, order[i]->begin - at,
                         order[i]->name);
        at = order[i]->end;
    }
    if (!rc && at != f->size) rc = err_set(e, "%s: %zu trailing bytes after the last tensor", f->path, f->size - at);
    free(order);
    return rc;
}

int st_open(StFile* f, const char* path, Err* e) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    if (file_map(path, &f->map, &f->size, e)) return -1;
    if (f->size < 8) {
        int rc = err_set(e, "%s: truncated: %zu bytes, too short for the 8-byte header length", path, f->size);
        st_close(f);
        return rc;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->map[i];
    if (n > f->size - 8) {
        int rc = err_set(e, "%s: header length %llu runs past file size %zu", path, (unsigned long long)n, f->size);
        st_close(f);
        return rc;
    }
    if (n > ST_MAX_HEADER) {
        int rc = err_set(e, "%s: header length %llu exceeds the 100 MB limit", path, (unsigned long long)n);
        st_close(f);
        return rc;
    }
    if (parse_header(f, (const char*)f->map + 8, (size_t)n, 8 + (size_t)n, e)) {
        st_close(f);
        return -1;
    }
    return 0;
}

void st_close(StFile* f) {
    file_unmap(f->map, f->size);
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}

const StTensor* st_find(const StFile* f, const char* name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].name && strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

int st_read_f32(const StFile* f, const StTensor* t, float* dst, Err* e) {
    int64_t n = st_numel(t);
    const uint8_t* src = f->map + t->begin;
    switch (t->dtype) {
        case ST_F32: memcpy(dst, src, (size_t)n * 4); return 0;
        case ST_BF16:
            for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
            return 0;
        case ST_F16:
            for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
            return 0;
        default:
            return err_set(e, "%s: tensor '%s' has dtype %s; arbor reads F32, F16 and BF16", f->path, t->name,
                           t->dtype_name);
    }
}

int st_read_16(const StFile* f, const StTensor* t, WeightType to, uint16_t* dst, Err* e) {
    int64_t n = st_numel(t);
    const uint8_t* src = f->map + t->begin;
    StDtype same = to == WEIGHT_BF16 ? ST_BF16 : ST_F16;
    if (t->dtype == same) {
        memcpy(dst, src, (size_t)n * 2);
        return 0;
    }
    switch (t->dtype) {
        case ST_F32:
#pragma omp parallel for if (n > 65536)
            for (int64_t i = 0; i < n; i++) {
                float v;
                memcpy(&v, src + 4 * i, 4);
                dst[i] = f32_to_16(v, to);
            }
            return 0;
        case ST_BF16:
        case ST_F16: {
            WeightType from = t->dtype == ST_BF16 ? WEIGHT_BF16 : WEIGHT_F16;
#pragma omp parallel for if (n > 65536)
            for (int64_t i = 0; i < n; i++) dst[i] = f32_to_16(f32_from_16((uint16_t)(src[2 * i] | src[2 * i + 1] << 8), from), to);
            return 0;
        }
        default:
            return err_set(e, "%s: tensor '%s' has dtype %s; arbor reads F32, F16 and BF16", f->path, t->name,
                           t->dtype_name);
    }
}

// ---------------------------------------------------------------------------------------------
// writing

static char* build_header(const StSpec* specs, int n, size_t* header_len) {
    size_t cap = 256 + (size_t)n * 256, len = 0;
    char* h = xmalloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)st_spec_numel(&specs[i]) * st_dtype_size(specs[i].dtype);
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", specs[i].name,
                                dtype_name(specs[i].dtype));
        for (int d = 0; d < specs[i].ndim; d++)
            len += (size_t)snprintf(h + len, cap - len, "%s%lld", d ? "," : "", (long long)specs[i].shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", offset, offset + bytes);
        offset += bytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';  // pad so the data starts 8-byte aligned
    *header_len = len;
    return h;
}

int st_write(const char* path, const StSpec* specs, int n, StFillFn fill, void* ctx, Err* e) {
    for (int i = 0; i < n; i++)
        if (specs[i].dtype != ST_F32 && specs[i].dtype != ST_BF16)
            return err_set(e, "%s: tensor '%s': arbor writes F32 or BF16 only", path, specs[i].name);
    size_t hlen;
    char* header = build_header(specs, n, &hlen);
    int64_t max_numel = 1;
    for (int i = 0; i < n; i++)
        if (st_spec_numel(&specs[i]) > max_numel) max_numel = st_spec_numel(&specs[i]);
    AtomicFile af;
    if (atomic_open(&af, path, e)) {
        free(header);
        return -1;
    }
    uint8_t lenbytes[8];
    for (int i = 0; i < 8; i++) lenbytes[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    int rc = atomic_write(&af, lenbytes, 8, e) || atomic_write(&af, header, hlen, e) ? -1 : 0;
    free(header);
    float* values = rc ? NULL : xmalloc((size_t)max_numel * sizeof(float));
    enum { CHUNK = 1 << 20 };
    uint16_t* half = rc ? NULL : xmalloc(CHUNK * sizeof(uint16_t));
    for (int i = 0; i < n && !rc; i++) {
        int64_t numel = st_spec_numel(&specs[i]);
        fill(ctx, i, values);
        if (specs[i].dtype == ST_F32) {
            rc = atomic_write(&af, values, (size_t)numel * 4, e);
        } else {
            for (int64_t s = 0; s < numel && !rc; s += CHUNK) {
                int64_t m = numel - s < CHUNK ? numel - s : CHUNK;
                for (int64_t k = 0; k < m; k++) half[k] = f32_to_bf16(values[s + k]);
                rc = atomic_write(&af, half, (size_t)m * 2, e);
            }
        }
    }
    free(values);
    free(half);
    if (rc) return -1;  // atomic_write already removed the temp file
    return atomic_commit(&af, e);
}
