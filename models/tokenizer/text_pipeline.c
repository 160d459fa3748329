// text_pipeline.c: tokenizers' normalizers and pre-tokenizers (see text_pipeline.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text_pipeline.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "byte_level.h"

// ---------------------------------------------------------------------------------------------
// regexes: Oniguruma's Unicode \s \S \w \W in PCRE2 terms

// Oniguruma's \w: Alphabetic, marks, decimal digits, connector punctuation, and below U+0100 its Latin-1
// table, which also counts the superscripts 2 3 1 and the fractions 1/4 1/2 3/4. Checked code point by
// code point against tokenizers 0.23.3: equal but for the characters newer than PCRE2 10.42's Unicode
// 14.0.0 tables (unicode_age.h).
#define ONIG_WORD "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{b2}\\x{b3}\\x{b9}\\x{bc}-\\x{be}"

// The `regex` crate's \w (tokenizers' Whitespace pre-tokenizer uses that crate, not Oniguruma): Unicode
// TR18's word class
#define REGEX_CRATE_WORD "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}"

// Oniguruma's \s is Unicode White_Space exactly; PCRE2's UCP \s adds U+180E (checked code point by
// code point against tokenizers 0.23.3)
static char* onig_classes(const char* p, const char* source, Err* e) {
    ByteVec out = {0};
    bool in_class = false;
    for (size_t i = 0; p[i];) {
        char c = p[i];
        if (c == '\\' && p[i + 1] == 'Q') {  // a literal run: copied up to \E
            const char* end = strstr(p + i + 2, "\\E");
            size_t n = end ? (size_t)(end - (p + i)) + 2 : strlen(p + i);
            bytevec_append(&out, p + i, n);
            i += n;
            continue;
        }
        if (c == '\\' && p[i + 1]) {
            char n = p[i + 1];
            const char* with = NULL;
            if (n == 's') with = "\\p{White_Space}";
            else if (n == 'S') with = "\\P{White_Space}";
            else if (n == 'w') with = in_class ? ONIG_WORD : "[" ONIG_WORD "]";
            else if (n == 'W') {
                if (in_class) {
                    free(out.data);
                    err_set(e, "%s: regex '%.80s': \\W inside a character class is not supported", source, p);
                    return NULL;
                }
                with = "[^" ONIG_WORD "]";
            }
            if (with) bytevec_append(&out, with, strlen(with));
            else bytevec_append(&out, p + i, 2);
            i += 2;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = true;
            size_t n = 1;
            if (p[i + n] == '^') n++;
            if (p[i + n] == ']') n++;  // a leading ] is a literal
            bytevec_append(&out, p + i, n);
            i += n;
            continue;
        }
        if (c == '[' && in_class && p[i + 1] == ':') {  // [:alpha:]
            const char* end = strstr(p + i + 2, ":]");
            size_t n = end ? (size_t)(end - (p + i)) + 2 : 1;
            bytevec_append(&out, p + i, n);
            i += n;
            continue;
        }
        if (c == ']' && in_class) in_class = false;
        bytevec_append(&out, p + i, 1);
        i++;
    }
    if (!out.data) bytevec_append(&out, "", 0);
    return out.data;
}

