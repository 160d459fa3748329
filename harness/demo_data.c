// demo_data.c: see demo_data.h.
#include "demo_data.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mmlu/prompt.h"
#include "../models/file_io.h"
#include "../models/token_shard.h"
#include "../models/tokenizer/tokenizer.h"
#include "../models/vec.h"

static const char* attr_names[4] = {"color", "city", "food", "animal"};
static const char* attr_values[4][4] = {
    {"red", "blue", "green", "yellow"}, {"paris", "tokyo", "lima", "oslo"},
    {"rice", "bread", "soup", "fish"},  {"cat", "dog", "owl", "fox"},
};

static uint64_t next(uint64_t* s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static const char* syllables[20] = {"ka", "zo", "mi", "ru", "te", "lo", "vi", "na", "pe", "su",
                                    "bo", "da", "fe", "gu", "hi", "jo", "ke", "ly", "mo", "ni"};

// One word ("kazomi", "rilute", ...: distinct by construction, the index picks the syllables) or, with
// words > 1, that many syllable words drawn at random ("ka zo mi"), distinct by rejection: every syllable
// is shared by many entities, so no single token names one and a model must combine them in its layers.
static void entity_names(int n, int words, uint64_t* rng, char (*out)[32]) {
    StrMap seen;
    strmap_init(&seen, 64);
    for (int i = 0; i < n; i++) {
        if (words <= 1) {
            snprintf(out[i], 32, "%s%s%s", syllables[i % 20], syllables[(i / 20) % 20], syllables[(i * 7 + 3) % 20]);
            continue;
        }
        do {
            int len = 0;
            for (int w = 0; w < words; w++)
                len += snprintf(out[i] + len, (size_t)(32 - len), "%s%s", w ? " " : "", syllables[next(rng) % 20]);
        } while (strmap_get(&seen, out[i], (int)strlen(out[i])) >= 0);
        strmap_put(&seen, out[i], (int)strlen(out[i]), i);
    }
    strmap_free(&seen);
}

static void question(MmluRecord* r, char* q, const char* name, int a) {
    snprintf(q, 128, "What is the %s of %s ?", attr_names[a], name);
    r->question = q;
    for (int k = 0; k < 4; k++) r->choices[k] = (char*)attr_values[a][k];
}

static int write_csv(const char* path, MmluRecord* rows, int n, Err* e) {
    ByteVec v = {0};
    char line[512];
    for (int i = 0; i < n; i++) {
        int len = snprintf(line, sizeof line, "%s,%s,%s,%s,%s,%c\n", rows[i].question, rows[i].choices[0], rows[i].choices[1],
                           rows[i].choices[2], rows[i].choices[3], 'A' + rows[i].answer);
        bytevec_append(&v, line, (size_t)len);
    }
    int rc = file_write_atomic(path, v.data, v.len, e);
    free(v.data);
    return rc;
}

// every whitespace-separated word of text into the vocabulary
static void add_words(const char* text, StrMap* seen, cJSON* vocab, int* next_id, char*** owned, int* n_owned) {
    const char* p = text;
    while (*p) {
        while (*p == ' ' || *p == '\n') p++;
        const char* start = p;
        while (*p && *p != ' ' && *p != '\n') p++;
        if (p == start) break;
        int len = (int)(p - start);
        if (strmap_get(seen, start, len) >= 0) continue;
        char* w = xmalloc((size_t)len + 1);
        memcpy(w, start, (size_t)len);
        w[len] = 0;
        *owned = realloc(*owned, sizeof(char*) * (size_t)(*n_owned + 1));
        (*owned)[(*n_owned)++] = w;
        strmap_put(seen, w, len, *next_id);
        cJSON_AddNumberToObject(vocab, w, (*next_id)++);
    }
}

int demo_data_write(const char* dir, const DemoDataOptions* o, Err* e) {
    int E = o->entities, n_q = E * 4;
    uint64_t rng = o->seed * 0x9e3779b97f4a7c15ull + 7;
    char (*names)[32] = xmalloc(sizeof(char[32]) * (size_t)E);
    char (*qtext)[128] = xmalloc(sizeof(char[128]) * (size_t)n_q);
    MmluRecord* rows = xcalloc((size_t)n_q, sizeof(MmluRecord));
    entity_names(E, o->name_words, &rng, names);
    for (int i = 0; i < E; i++)
        for (int a = 0; a < 4; a++) {
            MmluRecord* r = &rows[i * 4 + a];
            question(r, qtext[i * 4 + a], names[i], a);
            r->answer = (int)(next(&rng) % 4);
        }
    char path[4200];
    int rc = 0;
    const char* splits[3] = {"test", "val", "dev"};
    for (int s = 0; s < 3 && !rc; s++) {
        snprintf(path, sizeof path, "%s/mmlu/%s", dir, splits[s]);
        rc = make_dirs(path, e);
        snprintf(path, sizeof path, "%s/mmlu/%s/miscellaneous_%s.csv", dir, splits[s], splits[s]);
        // test: every question; val: every other one; dev: the first five (few-shot examples)
        if (!rc) rc = write_csv(path, rows, s == 0 ? n_q : s == 1 ? n_q / 2 : 5, e);
    }
    if (!rc) {  // what the benchmark is, for the paper: not MMLU, though in its format
        snprintf(path, sizeof path, "%s/mmlu/benchmark.json", dir);
        const char* desc = "{\"name\": \"synthetic facts\", \"synthetic\": true, \"description\": "
                           "\"invented entities and their attributes (arbor demo), four options per question, in MMLU's format\"}\n";
        rc = file_write_atomic(path, desc, strlen(desc), e);
    }
    // documents: fact sentences and answered questions exactly as the evaluator will prompt them (0-shot)
    int n_docs = 2 * n_q;
    char** docs = xcalloc((size_t)n_docs, sizeof(char*));
    for (int i = 0; i < n_q && !rc; i++) {
        const MmluRecord* r = &rows[i];
        docs[2 * i] = xmalloc(256);
        snprintf(docs[2 * i], 256, "the %s of %s is %s .", attr_names[i % 4], names[i / 4], r->choices[r->answer]);
        ByteVec qa = {0};
        mmlu_prefix(&qa, "miscellaneous", NULL, 0, 0);
        mmlu_example_text(&qa, r);
        char ans[3] = {' ', (char)('A' + r->answer), 0};
        bytevec_append(&qa, ans, 2);
        docs[2 * i + 1] = qa.data;
    }
    // the tokenizer: [UNK], every word of the documents, <|endoftext|> as an added token
    cJSON* root = cJSON_CreateObject();
    cJSON_AddNullToObject(root, "normalizer");
    cJSON* pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "WhitespaceSplit");
    cJSON* model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "WordLevel");
    cJSON_AddStringToObject(model, "unk_token", "[UNK]");
    cJSON* vocab = cJSON_AddObjectToObject(model, "vocab");
    StrMap seen;
    strmap_init(&seen, 512);
    char** owned = NULL;
    int n_owned = 0, next_id = 0;
    add_words("[UNK]", &seen, vocab, &next_id, &owned, &n_owned);
    for (int i = 0; i < n_docs; i++) add_words(docs[i], &seen, vocab, &next_id, &owned, &n_owned);
    cJSON* added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON* eod = cJSON_CreateObject();
    cJSON_AddNumberToObject(eod, "id", next_id);
    cJSON_AddStringToObject(eod, "content", "<|endoftext|>");
    cJSON_AddBoolToObject(eod, "special", 1);
    cJSON_AddItemToArray(added, eod);
    snprintf(path, sizeof path, "%s/tokenizer", dir);
    if (!rc) rc = make_dirs(path, e) || json_write_atomic(path, "tokenizer.json", root, e);
    else cJSON_Delete(root);
    // shards: the corpus (repeats copies, shuffled) and a validation shard (one copy in order)
    Tokenizer tok = {0};
    if (!rc) rc = tokenizer_load(&tok, path, e);
    for (int which = 0; which < 2 && !rc; which++) {
        int copies = which == 0 ? o->repeats : 1, total = n_docs * copies;
        int* order = xmalloc(sizeof(int) * (size_t)total);
        for (int i = 0; i < total; i++) order[i] = i % n_docs;
        for (int i = total - 1; which == 0 && i > 0; i--) {
            int j = (int)(next(&rng) % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        ShardWriter w;
        snprintf(path, sizeof path, "%s/%s.shard", dir, which == 0 ? "train" : "val");
        rc = shard_writer_open(&w, path, tok.n_ids, tok.eod_id, e);
        IntVec ids = {0};
        for (int i = 0; i < total && !rc; i++) {
            ids.len = 0;
            rc = tokenizer_encode(&tok, docs[order[i]], strlen(docs[order[i]]), &ids, e) ||
                 shard_writer_append(&w, ids.data, ids.len, e) || shard_writer_end_doc(&w, true, e);
        }
        if (!rc) rc = shard_writer_close(&w, e);
        free(ids.data);
        free(order);
    }
    if (tok.n_ids) tokenizer_free(&tok);
    for (int i = 0; i < n_docs; i++) free(docs[i]);
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    strmap_free(&seen);
    free(docs);
    free(rows);
    free(qtext);
    free(names);
    return rc;
}
