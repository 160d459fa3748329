// fuzz_tokenizer_kinds.c: any bytes through each kind of normalizer, pre-tokenizer and byte handling
// (the first byte picks the variant; the rest is the text). Variants are patches (tests/
// tokenizer_variant.h) of a small base cut from the real Qwen3 tokenizer: its first 4,096 tokens and
// the merges among them, so each loads in milliseconds. Checked: valid UTF-8 always encodes and
// invalid UTF-8 is refused; every id decodes; a lossless variant gives the bytes back exactly, one that
// drops bytes gives them back without those bytes, byte fallback (with its decoder) exactly.
#include <cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../models/file_io.h"
#include "../models/tokenizer/tokenizer.h"
#include "tokenizer_variant.h"
#include "fuzz_common.h"

typedef enum { LOSSY, LOSSLESS, DROPS } Roundtrip;

typedef struct {
    const char* patch;
    Roundtrip roundtrip;
    bool fallback_tokens;  // add <0x00>..<0xFF> to the vocabulary
} Kind;

#define BL(regex, prefix) "{\"type\":\"ByteLevel\",\"add_prefix_space\":" prefix ",\"trim_offsets\":true,\"use_regex\":" regex "}"
#define SEQ(a, b) "{\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[" a "," b "]},\"normalizer\":null}"
#define SPLIT(rx, behavior, invert) "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"" rx "\"},\"behavior\":\"" behavior "\",\"invert\":" invert "}"
// not q: added tokens (<|quad_start|>) hold it, and come back whole
#define DROP "\"drop_bytes\":[4,6,19,20,25,26,195,241,242,243,244,245,246,247,248,249,250,251,252,253,254,255]"

static const Kind kinds[] = {
    {SEQ("{\"type\":\"Digits\",\"individual_digits\":true}", BL("true", "false")), LOSSLESS, false},
    {SEQ("{\"type\":\"Digits\",\"individual_digits\":false}", BL("false", "false")), LOSSLESS, false},
    {"{\"pre_tokenizer\":" BL("true", "true") ",\"normalizer\":null}", LOSSY, false},
    {SEQ(BL("false", "false"), SPLIT("Ġ", "MergedWithNext", "false")), LOSSLESS, false},
    {SEQ(SPLIT("\\\\s+", "Removed", "false"), BL("false", "false")), LOSSY, false},
    {SEQ(SPLIT("[.,;:!?]", "MergedWithPrevious", "false"), BL("false", "false")), LOSSLESS, false},
    {SEQ(SPLIT("\\\\p{P}", "Contiguous", "false"), BL("true", "false")), LOSSLESS, false},
    {SEQ(SPLIT("\\\\s+", "MergedWithPrevious", "true"), BL("false", "false")), LOSSLESS, false},
    {SEQ(SPLIT("(?=[A-Z])", "Isolated", "false"), BL("true", "false")), LOSSLESS, false},
    {SEQ("{\"type\":\"Punctuation\",\"behavior\":\"Isolated\"}", BL("true", "false")), LOSSLESS, false},
    {SEQ("{\"type\":\"Whitespace\"}", BL("false", "false")), LOSSY, false},
    {SEQ("{\"type\":\"WhitespaceSplit\"}", BL("false", "false")), LOSSY, false},
    {"{\"model\":{\"ignore_merges\":true}}", LOSSY, false},  // the base's NFC
    {"{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKD\"},{\"type\":\"Lowercase\"},{\"type\":\"Strip\","
     "\"strip_left\":true,\"strip_right\":true},{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"},"
     "{\"type\":\"Prepend\",\"prepend\":\"▁\"}]}}",
     LOSSY, false},
    {"{" DROP ",\"normalizer\":null}", DROPS, false},
    {"{" DROP ",\"normalizer\":null,\"add_tokens\":[\"<unk>\"],\"model\":{\"unk_token\":\"<unk>\",\"fuse_unk\":true}}", LOSSY, false},
    {"{" DROP ",\"normalizer\":null,\"model\":{\"byte_fallback\":true},\"decoder\":{\"type\":\"Sequence\",\"decoders\":["
     "{\"type\":\"ByteFallback\"},{\"type\":\"ByteLevel\"}]}}",
     LOSSLESS, true},
};
enum { N_KINDS = sizeof kinds / sizeof kinds[0] };