void* text_regex_compile(const char* pattern, const char* source, Err* e) {
    char* rewritten = onig_classes(pattern, source, e);
    if (!rewritten) return NULL;
    int code;
    PCRE2_SIZE off;
    pcre2_code* re = pcre2_compile((PCRE2_SPTR)rewritten, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    free(rewritten);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        err_set(e, "%s: regex '%.80s' does not compile: %s", source, pattern, (char*)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // the interpreter serves when JIT is unavailable
    return re;
}

void text_regex_free(void* re) {
    if (re) pcre2_code_free(re);
}

// a literal String pattern, escaped into a regex as tokenizers does (regex::escape)
static void* literal_regex(const char* text, const char* source, Err* e) {
    ByteVec p = {0};
    for (const char* c = text; *c; c++) {
        if (strchr("\\.+*?()|[]{}^$#&-~ ", *c)) bytevec_append(&p, "\\", 1);
        bytevec_append(&p, c, 1);
    }
    if (!p.data) bytevec_append(&p, "", 0);
    void* re = text_regex_compile(p.data, source, e);
    free(p.data);
    return re;
}

static size_t char_len_at(const char* s, size_t len, size_t i) {
    size_t n = 1;
    while (i + n < len && ((uint8_t)s[i + n] & 0xc0) == 0x80) n++;
    return n;
}

int text_regex_next(const void* re, void* match_data, const char* s, size_t len, TextRegexIter* it, size_t* start, size_t* end) {
    while (!it->done && it->last_end <= len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, it->last_end, PCRE2_NO_UTF_CHECK, match_data, NULL);
        if (rc < 0) break;
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match_data);
        size_t st = ov[0], en = ov[1];
        if (en == st && it->have_match && it->last_match_end == en) {  // no empty match right after a match
            it->last_end += it->last_end < len ? char_len_at(s, len, it->last_end) : 1;
            continue;
        }
        it->last_end = en;
        it->last_match_end = en;
        it->have_match = true;
        *start = st;
        *end = en;
        return 1;
    }
    it->done = true;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// character classes (Rust's char methods, as tokenizers calls them)

static bool is_white_space(int32_t c) {  // char::is_whitespace: Unicode White_Space
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
           c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

static bool is_numeric(int32_t c) {  // char::is_numeric: Nd, Nl, No
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

static bool is_punctuation(int32_t c) {  // tokenizers' is_punc: ASCII punctuation or a P* category
    if (c < 0x80) return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_PC || k == UTF8PROC_CATEGORY_PD || k == UTF8PROC_CATEGORY_PS || k == UTF8PROC_CATEGORY_PE ||
           k == UTF8PROC_CATEGORY_PI || k == UTF8PROC_CATEGORY_PF || k == UTF8PROC_CATEGORY_PO;
}

// ---------------------------------------------------------------------------------------------
// splitting one piece: its parts (match or not), then merged by behaviour (NormalizedString::split)

typedef struct {
    size_t start, end;
    bool match;
} Part;

typedef struct {
    Part* at;
    int n, cap;
} Parts;

static void parts_push(Parts* p, size_t start, size_t end, bool match) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->at = xrealloc(p->at, sizeof(Part) * (size_t)p->cap);
    }
    p->at[p->n++] = (Part){start, end, match};
}

static void regex_parts(const void* re, void* md, const char* s, size_t len, Parts* out) {
    TextRegexIter it = {0};
    size_t prev = 0, st, en;
    while (text_regex_next(re, md, s, len, &it, &st, &en)) {
        if (prev != st) parts_push(out, prev, st, false);
        parts_push(out, st, en, true);
        prev = en;
    }
    if (prev != len) parts_push(out, prev, len, false);
}

// each character the predicate holds for is a match of its own
static void char_parts(bool (*pred)(int32_t), const char* s, size_t len, Parts* out) {
    size_t last = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate((const uint8_t*)s + i, (utf8proc_ssize_t)(len - i), &c);
        if (n <= 0) n = 1, c = -1;
        if (c >= 0 && pred(c)) {
            if (last < i) parts_push(out, last, i, false);
            parts_push(out, i, i + (size_t)n, true);
            last = i + (size_t)n;
        }
        i += (size_t)n;
    }
    if (last < len) parts_push(out, last, len, false);
}

// parts -> kept [start, end) spans, in place (p->at[k].match then means "remove")
static void merge_parts(Parts* p, SplitBehavior b) {
    int n = 0;
    bool prev_match = false;
    switch (b) {
    case SPLIT_REMOVED:
        return;
    case SPLIT_ISOLATED:
        for (int i = 0; i < p->n; i++) p->at[i].match = false;
        return;
    case SPLIT_CONTIGUOUS:
        for (int i = 0; i < p->n; i++) {
            Part x = p->at[i];
            if (x.match == prev_match && n > 0) p->at[n - 1].end = x.end;
            else p->at[n++] = (Part){x.start, x.end, false};
            prev_match = x.match;
        }
        break;
    case SPLIT_MERGED_WITH_PREVIOUS:
        for (int i = 0; i < p->n; i++) {
            Part x = p->at[i];
            if (x.match && !prev_match && n > 0) p->at[n - 1].end = x.end;
            else p->at[n++] = (Part){x.start, x.end, false};
            prev_match = x.match;
        }
        break;
    case SPLIT_MERGED_WITH_NEXT:  // the same from the right, then back in order
        for (int i = p->n - 1; i >= 0; i--) {
            Part x = p->at[i];
            if (x.match && !prev_match && n > 0) p->at[p->n - n].start = x.start;
            else {
                n++;
                p->at[p->n - n] = (Part){x.start, x.end, false};
            }
            prev_match = x.match;
        }
        memmove(p->at, p->at + p->n - n, sizeof(Part) * (size_t)n);
        break;
    }
    p->n = n;
}

