// tokenizer_variant.c: see tokenizer_variant.h. The base's big arrays are shared by reference unless
// the patch filters them, so a variant costs one print, not a deep copy.
#include "tokenizer_variant.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer/tokenizer.h"

static bool holds_any(const char* s, char symbols[][3], int n) {
    for (int i = 0; i < n; i++)
        if (strstr(s, symbols[i])) return true;
    return false;
}

typedef struct {
    double id;
    const char* text;
} Entry;

static int by_id(const void* a, const void* b) {
    double x = ((const Entry*)a)->id, y = ((const Entry*)b)->id;
    return (x > y) - (x < y);
}

// model.vocab without the dropped symbols and with the added tokens, renumbered 0..V-1 (old order, new
// tokens last); NULL when the patch changes neither
static cJSON* patched_vocab(const cJSON* vocab, char symbols[][3], int n_drop, const cJSON* add) {
    int n_new = 0;
    const cJSON* e;
    cJSON_ArrayForEach(e, add) n_new += !cJSON_GetObjectItemCaseSensitive(vocab, e->valuestring);
    if (!n_drop && !n_new) return NULL;
    int n = cJSON_GetArraySize(vocab), k = 0;
    Entry* kept = malloc(sizeof(Entry) * (size_t)(n + 1));
    cJSON_ArrayForEach(e, vocab) if (!holds_any(e->string, symbols, n_drop)) kept[k++] = (Entry){e->valuedouble, e->string};
    qsort(kept, (size_t)k, sizeof(Entry), by_id);
    cJSON* v = cJSON_CreateObject();
    for (int i = 0; i < k; i++) cJSON_AddNumberToObject(v, kept[i].text, i);
    cJSON_ArrayForEach(e, add) {  // a token already there keeps its place
        if (!cJSON_GetObjectItemCaseSensitive(vocab, e->valuestring)) cJSON_AddNumberToObject(v, e->valuestring, k++);
    }
    free(kept);
    return v;
}

char* tokenizer_variant_json(const cJSON* base, const cJSON* patch) {
    const cJSON* model = cJSON_GetObjectItemCaseSensitive(base, "model");
    const cJSON* drop = cJSON_GetObjectItemCaseSensitive(patch, "drop_bytes");
    const cJSON* set = cJSON_GetObjectItemCaseSensitive(patch, "model");
    const cJSON* it;
    char symbols[256][3];
    int n_drop = 0;
    cJSON_ArrayForEach(it, drop) {
        if (n_drop == 256) break;
        int len = byte_level_utf8(it->valueint & 0xff, symbols[n_drop]);
        symbols[n_drop++][len] = 0;
    }
    cJSON* vocab = patched_vocab(cJSON_GetObjectItemCaseSensitive(model, "vocab"), symbols, n_drop,
                                 cJSON_GetObjectItemCaseSensitive(patch, "add_tokens"));
    cJSON* root = cJSON_CreateObject();
    cJSON_ArrayForEach(it, base) {
        if (strcmp(it->string, "model") == 0) continue;
        if (strcmp(it->string, "added_tokens") == 0 && vocab) {  // renumbered after the vocabulary
            cJSON* added = cJSON_Duplicate(it, 1);
            int next = cJSON_GetArraySize(vocab);
            cJSON* a;
            cJSON_ArrayForEach(a, added) cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(a, "id"), next++);
            cJSON_AddItemToObject(root, "added_tokens", added);
            continue;
        }
        const cJSON* replaced = cJSON_GetObjectItemCaseSensitive(patch, it->string);
        bool patchable = strcmp(it->string, "normalizer") == 0 || strcmp(it->string, "pre_tokenizer") == 0 ||
                         strcmp(it->string, "decoder") == 0;
        cJSON_AddItemReferenceToObject(root, it->string, (cJSON*)(patchable && replaced ? replaced : it));
    }
    cJSON* m = cJSON_CreateObject();
    cJSON_ArrayForEach(it, model) {
        if (cJSON_GetObjectItemCaseSensitive(set, it->string)) continue;
        if (strcmp(it->string, "vocab") == 0 && vocab) {
            cJSON_AddItemToObject(m, "vocab", vocab);
        } else if (strcmp(it->string, "merges") == 0 && n_drop) {
            cJSON* v = cJSON_CreateArray();
            const cJSON* e;
            cJSON_ArrayForEach(e, it) {
                bool keep = cJSON_IsString(e) ? !holds_any(e->valuestring, symbols, n_drop)
                                              : !holds_any(cJSON_GetArrayItem(e, 0)->valuestring, symbols, n_drop) &&
                                                    !holds_any(cJSON_GetArrayItem(e, 1)->valuestring, symbols, n_drop);
                if (keep) cJSON_AddItemReferenceToArray(v, (cJSON*)e);
            }
            cJSON_AddItemToObject(m, "merges", v);
        } else {
            cJSON_AddItemReferenceToObject(m, it->string, (cJSON*)it);
        }
    }
    cJSON_ArrayForEach(it, set) cJSON_AddItemReferenceToObject(m, it->string, (cJSON*)it);
    cJSON_AddItemToObject(root, "model", m);
    char* text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);  // references are not freed with it
    return text;
}
