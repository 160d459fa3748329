// tokenizer_load.c: tokenizer.json (the tokenizers library's format) or the older vocab.json +
// merges.txt + tokenizer_config.json form, into a Tokenizer. Anything the encoder would not
// reproduce exactly (another model type, normaliser or pre-tokenizer) is refused by name.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <cJSON.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../file_io.h"
#include "tokenizer.h"

// transformers' Qwen2Tokenizer PRETOKENIZE_REGEX (the slow-tokenizer form carries no pattern)
static const char* QWEN2_SPLIT =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static void set_token(Tokenizer* t, int id, const char* text, int len) {
    free(t->tokens[id]);
    t->tokens[id] = xmalloc((size_t)len + 1);
    memcpy(t->tokens[id], text, (size_t)len);
    t->tokens[id][len] = 0;
    t->token_lens[id] = len;
}

static void alloc_ids(Tokenizer* t, int n_ids) {
    t->n_ids = n_ids;
    t->tokens = xcalloc((size_t)n_ids, sizeof(char*));
    t->token_lens = xcalloc((size_t)n_ids, sizeof(int));
}

// The byte-level symbols: each byte's one-symbol token (-1 where the vocabulary lacks it), and for
// byte_fallback the <0xNN> tokens of the symbol's UTF-8 bytes.
static void bind_bytes(Tokenizer* t) {
    t->all_bytes = true;
    for (int b = 0; b < 256; b++) {
        char utf8[2];
        int n = byte_level_utf8(b, utf8);
        t->byte_token[b] = strmap_get(&t->vocab, utf8, n);
        if (t->byte_token[b] < 0) t->all_bytes = false;
        t->fallback_n[b] = n;
        for (int k = 0; k < n; k++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", (uint8_t)utf8[k]);
            t->fallback_ids[b][k] = strmap_get(&t->vocab, name, 6);
            if (t->fallback_ids[b][k] < 0) t->fallback_n[b] = 0;
        }
    }
}

static int add_merge(Tokenizer* t, const char* a, int alen, const char* b, int blen, int rank, Err* e) {
    int ia = strmap_get(&t->vocab, a, alen), ib = strmap_get(&t->vocab, b, blen);
    char buf[1024];
    if (ia < 0 || ib < 0 || alen + blen > (int)sizeof buf)
        return err_set(e, "%s: merge %d ('%.*s' '%.*s') names a token not in the vocabulary", t->source, rank, alen, a,
                       blen, b);
    memcpy(buf, a, (size_t)alen);
    memcpy(buf + alen, b, (size_t)blen);
    int merged = strmap_get(&t->vocab, buf, alen + blen);
    if (merged < 0)
        return err_set(e, "%s: merge %d ('%.*s' '%.*s') makes a token not in the vocabulary", t->source, rank, alen, a,
                       blen, b);
    uint64_t key = (((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib) + 1;
    int64_t old;
    if (!u64map_get(&t->merges, key, &old))  // the first (lowest-rank) listing of a pair wins
        u64map_put(&t->merges, key, ((int64_t)rank << 32) | (uint32_t)merged);
    return 0;
}

static int add_added_token(Tokenizer* t, const char* content, int id, bool special, bool normalized, Err* e) {
    if (id < 0 || id >= t->n_ids) return err_set(e, "%s: added token id %d is out of range", t->source, id);
    if (!content[0]) return err_set(e, "%s: added token %d is empty", t->source, id);
    t->added = realloc(t->added, sizeof(AddedToken) * (size_t)(t->n_added + 1));
    AddedToken* a = &t->added[t->n_added++];
    a->len = (int)strlen(content);
    a->content = xmalloc((size_t)a->len + 1);
    memcpy(a->content, content, (size_t)a->len + 1);
    a->id = id;
    a->special = special;
    a->normalized = normalized;
    if (normalized) t->any_normalized = true;
    set_token(t, id, content, a->len);
    if (strcmp(content, "<|endoftext|>") == 0) t->eod_id = id;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json

// normalizer and pre_tokenizer into t->pipe; a BPE needs a ByteLevel step. The Qwen layout takes the
// direct path.
static int read_pipeline(Tokenizer* t, const cJSON* normalizer, const cJSON* pre_tokenizer, Err* e) {
    if (text_pipeline_parse(&t->pipe, normalizer, pre_tokenizer, t->source, e)) return -1;
    const TextPipeline* p = &t->pipe;
    if (p->byte_level_at < 0)
        return err_set(e, "%s: a BPE model needs a ByteLevel pre-tokenizer (byte-level BPE only; Metaspace/SentencePiece "
                          "style is not supported)", t->source);
    bool nfc_or_none = p->n_norm == 0 || (p->n_norm == 1 && p->norm[0].kind == NORM_NFC);
    const PreTokenizer* q = p->pre;
    if (nfc_or_none && p->n_pre == 2 && q[0].kind == PRE_SPLIT && q[0].behavior == SPLIT_ISOLATED && !q[0].invert &&
        q[1].kind == PRE_BYTE_LEVEL && !q[1].use_regex && !q[1].add_prefix_space)
        t->direct_split = q[0].regex;
    else if (nfc_or_none && p->n_pre == 1 && q[0].use_regex && !q[0].add_prefix_space)
        t->direct_split = q[0].regex;
    return 0;
}

// BPE model options: what the library's BPE would do differently is refused by name
static int read_bpe_options(Tokenizer* t, const cJSON* model, Err* e) {
    const cJSON* dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return err_set(e, "%s: BPE dropout is not supported (encoding would not be deterministic)", t->source);
    static const char* affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON* v = cJSON_GetObjectItemCaseSensitive(model, affixes[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && v->valuestring[0] == 0))
            return err_set(e, "%s: BPE %s is not supported", t->source, affixes[i]);
    }
    t->byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"));
    t->fuse_unk = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "fuse_unk"));
    t->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges"));
    const cJSON* unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (unk && !cJSON_IsNull(unk)) {
        if (!cJSON_IsString(unk)) return err_set(e, "%s: model.unk_token must be a string or null", t->source);
        t->unk_id = strmap_get(&t->vocab, unk->valuestring, (int)strlen(unk->valuestring));
        if (t->unk_id < 0) return err_set(e, "%s: unk_token '%.60s' is not in model.vocab", t->source, unk->valuestring);
    }
    return 0;
}