// ---------------------------------------------------------------------------------------------
// pieces

static void span_push(IntVec* v, size_t off, size_t len) {
    intvec_push(v, (int)off);
    intvec_push(v, (int)len);
}

static void arena_reserve(ByteVec* a, size_t extra) {
    if (a->len + extra + 1 <= a->cap) return;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + extra + 1) cap *= 2;
    a->data = xrealloc(a->data, cap);
    a->cap = cap;
}

// one splitting step over every piece: spans -> next
static void split_step(const PreTokenizer* st, Pieces* ps, IntVec* next, Parts* parts, void* md) {
    next->len = 0;
    for (size_t k = 0; k < ps->spans.len; k += 2) {
        size_t off = (size_t)ps->spans.data[k], len = (size_t)ps->spans.data[k + 1];
        const char* s = ps->arena.data + off;
        parts->n = 0;
        SplitBehavior b = st->behavior;
        bool invert = st->invert;
        switch (st->kind) {
        case PRE_SPLIT: regex_parts(st->regex, md, s, len, parts); break;
        case PRE_WHITESPACE: regex_parts(st->regex, md, s, len, parts), b = SPLIT_REMOVED, invert = true; break;
        case PRE_DIGITS: char_parts(is_numeric, s, len, parts), b = st->individual_digits ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS; break;
        case PRE_PUNCTUATION: char_parts(is_punctuation, s, len, parts); break;
        case PRE_WHITESPACE_SPLIT: char_parts(is_white_space, s, len, parts), b = SPLIT_REMOVED; break;
        case PRE_BYTE_LEVEL: regex_parts(st->regex, md, s, len, parts), b = SPLIT_ISOLATED; break;
        }
        if (invert)
            for (int i = 0; i < parts->n; i++) parts->at[i].match = !parts->at[i].match;
        merge_parts(parts, b);
        for (int i = 0; i < parts->n; i++)
            if (!parts->at[i].match && parts->at[i].end > parts->at[i].start)
                span_push(next, off + parts->at[i].start, parts->at[i].end - parts->at[i].start);
    }
    IntVec tmp = ps->spans;
    ps->spans = *next;
    *next = tmp;
}

static void byte_level_step(const PreTokenizer* st, Pieces* ps, IntVec* next, Parts* parts, void* md) {
    if (st->add_prefix_space) {
        for (size_t k = 0; k < ps->spans.len; k += 2) {
            size_t off = (size_t)ps->spans.data[k], len = (size_t)ps->spans.data[k + 1];
            if (ps->arena.data[off] == ' ') continue;
            arena_reserve(&ps->arena, len + 1);
            size_t at = ps->arena.len;
            ps->arena.data[at] = ' ';
            memcpy(ps->arena.data + at + 1, ps->arena.data + off, len);
            ps->arena.len += len + 1;
            ps->spans.data[k] = (int)at;
            ps->spans.data[k + 1] = (int)(len + 1);
        }
    }
    if (st->use_regex) split_step(st, ps, next, parts, md);
    for (size_t k = 0; k < ps->spans.len; k += 2) {  // every byte to its symbol (one or two UTF-8 bytes)
        size_t off = (size_t)ps->spans.data[k], len = (size_t)ps->spans.data[k + 1];
        arena_reserve(&ps->arena, 2 * len);
        size_t at = ps->arena.len;
        for (size_t i = 0; i < len; i++)
            ps->arena.len += (size_t)byte_level_utf8((uint8_t)ps->arena.data[off + i], ps->arena.data + ps->arena.len);
        ps->spans.data[k] = (int)at;
        ps->spans.data[k + 1] = (int)(ps->arena.len - at);
    }
}

// byte-level symbols back to their bytes (later steps only split, so every character is a symbol)
static void unmap_step(Pieces* ps) {
    for (size_t k = 0; k < ps->spans.len; k += 2) {
        size_t off = (size_t)ps->spans.data[k], len = (size_t)ps->spans.data[k + 1];
        arena_reserve(&ps->arena, len);
        size_t at = ps->arena.len;
        for (size_t i = 0; i < len;) {
            utf8proc_int32_t c;
            utf8proc_ssize_t n = utf8proc_iterate((const uint8_t*)ps->arena.data + off + i, (utf8proc_ssize_t)(len - i), &c);
            if (n <= 0) n = 1, c = (uint8_t)ps->arena.data[off + i];  // not reached: the text was mapped
            int b = byte_level_byte(c);
            ps->arena.data[ps->arena.len++] = (char)(b >= 0 ? b : '?');
            i += (size_t)n;
        }
        ps->spans.data[k] = (int)at;
        ps->spans.data[k + 1] = (int)(ps->arena.len - at);
    }
}

