// cmd_tokenize.c: arbor tokenize — text to a token shard (.txt: the whole file is one document;
// .jsonl: one document per line, from a string field), or stdin to ids (--ids) and ids to text
// (--decode) for debugging and scripting.
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/clock.h"
#include "../models/json_text.h"
#include "../models/progress.h"
#include "../models/token_shard.h"
#include "../models/tokenizer/tokenizer.h"
#include "../models/tokenizer/unicode_age.h"
#include "../models/tokenizer/utf8_repair.h"
#include "commands.h"

// --invalid-utf8: what a document that is not UTF-8 gets
typedef enum { BAD_UTF8_ERROR, BAD_UTF8_REPLACE, BAD_UTF8_SKIP } BadUtf8;

typedef struct {
    BadUtf8 policy;
    long docs_bad, subparts_replaced;
    ByteVec repaired;  // scratch for replace
} Utf8Policy;

static int line_of(const char* text, size_t offset) {
    int line = 1;
    for (size_t i = 0; i < offset; i++) line += text[i] == '\n';
    return line;
}

// The text to tokenize of a document (s, n), or NULL to skip it (*len set); -1 on an error naming file and
// line (line 0: the document is the whole file, so the line is the one holding the bad byte)
static int utf8_apply(Utf8Policy* u, const char* s, size_t n, const char* file, int line, const char** text, size_t* len, Err* e) {
    *text = s, *len = n;
    long bad = utf8_invalid_offset(s, n);
    if (bad < 0) return 0;
    u->docs_bad++;
    if (u->policy == BAD_UTF8_ERROR)
        return err_set(e, "%s:%d: not UTF-8 (byte %ld of the text; --invalid-utf8 replace or skip to go on)", file,
                       line ? line : line_of(s, (size_t)bad), bad);
    if (u->policy == BAD_UTF8_SKIP) return *text = NULL, 0;
    u->repaired.len = 0;
    u->subparts_replaced += utf8_replace_invalid(s, n, &u->repaired);
    *text = u->repaired.data, *len = u->repaired.len;
    return 0;
}

static char* read_stdin(size_t* len) {
    ByteVec v = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) bytevec_append(&v, buf, n);
    if (!v.data) bytevec_append(&v, "", 0);
    *len = v.len;
    return v.data;
}


static int print_ids(const Tokenizer* t, UnassignedScan* u, Utf8Policy* p, Err* e) {
    size_t raw_len, len;
    char* raw = read_stdin(&raw_len);
    const char* text;
    IntVec ids = {0};
    int rc = utf8_apply(p, raw, raw_len, "<stdin>", 0, &text, &len, e);
    if (!rc && text) unassigned_scan(u, text, len);
    if (!rc && text && tokenizer_encode(t, text, len, &ids, e)) rc = err_prefix(e, "<stdin>");
    if (!rc) {
        for (size_t i = 0; i < ids.len; i++) printf("%s%d", i ? " " : "", ids.data[i]);
        printf("\n");
    }
    free(ids.data);
    free(raw);
    return rc;
}

static int print_text(const Tokenizer* t, Err* e) {
    size_t len;
    char* text = read_stdin(&len);
    int* ids;
    int n;
    int rc = parse_token_list(text, &ids, &n, e);
    free(text);
    if (rc) return rc;
    ByteVec out = {0};
    rc = tokenizer_decode(t, ids, (size_t)n, &out, e);
    if (!rc) fwrite(out.data, 1, out.len, stdout);
    free(out.data);
    free(ids);
    return rc;
}

static int tokenize_txt(const Tokenizer* t, const char* in, ShardWriter* w, bool eod, UnassignedScan* u, Utf8Policy* p, Err* e) {
    size_t raw_len, len;
    char* raw = file_read_all(in, &raw_len, e);
    if (!raw) return -1;
    const char* text;
    int rc = utf8_apply(p, raw, raw_len, in, 0, &text, &len, e);
    IntVec ids = {0};
    if (!rc && text) {
        unassigned_scan(u, text, len);
        rc = tokenizer_encode(t, text, len, &ids, e) || shard_writer_append(w, ids.data, ids.len, e) || shard_writer_end_doc(w, eod, e);
    }
    free(ids.data);
    free(raw);
    return rc ? -1 : 0;
}