// the decoder: ByteLevel, with ByteFallback when a Sequence holds it
static void read_decoder(Tokenizer* t, const cJSON* decoder) {
    const cJSON* type = cJSON_IsObject(decoder) ? cJSON_GetObjectItemCaseSensitive(decoder, "type") : NULL;
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "Sequence") != 0) return;
    const cJSON* it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(decoder, "decoders")) {
        const cJSON* ty = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "type") : NULL;
        if (cJSON_IsString(ty) && strcmp(ty->valuestring, "ByteFallback") == 0) t->decode_byte_fallback = true;
    }
}

// added_tokens, with the ids tokenizers gives them: it ignores each entry's "id" when it loads (it only
// warns when they differ) and, in file order, gives a token whose content is in model.vocab that id,
// content already added its id, else a fresh id: one past the largest fresh id so far when that is at
// least the vocabulary's size (its entry count), else that size (tokenizers 0.23.3, tested). The options that change matching
// (lstrip, rstrip, single_word) are refused.
static int read_added_tokens(Tokenizer* t, const cJSON* added, int n_vocab, const char* path, Err* e) {
    int max_added = -1;
    const cJSON* it;
    cJSON_ArrayForEach(it, added) {
        const cJSON* file_id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON* content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(file_id) || !cJSON_IsString(content)) return err_set(e, "%s: malformed added_tokens entry", path);
        static const char* options[] = {"lstrip", "rstrip", "single_word"};
        for (int i = 0; i < 3; i++)
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, options[i])))
                return err_set(e, "%s: added token '%.60s' sets %s, which is not supported", path, content->valuestring, options[i]);
        const char* text = content->valuestring;
        int len = (int)strlen(text), id = len ? strmap_get(&t->vocab, text, len) : -1;
        for (int k = 0; k < t->n_added && id < 0; k++)
            if (strcmp(t->added[k].content, text) == 0) id = t->added[k].id;
        if (id < 0) {  // a fresh id; the largest counts only fresh ones
            id = max_added >= n_vocab ? max_added + 1 : n_vocab;
            max_added = id;
        }
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special"));
        const cJSON* norm = cJSON_GetObjectItemCaseSensitive(it, "normalized");
        bool normalized = cJSON_IsBool(norm) ? cJSON_IsTrue(norm) : !special;  // the library's default
        if (add_added_token(t, text, id, special, normalized, e)) return -1;
    }
    return 0;
}