static Tokenizer toks[N_KINDS];
static int loaded[N_KINDS];  // 0 not yet, 1 loaded, -1 failed
static cJSON* base;

// the first 4,096 tokens of the Qwen3 vocabulary and the merges among them
static cJSON* small_base(void) {
    const char* root = getenv("ARBOR_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/qwen3-tokenizer/tokenizer.json", root ? root : "../shared/data");
    Err e;
    char* text = file_read_all(path, NULL, &e);
    cJSON* full = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!full) {
        fprintf(stderr, "fuzz_tokenizer_kinds: %s (set ARBOR_DATA); nothing to fuzz\n", text ? "malformed JSON" : e.msg);
        return NULL;
    }
    cJSON* model = cJSON_GetObjectItemCaseSensitive(full, "model");
    cJSON* vocab = cJSON_CreateObject();
    StrMap kept;
    strmap_init(&kept, 4096);
    const cJSON* it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(model, "vocab")) if (it->valueint < 4096) {
        cJSON_AddNumberToObject(vocab, it->string, it->valuedouble);
        strmap_put(&kept, it->string, (int)strlen(it->string), it->valueint);
    }
    cJSON* merges = cJSON_CreateArray();
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(model, "merges")) {
        const char* a = cJSON_GetArrayItem(it, 0)->valuestring;
        const char* b = cJSON_GetArrayItem(it, 1)->valuestring;
        char joined[512];
        int len = snprintf(joined, sizeof joined, "%s%s", a, b);
        if (len < (int)sizeof joined && strmap_get(&kept, a, (int)strlen(a)) >= 0 && strmap_get(&kept, b, (int)strlen(b)) >= 0 &&
            strmap_get(&kept, joined, len) >= 0)
            cJSON_AddItemToArray(merges, cJSON_Duplicate(it, 1));
    }
    int next = 4096;  // the added tokens right after the cut vocabulary, as tokenizers would number them
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(full, "added_tokens"))
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "id"), next++);
    cJSON_ReplaceItemInObjectCaseSensitive(model, "merges", merges);  // frees the old merges, not kept's keys
    cJSON_ReplaceItemInObjectCaseSensitive(model, "vocab", vocab);
    strmap_free(&kept);
    return full;
}

static int load_kind(int k) {
    if (loaded[k]) return loaded[k] > 0;
    cJSON* patch = cJSON_Parse(kinds[k].patch);
    if (!patch) abort();  // a typo in the table above
    if (kinds[k].fallback_tokens) {
        cJSON* add = cJSON_AddArrayToObject(patch, "add_tokens");
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            cJSON_AddItemToArray(add, cJSON_CreateString(name));
        }
    }
    char* json = tokenizer_variant_json(base, patch);
    cJSON_Delete(patch);
    const char* path = fuzz_file("tokenizer.json", (const uint8_t*)json, strlen(json));
    free(json);
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    Err e;
    if (tokenizer_load(&toks[k], dir, &e) != 0) {
        fprintf(stderr, "fuzz_tokenizer_kinds: kind %d does not load: %s\n", k, e.msg);
        abort();
    }
    loaded[k] = 1;
    return 1;
}

static void check(const Tokenizer* t, Roundtrip rt, const uint8_t* data, size_t n) {
    IntVec ids = {0};
    ByteVec back = {0};
    Err e;
    int rc = tokenizer_encode(t, (const char*)data, n, &ids, &e);
    if ((rc == 0) != (utf8_invalid_offset((const char*)data, n) < 0)) abort();
    if (rc == 0) {
        if (tokenizer_decode(t, ids.data, ids.len, &back, &e) != 0) abort();
        if (rt == LOSSLESS && (back.len != n || (n && memcmp(back.data, data, n) != 0))) abort();
        if (rt == DROPS) {  // the bytes the vocabulary lacks are gone, the rest comes back in order
            size_t j = 0;
            for (size_t i = 0; i < n; i++)
                if (t->byte_token[data[i]] >= 0 && (j >= back.len || back.data[j++] != (char)data[i])) abort();
            if (j != back.len) abort();
        }
    }
    free(ids.data);
    free(back.data);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    static int ready = -1;
    if (ready < 0) ready = (base = small_base()) != NULL;
    if (!ready || n == 0) return 0;
    int k = data[0] % N_KINDS;
    if (!load_kind(k)) return 0;
    check(&toks[k], kinds[k].roundtrip, data + 1, n - 1);
    return 0;
}
