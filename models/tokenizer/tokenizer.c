// tokenizer.c: encode and decode (see tokenizer.h). Loading is in tokenizer_load.c.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

// ---------------------------------------------------------------------------------------------
// BPE on one piece: merge the adjacent pair of lowest rank (leftmost first) until none applies,
// with a binary heap of candidate pairs checked lazily, as tokenizers' Word::merge_all does.

typedef struct {
    int64_t rank;
    int pos;  // index of the left symbol in the piece's original order
} Candidate;

typedef struct {
    int* id;    // (n) current token id of each symbol slot
    int* next;  // (n) next live slot or -1
    int* prev;  // (n)
    Candidate* heap;
    int heap_len, cap;
} BpeWork;

static int cand_less(Candidate a, Candidate b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(BpeWork* w, Candidate c) {
    if (w->heap_len == w->cap) FATAL("BPE candidate heap full (%d): the 2n - 2 bound is broken", w->cap);
    int i = w->heap_len++;
    w->heap[i] = c;
    while (i > 0 && cand_less(w->heap[i], w->heap[(i - 1) / 2])) {
        Candidate tmp = w->heap[i];
        w->heap[i] = w->heap[(i - 1) / 2];
        w->heap[(i - 1) / 2] = tmp;
        i = (i - 1) / 2;
    }
}

static Candidate heap_pop(BpeWork* w) {
    Candidate top = w->heap[0];
    w->heap[0] = w->heap[--w->heap_len];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->heap_len && cand_less(w->heap[l], w->heap[m])) m = l;
        if (r < w->heap_len && cand_less(w->heap[r], w->heap[m])) m = r;
        if (m == i) break;
        Candidate tmp = w->heap[i];
        w->heap[i] = w->heap[m];
        w->heap[m] = tmp;
        i = m;
    }
    return top;
}

