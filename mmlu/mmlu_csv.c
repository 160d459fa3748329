// mmlu_csv.c: see mmlu_csv.h.
#include "mmlu_csv.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>

#include "../models/file_io.h"
#include "../models/tokenizer/tokenizer.h"

typedef struct {
    MmluFile* out;
    int cap;
    char* fields[6];
    int n_fields;
    int line;          // current line in the file
    int record_line;   // line where the current record started (0 between records)
    const char* path;
    Err* e;
    int failed;
} Reader;

static void on_field(void* data, size_t len, void* ctx) {
    Reader* r = ctx;
    if (r->failed) return;
    if (r->n_fields < 6) {
        char* s = xmalloc(len + 1);
        memcpy(s, data, len);
        s[len] = 0;
        r->fields[r->n_fields] = s;
    }
    r->n_fields++;
}

static void clear_fields(Reader* r) {
    for (int i = 0; i < r->n_fields && i < 6; i++) free(r->fields[i]);
    r->n_fields = 0;
    r->record_line = 0;
}

static void on_record(int term, void* ctx) {
    Reader* r = ctx;
    (void)term;
    if (r->failed) return;
    int line = r->record_line ? r->record_line : r->line;
    if (r->n_fields != 6) {
        err_set(r->e, "%s:%d: expected 6 fields (question, A, B, C, D, answer), found %d", r->path, line, r->n_fields);
        r->failed = 1;
        clear_fields(r);
        return;
    }
    const char* ans = r->fields[5];
    if (strlen(ans) != 1 || ans[0] < 'A' || ans[0] > 'D') {
        err_set(r->e, "%s:%d: answer '%.20s' is not one of A, B, C, D", r->path, line, ans);
        r->failed = 1;
        clear_fields(r);
        return;
    }
    for (int i = 0; i < 5; i++) {
        if (!r->fields[i][0]) {
            err_set(r->e, "%s:%d: %s is empty", r->path, line, i == 0 ? "the question" : "a choice");
            r->failed = 1;
            clear_fields(r);
            return;
        }
    }
    if (r->out->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->out->records = realloc(r->out->records, sizeof(MmluRecord) * (size_t)r->cap);
    }
    MmluRecord* rec = &r->out->records[r->out->n++];
    rec->question = r->fields[0];
    for (int i = 0; i < 4; i++) rec->choices[i] = r->fields[1 + i];
    rec->answer = ans[0] - 'A';
    rec->line = line;
    free(r->fields[5]);
    r->n_fields = 0;
    r->record_line = 0;
}

static int never_space(unsigned char c) {
    (void)c;
    return 0;  // keep every byte of a field: MMLU fields carry meaningful leading/trailing spaces
}

int mmlu_csv_read(const char* path, MmluFile* out, Err* e) {
    memset(out, 0, sizeof *out);
    size_t len;
    char* text = file_read_all(path, &len, e);
    if (!text) return -1;
    long bad = utf8_invalid_offset(text, len);
    if (bad >= 0) {
        int line = 1;
        for (long i = 0; i < bad; i++) line += text[i] == '\n';
        free(text);
        return err_set(e, "%s:%d: not valid UTF-8 (byte %ld)", path, line, bad);
    }
    struct csv_parser p;
    csv_init(&p, CSV_STRICT_FINI);  // not CSV_STRICT: like Python's csv, a stray quote inside an unquoted field is kept
    csv_set_space_func(&p, never_space);
    Reader r = {.out = out, .path = path, .e = e, .line = 1};
    // feed line by line so that record starts can be reported by line number
    size_t at = 0;
    while (at < len && !r.failed) {
        const char* nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) + 1 : len - at;
        // records end at a line end, so a record starts at the first non-blank line after one
        int blank = n == 1 || (n == 2 && text[at] == '\r');
        if (r.record_line == 0 && !blank) r.record_line = r.line;
        if (csv_parse(&p, text + at, n, on_field, on_record, &r) != n) {
            if (!r.failed) err_set(e, "%s:%d: %s", path, r.line, csv_strerror(csv_error(&p)));
            r.failed = 1;
        }
        at += n;
        r.line++;
    }
    if (!r.failed && csv_fini(&p, on_field, on_record, &r) != 0) {
        err_set(e, "%s:%d: %s (unterminated quoted field?)", path, r.record_line ? r.record_line : r.line,
                csv_strerror(csv_error(&p)));
        r.failed = 1;
    }
    csv_free(&p);
    free(text);
    clear_fields(&r);
    if (r.failed) {
        mmlu_csv_free(out);
        return -1;
    }
    if (out->n == 0) return err_set(e, "%s: no records", path);
    return 0;
}

void mmlu_csv_free(MmluFile* f) {
    for (int i = 0; i < f->n; i++) {
        free(f->records[i].question);
        for (int k = 0; k < 4; k++) free(f->records[i].choices[k]);
    }
    free(f->records);
    memset(f, 0, sizeof *f);
}