void text_pre_tokenize(const TextPipeline* p, const char* s, size_t len, Pieces* out) {
    out->arena.len = 0;
    out->spans.len = 0;
    if (len == 0) return;
    bytevec_append(&out->arena, s, len);
    span_push(&out->spans, 0, len);
    IntVec next = {0};
    Parts parts = {0};
    pcre2_match_data* md = pcre2_match_data_create(64, NULL);
    for (int i = 0; i < p->n_pre; i++) {
        if (p->pre[i].kind == PRE_BYTE_LEVEL) byte_level_step(&p->pre[i], out, &next, &parts, md);
        else split_step(&p->pre[i], out, &next, &parts, md);
    }
    if (p->byte_level_at >= 0) unmap_step(out);
    pcre2_match_data_free(md);
    free(next.data);
    free(parts.at);
}

void pieces_free(Pieces* ps) {
    free(ps->arena.data);
    free(ps->spans.data);
    memset(ps, 0, sizeof *ps);
}

// ---------------------------------------------------------------------------------------------
// normalizers

static void append_cp(ByteVec* out, int32_t c) {
    uint8_t buf[4];
    utf8proc_ssize_t n = utf8proc_encode_char(c, buf);
    bytevec_append(out, (const char*)buf, (size_t)n);
}

static int normalize_step(const Normalizer* n, const char* s, size_t len, ByteVec* out, Err* e) {
    out->len = 0;
    bytevec_append(out, "", 0);
    switch (n->kind) {
    case NORM_NFC:
    case NORM_NFD:
    case NORM_NFKC:
    case NORM_NFKD: {
        bool ascii = true;
        for (size_t i = 0; i < len && ascii; i++) ascii = (uint8_t)s[i] < 0x80;
        if (ascii || len == 0) {  // ASCII is its own normal form in all four
            bytevec_append(out, s, len);
            return 0;
        }
        int flags = UTF8PROC_STABLE | (n->kind == NORM_NFC || n->kind == NORM_NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
                    (n->kind == NORM_NFKC || n->kind == NORM_NFKD ? UTF8PROC_COMPAT : 0);
        utf8proc_uint8_t* mapped;
        utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t*)s, (utf8proc_ssize_t)len, &mapped, flags);
        if (m < 0) return err_set(e, "normalisation failed: %s", utf8proc_errmsg(m));
        bytevec_append(out, (const char*)mapped, (size_t)m);
        free(mapped);
        return 0;
    }
    case NORM_LOWERCASE:
        for (size_t i = 0; i < len;) {
            utf8proc_int32_t c;
            utf8proc_ssize_t k = utf8proc_iterate((const uint8_t*)s + i, (utf8proc_ssize_t)(len - i), &c);
            if (k <= 0) return err_set(e, "invalid UTF-8 while lowercasing");
            if (c == 0x130) bytevec_append(out, "i\xcc\x87", 3);  // the one unconditional multi-character lowercase
            else append_cp(out, utf8proc_tolower(c));
            i += (size_t)k;
        }
        return 0;
    case NORM_STRIP: {
        size_t a = 0, b = len;
        utf8proc_int32_t c;
        while (n->left && a < b) {
            utf8proc_ssize_t k = utf8proc_iterate((const uint8_t*)s + a, (utf8proc_ssize_t)(b - a), &c);
            if (k <= 0 || !is_white_space(c)) break;
            a += (size_t)k;
        }
        while (n->right && b > a) {
            size_t q = b - 1;
            while (q > a && ((uint8_t)s[q] & 0xc0) == 0x80) q--;
            utf8proc_ssize_t k = utf8proc_iterate((const uint8_t*)s + q, (utf8proc_ssize_t)(b - q), &c);
            if (k <= 0 || !is_white_space(c)) break;
            b = q;
        }
        bytevec_append(out, s + a, b - a);
        return 0;
    }
    case NORM_PREPEND:
        if (len) bytevec_append(out, n->text, strlen(n->text));
        bytevec_append(out, s, len);
        return 0;
    case NORM_REPLACE: {
        Parts parts = {0};
        pcre2_match_data* md = pcre2_match_data_create(64, NULL);
        regex_parts(n->regex, md, s, len, &parts);
        for (int i = 0; i < parts.n; i++) {
            if (parts.at[i].match) bytevec_append(out, n->text, strlen(n->text));
            else bytevec_append(out, s + parts.at[i].start, parts.at[i].end - parts.at[i].start);
        }
        pcre2_match_data_free(md);
        free(parts.at);
        return 0;
    }
    }
    return 0;
}

