// results_table.h: a sweep's results.csv (or any CSV with a header row) in memory, read with libcsv;
// cells looked up by row and column name. Used by arbor plot, arbor paper and the demo's summary.
#pragma once
#include "../kernels/check.h"

typedef struct {
    char** cells;  // in reading order: row-major n_rows x n_cols once every row has n_cols fields
    int n_cells, cap;
    int n_rows, n_cols, col;  // n_rows counts the header
    int failed;    // the first row (1-based, after the header) with a different field count
} Table;

// -1 with e = "FILE:LINE: malformed CSV row" or "FILE: no result rows"
int table_read(const char* path, Table* t, Err* e);
void table_free(Table* t);
int table_col(const Table* t, const char* name);  // -1 when absent
// row r (1 = the first data row), column c; "" when c < 0
const char* table_cell(const Table* t, int r, int c);
