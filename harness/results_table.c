// results_table.c: see results_table.h.
#include "results_table.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>

#include "../models/file_io.h"

static void on_field(void* s, size_t len, void* ctx) {
    Table* t = ctx;
    if (t->n_cells == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->cells = realloc(t->cells, sizeof(char*) * (size_t)t->cap);
        if (!t->cells) FATAL("out of memory reading a CSV");
    }
    char* v = xmalloc(len + 1);
    memcpy(v, s, len);
    v[len] = 0;
    t->cells[t->n_cells++] = v;
    t->col++;
}

static void on_row(int c, void* ctx) {
    Table* t = ctx;
    (void)c;
    if (t->n_rows == 0 && t->n_cols == 0) t->n_cols = t->col;  // the header fixes the width
    else if (t->col != t->n_cols && !t->failed) t->failed = t->n_rows + 1;
    t->n_rows++;
    t->col = 0;
}

void table_free(Table* t) {
    for (int i = 0; i < t->n_cells; i++) free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

int table_read(const char* path, Table* t, Err* e) {
    memset(t, 0, sizeof *t);
    size_t len;
    char* text = file_read_all(path, &len, e);
    if (!text) return -1;
    struct csv_parser p;
    csv_init(&p, CSV_APPEND_NULL);
    int rc = csv_parse(&p, text, len, on_field, on_row, t) != len || csv_fini(&p, on_field, on_row, t) ? -1 : 0;
    csv_free(&p);
    free(text);
    if (rc || t->failed) rc = err_set(e, "%s:%d: malformed CSV row", path, t->failed ? t->failed + 1 : 1);
    else if (t->n_rows < 2) rc = err_set(e, "%s: no result rows", path);
    if (rc) table_free(t);
    return rc;
}

int table_col(const Table* t, const char* name) {
    for (int c = 0; c < t->n_cols; c++)
        if (!strcmp(t->cells[c], name)) return c;
    return -1;
}

const char* table_cell(const Table* t, int r, int c) { return c < 0 ? "" : t->cells[r * t->n_cols + c]; }