int text_normalize(const TextPipeline* p, const char* s, size_t len, ByteVec* out, Err* e) {
    out->len = 0;
    bytevec_append(out, s, len);
    ByteVec tmp = {0};
    for (int i = 0; i < p->n_norm; i++) {
        if (normalize_step(&p->norm[i], out->data, out->len, &tmp, e)) {
            free(tmp.data);
            return -1;
        }
        ByteVec x = *out;
        *out = tmp;
        tmp = x;
    }
    free(tmp.data);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json

static const char* type_of(const cJSON* o) {
    const cJSON* t = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "type") : NULL;
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static bool flag(const cJSON* o, const char* key, bool absent) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : absent;
}

// a {"String": s} or {"Regex": r} pattern, compiled
static void* pattern_of(const cJSON* o, const char* what, const char* source, Err* e) {
    const cJSON* pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    const cJSON* str = pat ? cJSON_GetObjectItemCaseSensitive(pat, "String") : NULL;
    const cJSON* rx = pat ? cJSON_GetObjectItemCaseSensitive(pat, "Regex") : NULL;
    if (cJSON_IsString(str)) return literal_regex(str->valuestring, source, e);
    if (cJSON_IsString(rx)) return text_regex_compile(rx->valuestring, source, e);
    err_set(e, "%s: %s needs a pattern {\"String\": ...} or {\"Regex\": ...}", source, what);
    return NULL;
}

static int add_norm(TextPipeline* p, const cJSON* o, const char* source, int depth, Err* e) {
    const char* type = type_of(o);
    if (!type) return err_set(e, "%s: a normalizer without a type", source);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON* list = cJSON_GetObjectItemCaseSensitive(o, "normalizers");
        if (!cJSON_IsArray(list)) return err_set(e, "%s: normalizer Sequence needs a list 'normalizers'", source);
        if (depth > 8) return err_set(e, "%s: normalizer Sequences nested more than 8 deep", source);
        const cJSON* it;
        cJSON_ArrayForEach(it, list) if (add_norm(p, it, source, depth + 1, e)) return -1;
        return 0;
    }
    Normalizer n = {0};
    if (strcmp(type, "NFC") == 0) n.kind = NORM_NFC;
    else if (strcmp(type, "NFD") == 0) n.kind = NORM_NFD;
    else if (strcmp(type, "NFKC") == 0) n.kind = NORM_NFKC;
    else if (strcmp(type, "NFKD") == 0) n.kind = NORM_NFKD;
    else if (strcmp(type, "Lowercase") == 0) n.kind = NORM_LOWERCASE;
    else if (strcmp(type, "Strip") == 0) {
        n.kind = NORM_STRIP;
        n.left = flag(o, "strip_left", true);
        n.right = flag(o, "strip_right", true);
    } else if (strcmp(type, "Prepend") == 0) {
        const cJSON* pre = cJSON_GetObjectItemCaseSensitive(o, "prepend");
        if (!cJSON_IsString(pre)) return err_set(e, "%s: normalizer Prepend needs a string 'prepend'", source);
        n.kind = NORM_PREPEND;
        n.text = strdup(pre->valuestring);
    } else if (strcmp(type, "Replace") == 0) {
        const cJSON* content = cJSON_GetObjectItemCaseSensitive(o, "content");
        if (!cJSON_IsString(content)) return err_set(e, "%s: normalizer Replace needs a string 'content'", source);
        n.kind = NORM_REPLACE;
        if (!(n.regex = pattern_of(o, "normalizer Replace", source, e))) return -1;
        n.text = strdup(content->valuestring);
    } else {
        return err_set(e, "%s: normalizer '%s' is not supported (NFC, NFD, NFKC, NFKD, Lowercase, Strip, Prepend, Replace, "
                          "Sequence)", source, type);
    }
    p->norm = xrealloc(p->norm, sizeof(Normalizer) * (size_t)(p->n_norm + 1));
    p->norm[p->n_norm++] = n;
    return 0;
}