static int tokenize_jsonl(const Tokenizer* t, const char* in, const char* field, ShardWriter* w, bool eod, UnassignedScan* u,
                          Utf8Policy* up, Err* e) {
    size_t len;
    char* text = file_read_all(in, &len, e);
    if (!text) return -1;
    Progress prog;
    progress_begin(&prog, "tokenize", "MB", 1e-6, (double)len, 64e6);
    IntVec ids = {0};
    ByteVec doc_text = {0};
    int rc = 0, line = 0;
    for (char* p = text; p < text + len && !rc;) {
        char* nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
        line++;
        if (n > 0 && !(n == 1 && p[0] == '\r')) {
            cJSON* doc = cJSON_ParseWithLength(p, n);  // validates; the text itself is read with its length (it may hold NUL)
            ids.len = 0, doc_text.len = 0;
            int found = doc ? json_object_string_field(p, n, field, &doc_text) : -1;
            const char* doc_bytes = NULL;
            size_t text_len = 0;
            if (!doc || found < 0) rc = err_set(e, "%s:%d: malformed JSON", in, line);
            else if (!found || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, field)))
                rc = err_set(e, "%s:%d: no string field '%s'", in, line, field);
            else
                rc = utf8_apply(up, doc_text.data ? doc_text.data : "", doc_text.len, in, line, &doc_bytes, &text_len, e);
            if (!rc && doc_bytes) {  // NULL: skipped
                unassigned_scan(u, doc_bytes, text_len);
                if (tokenizer_encode(t, doc_bytes, text_len, &ids, e)) rc = err_prefix(e, "%s:%d", in, line);
                else rc = shard_writer_append(w, ids.data, ids.len, e) || shard_writer_end_doc(w, eod, e) ? -1 : 0;
            }
            cJSON_Delete(doc);
        }
        p += n + 1;
        progress_update(&prog, (double)(p - text));
    }
    if (!rc) progress_end(&prog);
    free(doc_text.data);
    free(ids.data);
    free(text);
    return rc;
}

// characters the regexes' Unicode tables do not know: HF tokenizers (newer tables) may split them otherwise
static void warn_unassigned(const UnassignedScan* u) {
    if (u->count)
        fprintf(stderr,
                "tokenize: warning: %ld character%s (the first U+%04X) unassigned in PCRE2's Unicode %s tables; HF tokenizers' "
                "newer tables may make them letters or digits and split them differently (README: Tokenizers)\n",
                u->count, u->count == 1 ? "" : "s", u->first, u->version);
}

static void report_utf8(const Utf8Policy* p) {
    if (p->docs_bad && p->policy == BAD_UTF8_REPLACE)
        fprintf(stderr, "tokenize: %ld document%s not UTF-8: %ld ill-formed subpart%s replaced with U+FFFD\n", p->docs_bad,
                p->docs_bad == 1 ? "" : "s", p->subparts_replaced, p->subparts_replaced == 1 ? "" : "s");
    if (p->docs_bad && p->policy == BAD_UTF8_SKIP)
        fprintf(stderr, "tokenize: %ld document%s not UTF-8: left out\n", p->docs_bad, p->docs_bad == 1 ? "" : "s");
}