static int merge_lookup(const Tokenizer* t, int a, int b, int64_t* rank, int* merged) {
    int64_t v;
    if (!u64map_get(&t->merges, (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1, &v)) return 0;
    *rank = v >> 32;
    *merged = (int)(v & 0xffffffff);
    return 1;
}

static void push_pair(const Tokenizer* t, BpeWork* w, int left) {
    int right = w->next[left];
    int64_t rank;
    int merged;
    if (right >= 0 && merge_lookup(t, w->id[left], w->id[right], &rank, &merged)) heap_push(w, (Candidate){rank, left});
}

// the initial symbols of a piece whose vocabulary lacks some bytes, as BPE::merge_word makes them: a
// missing byte's symbol becomes its <0xNN> tokens (byte_fallback, when all exist), else unk_token (runs
// fused with fuse_unk; a pending unk is added after any fallback tokens, as the library does), else
// nothing. Returns the count written to sym (room for 2n).
static int initial_symbols(const Tokenizer* t, const uint8_t* bytes, int n, int* sym) {
    int m = 0;
    bool unk_pending = false;
    for (int i = 0; i < n; i++) {
        int id = t->byte_token[bytes[i]];
        if (id >= 0) {
            if (unk_pending) sym[m++] = t->unk_id, unk_pending = false;
            sym[m++] = id;
        } else if (t->byte_fallback && t->fallback_n[bytes[i]] > 0) {
            for (int k = 0; k < t->fallback_n[bytes[i]]; k++) sym[m++] = t->fallback_ids[bytes[i]][k];
        } else if (t->unk_id >= 0) {
            if (unk_pending && !t->fuse_unk) sym[m++] = t->unk_id;
            unk_pending = true;
        }
    }
    if (unk_pending) sym[m++] = t->unk_id;
    return m;
}

// ignore_merges: the id of the piece as one whole token, or -1
static int whole_token(const Tokenizer* t, const uint8_t* bytes, int n) {
    char small[256] = {0};
    char* buf = 2 * (size_t)n <= sizeof small ? small : xmalloc(2 * (size_t)n);
    int len = 0;
    for (int i = 0; i < n; i++) len += byte_level_utf8(bytes[i], buf + len);
    int id = strmap_get(&t->vocab, buf, len);
    if (buf != small) free(buf);
    return id;
}

static void bpe_piece(const Tokenizer* t, const uint8_t* bytes, int n, IntVec* out) {
    if (n == 0) return;
    if (n == 1 && t->all_bytes) {
        intvec_push(out, t->byte_token[bytes[0]]);
        return;
    }
    if (t->ignore_merges) {
        int id = whole_token(t, bytes, n);
        if (id >= 0) {
            intvec_push(out, id);
            return;
        }
    }
    // symbols: n, or up to 2n with byte fallback. The lazy heap holds up to 2m - 2 candidates: m - 1
    // first pairs, then two new ones per merge, one popped each (a 64-entry heap for 64-byte pieces
    // overflowed on ordinary ASCII once)
    int cap = t->all_bytes ? n : 2 * n;
    int small[4 * 64];
    Candidate small_heap[2 * 64];
    BpeWork w;
    int* mem = cap <= 64 ? small : xmalloc(sizeof(int) * 4 * (size_t)cap);
    w.id = mem;
    w.next = mem + cap;
    w.prev = mem + 2 * cap;
    w.heap = cap <= 64 ? small_heap : xmalloc(sizeof(Candidate) * (size_t)cap * 2);
    w.cap = cap <= 64 ? 2 * 64 : 2 * cap;
    w.heap_len = 0;
    int m = n;
    if (t->all_bytes)
        for (int i = 0; i < n; i++) w.id[i] = t->byte_token[bytes[i]];
    else
        m = initial_symbols(t, bytes, n, w.id);
    for (int i = 0; i < m; i++) {
        w.next[i] = i + 1 < m ? i + 1 : -1;
        w.prev[i] = i - 1;
    }
    for (int i = 0; i + 1 < m; i++) push_pair(t, &w, i);
    while (w.heap_len > 0) {
        Candidate c = heap_pop(&w);
        int left = c.pos, right = w.next[left];
        int64_t rank;
        int merged;
        // stale: the left symbol was merged away (id -1), or its pair changed since it was pushed
        if (w.id[left] < 0 || right < 0 || !merge_lookup(t, w.id[left], w.id[right], &rank, &merged) ||
            rank != c.rank)
            continue;
        w.id[left] = merged;
        w.id[right] = -1;
        w.next[left] = w.next[right];
        if (w.next[right] >= 0) w.prev[w.next[right]] = left;
        if (w.prev[left] >= 0) push_pair(t, &w, w.prev[left]);
        push_pair(t, &w, left);
    }
    for (int i = m > 0 ? 0 : -1; i >= 0; i = w.next[i]) intvec_push(out, w.id[i]);
    if (mem != small) free(mem);
    if (w.heap != small_heap) free(w.heap);
}

// ---------------------------------------------------------------------------------------------
// one stretch of text that holds no added token: normalise, pre-tokenize, BPE each piece

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// WordLevel: whitespace-separated words, each one id (unk when unknown)
static void encode_words(const Tokenizer* t, const char* s, size_t len, IntVec* out) {
    for (size_t i = 0; i < len;) {
        while (i < len && is_space(s[i])) i++;
        size_t start = i;
        while (i < len && !is_space(s[i])) i++;
        if (i == start) break;
        int id = strmap_get(&t->vocab, s + start, (int)(i - start));
        intvec_push(out, id >= 0 ? id : t->unk_id);
    }
}

// the Qwen layout on normalised text: one regex, each match and each gap a piece
static void encode_direct(const Tokenizer* t, const char* s, size_t len, IntVec* out) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(t->direct_split, NULL);
    TextRegexIter it = {0};
    size_t prev = 0, start, end;
    while (text_regex_next(t->direct_split, md, s, len, &it, &start, &end)) {
        if (start > prev) bpe_piece(t, (const uint8_t*)s + prev, (int)(start - prev), out);  // the gap is a piece too
        bpe_piece(t, (const uint8_t*)s + start, (int)(end - start), out);
        prev = end;
    }
    if (prev < len) bpe_piece(t, (const uint8_t*)s + prev, (int)(len - prev), out);
    pcre2_match_data_free(md);
}

// pre-tokenize and BPE a normalised stretch
static void encode_pieces(const Tokenizer* t, const char* s, size_t len, IntVec* out) {
    Pieces ps = {0};
    text_pre_tokenize(&t->pipe, s, len, &ps);
    for (size_t k = 0; k < ps.spans.len; k += 2)
        bpe_piece(t, (const uint8_t*)ps.arena.data + ps.spans.data[k], ps.spans.data[k + 1], out);
    pieces_free(&ps);
}

static const AddedToken* added_at(const Tokenizer* t, const char* text, size_t len, size_t i, bool normalized);

