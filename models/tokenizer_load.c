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

#include "file_io.h"
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

static int compile_split(Tokenizer* t, const char* pattern, Err* e) {
    int code;
    PCRE2_SIZE off;
    pcre2_code* re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return err_set(e, "%s: pre-tokenizer regex does not compile at offset %zu: %s", t->source, (size_t)off, (char*)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
    t->split = re;
    return 0;
}

// The byte-level symbols: every byte must have its one-symbol token.
static int bind_bytes(Tokenizer* t, Err* e) {
    for (int i = 0; i < 512; i++) t->cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = byte_level_code_point(b);
        char utf8[4];
        int n = cp < 0x80 ? 1 : 2;
        if (n == 1) utf8[0] = (char)cp;
        else utf8[0] = (char)(0xc0 | (cp >> 6)), utf8[1] = (char)(0x80 | (cp & 0x3f));
        t->byte_token[b] = strmap_get(&t->vocab, utf8, n);
        if (t->byte_token[b] < 0)
            return err_set(e, "%s: no token for byte 0x%02x (not a byte-level BPE vocabulary)", t->source, b);
        t->cp_to_byte[cp] = (int16_t)b;
    }
    return 0;
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

static int add_added_token(Tokenizer* t, const char* content, int id, bool special, Err* e) {
    if (id < 0 || id >= t->n_ids) return err_set(e, "%s: added token id %d is out of range", t->source, id);
    if (!content[0]) return err_set(e, "%s: added token %d is empty", t->source, id);
    t->added = realloc(t->added, sizeof(AddedToken) * (size_t)(t->n_added + 1));
    AddedToken* a = &t->added[t->n_added++];
    a->len = (int)strlen(content);
    a->content = xmalloc((size_t)a->len + 1);
    memcpy(a->content, content, (size_t)a->len + 1);
    a->id = id;
    a->special = special;
    set_token(t, id, content, a->len);
    if (strcmp(content, "<|endoftext|>") == 0) t->eod_id = id;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json

static int check_pipeline(Tokenizer* t, const cJSON* root, const char** pattern, Err* e) {
    const cJSON* norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON* nt = norm ? cJSON_GetObjectItemCaseSensitive(norm, "type") : NULL;
    if (norm && !cJSON_IsNull(norm)) {
        if (!cJSON_IsString(nt) || strcmp(nt->valuestring, "NFC") != 0)
            return err_set(e, "%s: normalizer '%s' is not supported (NFC or none)", t->source,
                           cJSON_IsString(nt) ? nt->valuestring : "?");
        t->nfc = true;
    }
    // pre_tokenizer: Sequence[Split(Regex, Isolated), ByteLevel(use_regex=false)] (Qwen2/3), or
    // ByteLevel(use_regex=true) with GPT-2's own pattern
    const cJSON* pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON* type = pre ? cJSON_GetObjectItemCaseSensitive(pre, "type") : NULL;
    if (!cJSON_IsString(type)) return err_set(e, "%s: no pre_tokenizer", t->source);
    if (strcmp(type->valuestring, "Sequence") == 0) {
        const cJSON* seq = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
        const cJSON *split = cJSON_GetArrayItem(seq, 0), *bl = cJSON_GetArrayItem(seq, 1);
        const cJSON* st = split ? cJSON_GetObjectItemCaseSensitive(split, "type") : NULL;
        const cJSON* bt = bl ? cJSON_GetObjectItemCaseSensitive(bl, "type") : NULL;
        const cJSON* pat = split ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(split, "pattern"), "Regex") : NULL;
        const cJSON* behavior = split ? cJSON_GetObjectItemCaseSensitive(split, "behavior") : NULL;
        const cJSON* invert = split ? cJSON_GetObjectItemCaseSensitive(split, "invert") : NULL;
        const cJSON* use_regex = bl ? cJSON_GetObjectItemCaseSensitive(bl, "use_regex") : NULL;
        if (cJSON_GetArraySize(seq) != 2 || !cJSON_IsString(st) || strcmp(st->valuestring, "Split") != 0 ||
            !cJSON_IsString(pat) || !cJSON_IsString(behavior) || strcmp(behavior->valuestring, "Isolated") != 0 ||
            cJSON_IsTrue(invert) || !cJSON_IsString(bt) || strcmp(bt->valuestring, "ByteLevel") != 0 ||
            cJSON_IsTrue(use_regex))
            return err_set(e, "%s: pre_tokenizer sequence is not Split(Regex, Isolated) + ByteLevel", t->source);
        *pattern = pat->valuestring;
    } else if (strcmp(type->valuestring, "ByteLevel") == 0) {
        *pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
        const cJSON* prefix = cJSON_GetObjectItemCaseSensitive(pre, "add_prefix_space");
        if (cJSON_IsTrue(prefix)) return err_set(e, "%s: ByteLevel add_prefix_space is not supported", t->source);
    } else {
        return err_set(e, "%s: pre_tokenizer '%s' is not supported (byte-level BPE only so far)", t->source,
                       type->valuestring);
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
    int max_added = -1;
    const cJSON* it;
    cJSON_ArrayForEach(it, added) {
        const cJSON* id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 1 << 30)
            return err_set(e, "%s: added token with an invalid id", path);
        if (id->valueint > max_added) max_added = id->valueint;
    }
    return vocab_fill(t, vocab, cJSON_GetArraySize(added), max_added, path, e);
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
    const cJSON* it;
    const cJSON* added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (load_vocab_object(t, vocab, added, path, e)) return -1;
    t->unk_id = strmap_get(&t->vocab, unk->valuestring, (int)strlen(unk->valuestring));
    if (t->unk_id < 0) return err_set(e, "%s: unk_token '%s' is not in the vocabulary", path, unk->valuestring);
    cJSON_ArrayForEach(it, added) {
        const cJSON* id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON* content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(content)) return err_set(e, "%s: malformed added_tokens entry", path);
        if (add_added_token(t, content->valuestring, id->valueint, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special")), e))
            return -1;
    }
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
    const char* pattern = NULL;
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
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"))) {
        err_set(e, "%s: byte_fallback BPE (SentencePiece style) is not supported yet", path);
        goto done;
    }
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
        err_set(e, "%s: model.vocab must be an object and model.merges a list", path);
        goto done;
    }
    if (check_pipeline(t, root, &pattern, e)) goto done;
    const cJSON* it;
    if (load_vocab_object(t, vocab, added, path, e)) goto done;
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
    cJSON_ArrayForEach(it, added) {
        const cJSON* id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON* content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(content)) {
            err_set(e, "%s: malformed added_tokens entry", path);
            goto done;
        }
        if (add_added_token(t, content->valuestring, id->valueint,
                            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special")), e))
            goto done;
    }
    rc = compile_split(t, pattern, e) || bind_bytes(t, e) ? -1 : 0;
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
                            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special")), e))
            goto done;
    }
    t->nfc = true;
    rc = compile_split(t, QWEN2_SPLIT, e) || bind_bytes(t, e) ? -1 : 0;
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
    if (rc) tokenizer_free(t);
    return rc;
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
    if (t->split) pcre2_code_free(t->split);
    memset(t, 0, sizeof *t);
}