// A vocabulary object {"token": id} into t: ids, texts and the lookup map. Ids must be whole numbers
// below a bound set by the entries (n_vocab + n_extra + 65,536: holes are allowed, absurd ids are not),
// and neither a text nor an id may appear twice. extra_max_id: the largest id other entries (added
// tokens) will take. The map's keys are copied into t->vocab_keys, which the map owns.
static int vocab_fill(Tokenizer* t, const cJSON* vocab, int n_extra, int extra_max_id, const char* path, Err* e) {
    int n = cJSON_GetArraySize(vocab);
    long long bound = (long long)n + n_extra + 65536;
    if (extra_max_id >= bound) return err_set(e, "%s: added token id %d is far past the %d vocabulary entries", path, extra_max_id, n);
    int max_id = extra_max_id;
    size_t text_bytes = 0;
    const cJSON* it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= (double)bound || it->valuedouble != (double)(int)it->valuedouble)
            return err_set(e, "%s: vocab entry '%.60s' has id %.60g: not a whole number in [0, %lld)", path, it->string,
                           cJSON_IsNumber(it) ? it->valuedouble : -1.0, bound);
        if (it->valueint > max_id) max_id = it->valueint;
        text_bytes += strlen(it->string) + 1;
    }
    alloc_ids(t, max_id + 1);
    strmap_init(&t->vocab, (size_t)n);
    t->vocab_keys = xmalloc(text_bytes ? text_bytes : 1);
    char* at = t->vocab_keys;
    cJSON_ArrayForEach(it, vocab) {
        int id = it->valueint, len = (int)strlen(it->string);
        if (t->tokens[id])
            return err_set(e, "%s: id %d is given to both '%.60s' and '%.60s'", path, id, t->tokens[id], it->string);
        if (strmap_get(&t->vocab, it->string, len) >= 0) return err_set(e, "%s: vocab entry '%.60s' appears twice", path, it->string);
        memcpy(at, it->string, (size_t)len + 1);
        strmap_put(&t->vocab, at, len, id);
        at += len + 1;
        set_token(t, id, it->string, len);
    }
    return 0;
}

// model.vocab of tokenizer.json, with room for the ids added_tokens will take
static int load_vocab_object(Tokenizer* t, const cJSON* vocab, const cJSON* added, const char* path, Err* e) {
    const cJSON* it;
    cJSON_ArrayForEach(it, added) {
        const cJSON* id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 1 << 30)
            return err_set(e, "%s: added token with an invalid id", path);
    }
    // the ids read_added_tokens gives are below the vocabulary's size plus the added count
    int n_vocab = cJSON_GetArraySize(vocab), n_added = cJSON_GetArraySize(added);
    return vocab_fill(t, vocab, n_added, n_vocab + n_added - 1, path, e);
}

// WordLevel + WhitespaceSplit (no normaliser): a vocabulary of whole words and an unk token.
static int load_word_level(Tokenizer* t, const cJSON* root, const char* path, Err* e) {
    const cJSON* model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON* vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON* unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    const cJSON* pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON* pre_type = pre ? cJSON_GetObjectItemCaseSensitive(pre, "type") : NULL;
    const cJSON* norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (!cJSON_IsObject(vocab) || !cJSON_IsString(unk))
        return err_set(e, "%s: a WordLevel model needs a vocab object and an unk_token", path);
    if (!cJSON_IsString(pre_type) || strcmp(pre_type->valuestring, "WhitespaceSplit") != 0)
        return err_set(e, "%s: WordLevel is supported with the WhitespaceSplit pre-tokenizer only", path);
    if (norm && !cJSON_IsNull(norm)) return err_set(e, "%s: WordLevel is supported without a normalizer only", path);
    t->kind = TOKENIZER_WORD_LEVEL;
    const cJSON* added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (load_vocab_object(t, vocab, added, path, e)) return -1;
    t->unk_id = strmap_get(&t->vocab, unk->valuestring, (int)strlen(unk->valuestring));
    if (t->unk_id < 0) return err_set(e, "%s: unk_token '%s' is not in the vocabulary", path, unk->valuestring);
    if (read_added_tokens(t, added, cJSON_GetArraySize(vocab), path, e)) return -1;
    for (int i = 0; i < t->n_added; i++) t->added[i].normalized = false;  // no normalizer: raw text is normalised text
    t->any_normalized = false;
    return 0;
}