int cmd_tokenize(int argc, char** argv) {
    Option opts[] = {
        {"tokenizer", "DIR", "directory with tokenizer.json (or vocab.json + merges.txt)", NULL},
        {"in", "FILE", "text to tokenize: .txt (one document) or .jsonl (one per line)", NULL},
        {"out", "SHARD", "token shard to write", NULL},
        {"eod", NULL, "append the end-of-document token (<|endoftext|>) after each document", NULL},
        {"field", "NAME", "the .jsonl field holding the text", "text"},
        {"vocab-size", "N", "vocabulary size recorded in the shard (default: the tokenizer's)", NULL},
        {"ids", NULL, "read text on stdin, print its ids on one line", NULL},
        {"decode", NULL, "read ids on stdin, print their text", NULL},
        {"invalid-utf8", "error|replace|skip", "a document that is not UTF-8: stop with its line, replace each ill-formed subpart "
                                               "with U+FFFD (as Python's errors='replace'), or leave the document out", "error"},
    };
    Command cmd = {"tokenize", "Tokenize text into a token shard, or between text and ids on stdin/stdout.", opts,
                   sizeof opts / sizeof opts[0]};
    int code;
    if (command_start(&cmd, argc, argv, &code)) return code;
    Err e;
    const char *dir, *in, *out;
    if (arg_required(&cmd, "tokenizer", &dir, &e)) return fail(&e);
    Tokenizer t;
    if (tokenizer_load(&t, dir, &e)) return fail(&e);
    Utf8Policy up = {BAD_UTF8_ERROR, 0, 0, {0}};
    const char* policy = arg_str(&cmd, "invalid-utf8");
    if (!strcmp(policy, "replace")) up.policy = BAD_UTF8_REPLACE;
    else if (!strcmp(policy, "skip")) up.policy = BAD_UTF8_SKIP;
    else if (strcmp(policy, "error")) {
        tokenizer_free(&t);
        err_set(&e, "tokenize: --invalid-utf8 must be error, replace or skip, not '%s'", policy);
        return fail(&e);
    }
    UnassignedScan u;
    if (unassigned_scan_open(&u, &e)) return tokenizer_free(&t), fail(&e);
    int rc;
    if (arg_flag(&cmd, "ids") || arg_flag(&cmd, "decode")) {
        rc = arg_flag(&cmd, "ids") ? print_ids(&t, &u, &up, &e) : print_text(&t, &e);
        tokenizer_free(&t);
        if (!rc) warn_unassigned(&u), report_utf8(&up);
        free(up.repaired.data);
        unassigned_scan_close(&u);
        return rc ? fail(&e) : 0;
    }
    long vocab = t.n_ids;
    if (arg_required(&cmd, "in", &in, &e) || arg_required(&cmd, "out", &out, &e) ||
        (arg_str(&cmd, "vocab-size") && arg_long(&cmd, "vocab-size", t.n_ids, 1L << 30, &vocab, &e))) {
        tokenizer_free(&t);
        return fail(&e);
    }
    bool eod = arg_flag(&cmd, "eod");
    if (eod && t.eod_id < 0) {
        tokenizer_free(&t);
        err_set(&e, "%s: --eod: the tokenizer has no <|endoftext|> token", t.source);
        return fail(&e);
    }
    ShardWriter w;
    double t0 = now_seconds();
    size_t in_len = strlen(in);
    bool jsonl = in_len > 6 && strcmp(in + in_len - 6, ".jsonl") == 0;
    rc = shard_writer_open(&w, out, (int)vocab, t.eod_id, &e);
    if (!rc) {
        rc = jsonl ? tokenize_jsonl(&t, in, arg_str(&cmd, "field"), &w, eod, &u, &up, &e) : tokenize_txt(&t, in, &w, eod, &u, &up, &e);
        if (rc) shard_writer_abort(&w);
        else rc = shard_writer_close(&w, &e);
    }
    tokenizer_free(&t);
    if (!rc) warn_unassigned(&u), report_utf8(&up);
    free(up.repaired.data);
    unassigned_scan_close(&u);
    if (rc) return fail(&e);
    double dt = now_seconds() - t0;
    fprintf(stderr, "tokenize: %s -> %s: %llu documents, %llu tokens (%d-byte), %.1f s\n", in, out,
            (unsigned long long)w.n_docs, (unsigned long long)w.n_tokens, w.token_bytes, dt);
    return 0;
}
