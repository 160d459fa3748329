// sweep_store.c: see sweep_store.h.
#define _XOPEN_SOURCE 700
#include "sweep_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "arbor_commit.h"  // ARBOR_COMMIT, generated at build time
#include "../models/dir_lock.h"
#include "../models/file_io.h"

void store_stage_dir(const char* dir, const char* key, char* out, size_t n) { snprintf(out, n, "%s/stages/%s", dir, key); }

int store_has(const char* dir, const char* key) {
    char path[2400];
    snprintf(path, sizeof path, "%s/stages/%s/metrics.json", dir, key);
    return access(path, F_OK) == 0;
}

int store_write_stage_info(const char* dir, const char* stage, const char* cell, const char* key, const char* text, Err* e) {
    cJSON* info = cJSON_CreateObject();
    cJSON_AddStringToObject(info, "stage", stage);
    cJSON_AddStringToObject(info, "cell", cell);
    cJSON_AddStringToObject(info, "key", key);
    cJSON_AddStringToObject(info, "text", text);
    return json_write_atomic(dir, "stage.json", info, e);
}

int store_lock(const char* dir, const char* key, int* fd, Err* e) {
    char path[2400];
    snprintf(path, sizeof path, "%s/stages", dir);
    if (make_dirs(path, e)) return -1;
    snprintf(path, sizeof path, "%s/stages/%s.lock", dir, key);
    return file_lock_wait(path, fd, e);
}

// ---- the manifest

static cJSON* cell_json(const SweepConfig* c, const PlanCell* pc, int order) {
    const Cell* cell = &pc->cell;
    cJSON* j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", cell->id);
    cJSON_AddStringToObject(j, "label", cell->label);
    cJSON_AddStringToObject(j, "kind", cell_kind_name(cell->kind));
    cJSON_AddStringToObject(j, "strategy", cell->strategy);
    cJSON_AddNumberToObject(j, "rounds", cell->n_rounds);
    cJSON_AddNumberToObject(j, "order", order);
    cJSON_AddStringToObject(j, "source", cell->model[0] ? cell->model : c->teacher);
    if (cell->kind != CELL_PRUNED)  // a pruned cell's come from its prune stage
        cJSON_AddStringToObject(j, "kept_layers", cell->kind == CELL_SCRATCH ? "(random init)" : "all");
    cJSON_AddStringToObject(j, "model_key", pc->model_key);
    cJSON* st = cJSON_AddArrayToObject(j, "stages");
    for (int s = 0; s < pc->n_stages; s++) {
        cJSON* o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", pc->stages[s].name);
        cJSON_AddStringToObject(o, "key", pc->stages[s].key);
        cJSON_AddItemToArray(st, o);
    }
    return j;
}

int manifest_write(const SweepPlan* p, const SweepConfig* c, Err* e) {
    cJSON* j = cJSON_CreateObject();
    char config[PATH_MAX];
    if (!realpath(c->path, config)) snprintf(config, sizeof config, "%s", c->path);
    cJSON_AddStringToObject(j, "config", config);
    cJSON_AddStringToObject(j, "name", c->name);
    cJSON_AddStringToObject(j, "arbor_commit", ARBOR_COMMIT);
    cJSON_AddBoolToObject(j, "inputs_complete", !p->in.missing);
    cJSON* cells = cJSON_AddArrayToObject(j, "cells");
    for (int i = 0; i < p->n; i++) cJSON_AddItemToArray(cells, cell_json(c, &p->cells[i], i));
    char dir[2300], name[64];
    snprintf(dir, sizeof dir, "%s/manifests", p->dir);
    snprintf(name, sizeof name, "%016llx.json", (unsigned long long)XXH3_64bits(config, strlen(config)));
    cJSON* copy = cJSON_Duplicate(j, 1);
    if (make_dirs(dir, e) || json_write_atomic(dir, name, copy, e)) return cJSON_Delete(j), -1;
    return json_write_atomic(p->dir, "manifest.json", j, e);
}

static cJSON* read_json(const char* path, Err* e) {
    char* text = file_read_all(path, NULL, e);
    if (!text) return NULL;
    cJSON* j = cJSON_Parse(text);
    free(text);
    if (!j) err_set(e, "%s: not valid JSON", path);
    return j;
}

cJSON* manifest_read(const char* dir, Err* e) {
    char path[2300];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    if (access(path, F_OK) != 0) {
        snprintf(path, sizeof path, "%s/cells", dir);
        return err_set(e, "%s/manifest.json: not found (%s)", dir,
                       access(path, F_OK) == 0 ? "a sweep folder of an earlier arbor: run `arbor sweep CONFIG` to report it"
                                               : "not a sweep's results folder, or no sweep has run here"), NULL;
    }
    cJSON* j = read_json(path, e);
    if (j && !cJSON_IsArray(cJSON_GetObjectItem(j, "cells"))) {
        cJSON_Delete(j);
        return err_set(e, "%s: no \"cells\" list", path), NULL;
    }
    return j;
}

const char* manifest_stage_key(const cJSON* cell, const char* stage) {
    const cJSON* st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItem(cell, "stages")) {
        const cJSON* name = cJSON_GetObjectItem(st, "name");
        const cJSON* key = cJSON_GetObjectItem(st, "key");
        if (cJSON_IsString(name) && cJSON_IsString(key) && !strcmp(name->valuestring, stage)) return key->valuestring;
    }
    return NULL;
}