static int behavior_of(const cJSON* o, SplitBehavior* b, const char* what, const char* source, Err* e) {
    static const char* names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, "behavior");
    if (!v) return 0;  // the default the caller set
    for (int i = 0; i < 5; i++)
        if (cJSON_IsString(v) && strcmp(v->valuestring, names[i]) == 0) {
            *b = (SplitBehavior)i;
            return 0;
        }
    return err_set(e, "%s: %s behavior '%s' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous",
                   source, what, cJSON_IsString(v) ? v->valuestring : "?");
}

static const char* GPT2_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int add_pre(TextPipeline* p, const cJSON* o, const char* source, int depth, Err* e) {
    const char* type = type_of(o);
    if (!type) return err_set(e, "%s: a pre_tokenizer without a type", source);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON* list = cJSON_GetObjectItemCaseSensitive(o, "pretokenizers");
        if (!cJSON_IsArray(list)) return err_set(e, "%s: pre_tokenizer Sequence needs a list 'pretokenizers'", source);
        if (depth > 8) return err_set(e, "%s: pre_tokenizer Sequences nested more than 8 deep", source);
        const cJSON* it;
        cJSON_ArrayForEach(it, list) if (add_pre(p, it, source, depth + 1, e)) return -1;
        return 0;
    }
    PreTokenizer t = {0};
    t.behavior = SPLIT_ISOLATED;
    if (strcmp(type, "Split") == 0) {
        t.kind = PRE_SPLIT;
        t.invert = flag(o, "invert", false);
        if (!cJSON_GetObjectItemCaseSensitive(o, "behavior")) return err_set(e, "%s: pre_tokenizer Split needs a behavior", source);
        if (behavior_of(o, &t.behavior, "Split", source, e) || !(t.regex = pattern_of(o, "pre_tokenizer Split", source, e))) return -1;
    } else if (strcmp(type, "Digits") == 0) {
        t.kind = PRE_DIGITS;
        t.individual_digits = flag(o, "individual_digits", false);
    } else if (strcmp(type, "Punctuation") == 0) {
        t.kind = PRE_PUNCTUATION;
        if (behavior_of(o, &t.behavior, "Punctuation", source, e)) return -1;
    } else if (strcmp(type, "Whitespace") == 0) {
        t.kind = PRE_WHITESPACE;
        // \w+|[^\w\s]+ in the `regex` crate (not Oniguruma): its \w is Alphabetic, marks, Nd, Pc and Join_Control
        if (!(t.regex = text_regex_compile("[" REGEX_CRATE_WORD "]+|[^" REGEX_CRATE_WORD "\\p{White_Space}]+", source, e))) return -1;
    } else if (strcmp(type, "WhitespaceSplit") == 0) {
        t.kind = PRE_WHITESPACE_SPLIT;
    } else if (strcmp(type, "ByteLevel") == 0) {
        if (p->byte_level_at >= 0) return err_set(e, "%s: pre_tokenizer has two ByteLevel steps", source);
        t.kind = PRE_BYTE_LEVEL;
        t.add_prefix_space = flag(o, "add_prefix_space", true);
        t.use_regex = flag(o, "use_regex", true);
        if (t.use_regex && !(t.regex = text_regex_compile(GPT2_SPLIT, source, e))) return -1;
        p->byte_level_at = p->n_pre;
    } else {
        return err_set(e, "%s: pre_tokenizer '%s' is not supported (Split, Digits, Punctuation, Whitespace, WhitespaceSplit, "
                          "ByteLevel, Sequence)", source, type);
    }
    p->pre = xrealloc(p->pre, sizeof(PreTokenizer) * (size_t)(p->n_pre + 1));
    p->pre[p->n_pre++] = t;
    return 0;
}

int text_pipeline_parse(TextPipeline* p, const cJSON* normalizer, const cJSON* pre_tokenizer, const char* source, Err* e) {
    memset(p, 0, sizeof *p);
    p->byte_level_at = -1;
    int rc = 0;
    if (normalizer && !cJSON_IsNull(normalizer)) rc = add_norm(p, normalizer, source, 0, e);
    if (!rc && pre_tokenizer && !cJSON_IsNull(pre_tokenizer)) rc = add_pre(p, pre_tokenizer, source, 0, e);
    if (rc) text_pipeline_free(p);
    return rc;
}

void text_pipeline_free(TextPipeline* p) {
    for (int i = 0; i < p->n_norm; i++) {
        free(p->norm[i].text);
        text_regex_free(p->norm[i].regex);
    }
    for (int i = 0; i < p->n_pre; i++) text_regex_free(p->pre[i].regex);
    free(p->norm);
    free(p->pre);
    memset(p, 0, sizeof *p);
    p->byte_level_at = -1;
}