static int load_tokenizer_json(Tokenizer* t, const char* path, Err* e) {
    size_t len;
    char* text = file_read_all(path, &len, e);
    if (!text) return -1;
    cJSON* root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return err_set(e, "%s: malformed JSON", path);
    int rc = -1;
    const cJSON* model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON* mtype = model ? cJSON_GetObjectItemCaseSensitive(model, "type") : NULL;
    const cJSON* vocab = model ? cJSON_GetObjectItemCaseSensitive(model, "vocab") : NULL;
    const cJSON* merges = model ? cJSON_GetObjectItemCaseSensitive(model, "merges") : NULL;
    const cJSON* added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (cJSON_IsString(mtype) && strcmp(mtype->valuestring, "WordLevel") == 0) {
        rc = load_word_level(t, root, path, e);
        goto done;
    }
    if (!cJSON_IsString(mtype) || strcmp(mtype->valuestring, "BPE") != 0) {
        err_set(e, "%s: model type '%s' is not supported (BPE or WordLevel)", path, cJSON_IsString(mtype) ? mtype->valuestring : "?");
        goto done;
    }
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
        err_set(e, "%s: model.vocab must be an object and model.merges a list", path);
        goto done;
    }
    if (read_pipeline(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), e))
        goto done;
    read_decoder(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"));
    const cJSON* it;
    if (load_vocab_object(t, vocab, added, path, e) || read_bpe_options(t, model, e)) goto done;
    u64map_init(&t->merges, (size_t)cJSON_GetArraySize(merges));
    int rank = 0;
    cJSON_ArrayForEach(it, merges) {
        const char *a, *b;
        int alen, blen;
        if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
            cJSON_IsString(cJSON_GetArrayItem(it, 1))) {  // [["a", "b"], ...]
            a = cJSON_GetArrayItem(it, 0)->valuestring;
            b = cJSON_GetArrayItem(it, 1)->valuestring;
            alen = (int)strlen(a);
            blen = (int)strlen(b);
        } else if (cJSON_IsString(it) && strchr(it->valuestring, ' ')) {  // ["a b", ...]
            a = it->valuestring;
            alen = (int)(strchr(a, ' ') - a);
            b = a + alen + 1;
            blen = (int)strlen(b);
        } else {
            err_set(e, "%s: merge %d is malformed", path, rank);
            goto done;
        }
        if (add_merge(t, a, alen, b, blen, rank++, e)) goto done;
    }
    if (read_added_tokens(t, added, cJSON_GetArraySize(vocab), path, e)) goto done;
    bind_bytes(t);
    t->direct = t->direct_split && !t->any_normalized;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// vocab.json + merges.txt (+ tokenizer_config.json): the slow Qwen2Tokenizer files