int sweep_stage_dir(const char* dir, const char* cell, const char* stage, char* out, size_t n, Err* e) {
    cJSON* m = manifest_read(dir, e);
    if (!m) return -1;
    const cJSON* c;
    int rc = err_set(e, "%s/manifest.json: no cell %s", dir, cell);
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "cells")) {
        const cJSON* id = cJSON_GetObjectItem(c, "id");
        const cJSON* label = cJSON_GetObjectItem(c, "label");
        if (!(cJSON_IsString(id) && !strcmp(id->valuestring, cell)) && !(cJSON_IsString(label) && !strcmp(label->valuestring, cell)))
            continue;
        const char* key = manifest_stage_key(c, stage);
        if (key) store_stage_dir(dir, key, out, n), rc = 0;
        else rc = err_set(e, "%s/manifest.json: cell %s has no stage %s", dir, cell, stage);
        break;
    }
    cJSON_Delete(m);
    return rc;
}

// ---- gc

static long long tree_bytes;
static int add_size(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
    (void)path, (void)ftw;
    if (flag == FTW_F) tree_bytes += st->st_size;
    return 0;
}

static long long size_of(const char* path) {
    tree_bytes = 0;
    nftw(path, add_size, 16, FTW_PHYS);
    return tree_bytes;
}

typedef struct {
    char** keys;
    int n, cap;
} KeySet;

static int keyset_has(const KeySet* s, const char* key) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->keys[i], key)) return 1;
    return 0;
}

// every stage key any manifest in DIR/manifests names
static int referenced_keys(const char* dir, KeySet* s, Err* e) {
    char mdir[2300];
    snprintf(mdir, sizeof mdir, "%s/manifests", dir);
    DIR* d = opendir(mdir);
    if (!d) return 0;
    int rc = 0;
    for (struct dirent* ent; (ent = readdir(d)) && !rc;) {
        size_t len = strlen(ent->d_name);
        if (len < 6 || strcmp(ent->d_name + len - 5, ".json")) continue;
        char path[2600];
        snprintf(path, sizeof path, "%s/%s", mdir, ent->d_name);
        cJSON* m = read_json(path, e);
        if (!m) {
            rc = -1;  // an unreadable manifest: nothing is removed on its account
            break;
        }
        const cJSON *cell, *st;
        cJSON_ArrayForEach(cell, cJSON_GetObjectItem(m, "cells")) cJSON_ArrayForEach(st, cJSON_GetObjectItem(cell, "stages")) {
            const cJSON* key = cJSON_GetObjectItem(st, "key");
            if (!cJSON_IsString(key) || keyset_has(s, key->valuestring)) continue;
            if (s->n == s->cap) s->keys = realloc(s->keys, sizeof(char*) * (size_t)(s->cap = s->cap ? 2 * s->cap : 64));
            s->keys[s->n++] = strdup(key->valuestring);
        }
        cJSON_Delete(m);
    }
    closedir(d);
    return rc;
}

int store_gc(const char* dir, int remove, Err* e) {
    KeySet refs = {0};
    int rc = referenced_keys(dir, &refs, e);
    char sdir[2300];
    snprintf(sdir, sizeof sdir, "%s/stages", dir);
    DIR* d = rc ? NULL : opendir(sdir);
    long long total = 0;
    int count = 0;
    for (struct dirent* ent; d && (ent = readdir(d)) && !rc;) {
        const char* name = ent->d_name;
        size_t len = strlen(name);
        if (name[0] == '.' || (len > 5 && !strcmp(name + len - 5, ".lock"))) continue;
        char key[PLAN_KEY];
        snprintf(key, sizeof key, "%.32s", name);  // KEY or KEY.tmp (a killed run's partial stage)
        if (keyset_has(&refs, key)) continue;  // a stage a config needs (a partial one resumes from KEY.tmp)
        char path[2600], lock_path[2700];
        snprintf(path, sizeof path, "%s/%s", sdir, name);
        snprintf(lock_path, sizeof lock_path, "%s/%s.lock", sdir, key);
        int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {  // a run is working on it
            close(fd);
            continue;
        }
        char what[128] = "stage";
        snprintf(path, sizeof path, "%s/%s/stage.json", sdir, name);
        cJSON* info = access(path, F_OK) == 0 ? read_json(path, e) : NULL;
        const cJSON* sname = cJSON_GetObjectItem(info, "stage");
        const cJSON* label = cJSON_GetObjectItem(info, "cell");
        if (cJSON_IsString(sname)) snprintf(what, sizeof what, "%s of %s", sname->valuestring, cJSON_IsString(label) ? label->valuestring : "?");
        cJSON_Delete(info);
        snprintf(path, sizeof path, "%s/%s", sdir, name);
        long long bytes = size_of(path);
        total += bytes, count++;
        printf("%s\t%.1f MB\t%s%s\n", path, bytes / 1e6, what, remove ? "\tremoved" : "");
        if (remove) {
            rc = remove_tree(path, e);
            if (!rc) unlink(lock_path);
        }
        if (fd >= 0) close(fd);
    }
    if (d) closedir(d);
    char legacy[2300];
    snprintf(legacy, sizeof legacy, "%s/cells", dir);
    if (!rc && access(legacy, F_OK) == 0) {  // the per-cell folders of arbor before the stage store: never read
        long long bytes = size_of(legacy);
        total += bytes, count++;
        printf("%s\t%.1f MB\tcell folders of an earlier arbor (not read)%s\n", legacy, bytes / 1e6, remove ? "\tremoved" : "");
        if (remove) rc = remove_tree(legacy, e);
    }
    for (int i = 0; i < refs.n; i++) free(refs.keys[i]);
    free(refs.keys);
    if (rc) return -1;
    fprintf(stderr, "gc: %d unreferenced %s, %.1f MB%s\n", count, count == 1 ? "entry" : "entries", total / 1e6,
            remove ? " removed" : " (--force removes them)");
    return 0;
}