static int encode_plain(const Tokenizer* t, const char* text, size_t len, IntVec* out, Err* e) {
    if (len == 0) return 0;
    if (t->kind == TOKENIZER_WORD_LEVEL) {
        encode_words(t, text, len, out);
        return 0;
    }
    ByteVec norm = {0};
    if (t->pipe.n_norm) {
        if (text_normalize(&t->pipe, text, len, &norm, e)) {
            free(norm.data);
            return -1;
        }
        text = norm.data, len = norm.len;
    }
    if (t->direct) {
        encode_direct(t, text, len, out);
    } else {  // the added tokens matched on normalised text split it further
        size_t plain = 0;
        for (size_t i = 0; t->any_normalized && i < len; i++) {
            const AddedToken* a = added_at(t, text, len, i, true);
            if (!a) continue;
            encode_pieces(t, text + plain, i - plain, out);
            intvec_push(out, a->id);
            i += (size_t)a->len - 1;
            plain = i + 1;
        }
        encode_pieces(t, text + plain, len - plain, out);
    }
    free(norm.data);
    return 0;
}

// The longest added token (of those matched on raw text, or on normalised text) that starts at
// text[i], or NULL.
static const AddedToken* added_at(const Tokenizer* t, const char* text, size_t len, size_t i, bool normalized) {
    const AddedToken* best = NULL;
    for (int k = 0; k < t->n_added; k++) {
        const AddedToken* a = &t->added[k];
        if (a->normalized == normalized && (size_t)a->len <= len - i && a->content[0] == text[i] && memcmp(a->content, text + i, (size_t)a->len) == 0 &&
            (!best || a->len > best->len))
            best = a;
    }
    return best;
}

int tokenizer_encode(const Tokenizer* t, const char* text, size_t len, IntVec* out, Err* e) {
    long bad = utf8_invalid_offset(text, len);
    if (bad >= 0) return err_set(e, "invalid UTF-8 at byte %ld", bad);
    size_t plain_start = 0;
    for (size_t i = 0; i < len; i++) {
        const AddedToken* a = t->n_added ? added_at(t, text, len, i, false) : NULL;
        if (!a) continue;
        if (encode_plain(t, text + plain_start, i - plain_start, out, e)) return -1;
        intvec_push(out, a->id);
        i += (size_t)a->len - 1;
        plain_start = i + 1;
    }
    return encode_plain(t, text + plain_start, len - plain_start, out, e);
}

// a token's text through the ByteLevel decoder: every character a byte symbol -> those bytes, else the
// text's own UTF-8 (as the library's decoder falls back)
static void decode_symbols(const char* text, size_t len, ByteVec* out) {
    const uint8_t* s = (const uint8_t*)text;
    size_t start = out->len;
    for (utf8proc_ssize_t at = 0; at < (utf8proc_ssize_t)len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(s + at, (utf8proc_ssize_t)len - at, &cp);
        int byte = step > 0 ? byte_level_byte(cp) : -1;
        if (byte < 0) {
            out->len = start;
            bytevec_append(out, text, len);
            return;
        }
        char b = (char)byte;
        bytevec_append(out, &b, 1);
        at += step;
    }
}

// "<0xNN>" -> NN, else -1
static int fallback_byte(const char* s, int len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

// a run of <0xNN> bytes through ByteFallback (valid UTF-8: one token; else U+FFFD per byte), then ByteLevel
static void decode_fallback_run(ByteVec* run, ByteVec* out) {
    if (run->len == 0) return;
    if (utf8_invalid_offset(run->data, run->len) < 0) decode_symbols(run->data, run->len, out);
    else
        for (size_t i = 0; i < run->len; i++) bytevec_append(out, "\xef\xbf\xbd", 3);
    run->len = 0;
}

int tokenizer_decode(const Tokenizer* t, const int* ids, size_t n, ByteVec* out, Err* e) {
    ByteVec run = {0};
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= t->n_ids || !t->tokens[id]) {
            free(run.data);
            return err_set(e, "token id %d is not in the vocabulary", id);
        }
        int is_added = 0;
        for (int k = 0; k < t->n_added && !is_added; k++) is_added = t->added[k].id == id;
        int fb = t->decode_byte_fallback && !is_added ? fallback_byte(t->tokens[id], t->token_lens[id]) : -1;
        if (fb >= 0) {
            char b = (char)fb;
            bytevec_append(&run, &b, 1);
            continue;
        }
        decode_fallback_run(&run, out);
        if (is_added || t->kind == TOKENIZER_WORD_LEVEL) {  // WordLevel decodes as words joined by spaces
            if (t->kind == TOKENIZER_WORD_LEVEL && i > 0) bytevec_append(out, " ", 1);
            bytevec_append(out, t->tokens[id], (size_t)t->token_lens[id]);
            continue;
        }
        decode_symbols(t->tokens[id], (size_t)t->token_lens[id], out);
    }
    decode_fallback_run(&run, out);
    free(run.data);
    return 0;
}