static int load_vocab_merges(Tokenizer* t, const char* dir, Err* e) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    size_t len;
    char* text = file_read_all(path, &len, e);
    if (!text) return -1;
    cJSON* config = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON* cls = config ? cJSON_GetObjectItemCaseSensitive(config, "tokenizer_class") : NULL;
    if (!cJSON_IsString(cls) || strcmp(cls->valuestring, "Qwen2Tokenizer") != 0) {
        cJSON_Delete(config);
        return err_set(e, "%s: tokenizer_class must be Qwen2Tokenizer to use vocab.json + merges.txt", path);
    }
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    snprintf(t->source, sizeof t->source, "%s", path);
    text = file_read_all(path, &len, e);
    cJSON* vocab = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    int rc = -1, max_id = -1;
    const cJSON* it;
    const cJSON* decoder = cJSON_GetObjectItemCaseSensitive(config, "added_tokens_decoder");
    char* merges_text = NULL;
    if (!cJSON_IsObject(vocab)) {
        if (vocab || e->msg[0] == 0) err_set(e, "%s: malformed JSON", path);
        goto done;
    }
    cJSON_ArrayForEach(it, decoder) {
        char* end;
        long id = strtol(it->string, &end, 10);
        if (end == it->string || *end || id < 0 || id > 1 << 30) {
            err_set(e, "%s/tokenizer_config.json: added_tokens_decoder key '%.40s' is not an id", dir, it->string);
            goto done;
        }
        if (id > max_id) max_id = (int)id;
    }
    if (vocab_fill(t, vocab, cJSON_GetArraySize(decoder), max_id, path, e)) goto done;
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    snprintf(t->source, sizeof t->source, "%s", path);
    merges_text = file_read_all(path, &len, e);
    if (!merges_text) goto done;
    u64map_init(&t->merges, 1 << 18);
    int rank = 0, line = 0;
    for (char* p = merges_text; *p;) {
        char* nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        if (n && p[n - 1] == '\r') n--;
        if (n && !(line == 1 && strncmp(p, "#version", 8) == 0)) {
            char* sp = memchr(p, ' ', n);
            if (!sp) {
                err_set(e, "%s:%d: a merge line needs two tokens separated by a space", path, line);
                goto done;
            }
            if (add_merge(t, p, (int)(sp - p), sp + 1, (int)(n - (size_t)(sp - p) - 1), rank++, e)) goto done;
        }
        p = nl ? nl + 1 : p + n;
    }
    snprintf(t->source, sizeof t->source, "%s/tokenizer_config.json", dir);
    cJSON_ArrayForEach(it, decoder) {
        const cJSON* content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsString(content)) {
            err_set(e, "%s: added_tokens_decoder entry %s has no content", t->source, it->string);
            goto done;
        }
        if (add_added_token(t, content->valuestring, atoi(it->string),
                            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special")), false, e))
            goto done;
    }
    // Qwen2Tokenizer's pipeline: NFC, its split, then the byte-level symbols
    cJSON* norm = cJSON_CreateObject();
    cJSON_AddStringToObject(norm, "type", "NFC");
    cJSON* pre = cJSON_Parse("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"behavior\":\"Isolated\","
                             "\"pattern\":{}},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]}");
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers"), 0),
                                                             "pattern"), "Regex", QWEN2_SPLIT);
    rc = read_pipeline(t, norm, pre, e);
    cJSON_Delete(norm);
    cJSON_Delete(pre);
    if (rc) goto done;
    bind_bytes(t);
    t->direct = t->direct_split != NULL;
done:
    free(merges_text);
    cJSON_Delete(vocab);
    cJSON_Delete(config);
    return rc;
}

int tokenizer_load(Tokenizer* t, const char* dir, Err* e) {
    memset(t, 0, sizeof *t);
    t->kind = TOKENIZER_BYTE_LEVEL_BPE;
    t->eod_id = -1;
    t->unk_id = -1;
    t->pipe.byte_level_at = -1;
    if (e) e->msg[0] = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    int rc;
    if (access(path, F_OK) == 0) {
        snprintf(t->source, sizeof t->source, "%s", path);
        rc = load_tokenizer_json(t, path, e);
    } else {
        snprintf(path, sizeof path, "%s/vocab.json", dir);
        if (access(path, F_OK) != 0)
            return err_set(e, "%s: no tokenizer.json, nor vocab.json + merges.txt + tokenizer_config.json", dir);
        rc = load_vocab_merges(t, dir, e);
    }
    if (rc) {
        tokenizer_free(t);
        return rc;
    }
    // the ids were allocated with room for added tokens that take fresh ids; those that reuse vocabulary
    // ids (SmolLM's 17 specials at ids 0-16) take none: the size is 1 + the largest id in use, as HF's
    // get_vocab_size(with_added_tokens=True) for tokenizers whose ids have no holes
    while (t->n_ids > 0 && !t->tokens[t->n_ids - 1]) t->n_ids--;
    return 0;
}

void tokenizer_free(Tokenizer* t) {
    for (int i = 0; i < t->n_ids; i++) free(t->tokens[i]);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->tokens);
    free(t->token_lens);
    free(t->vocab_keys);
    free(t->added);
    if (t->vocab.keys) strmap_free(&t->vocab);
    if (t->merges.keys) u64map_free(&t->merges);
    text_pipeline_free(&t->pipe);
    memset(t, 0, sizeof *t);
}
