// mmlu_csv.h: one MMLU CSV file (original format: no header, 6 fields per record:
// question, A, B, C, D, answer letter), read with libcsv: RFC 4180 quoting, fields with embedded
// newlines, CRLF or LF record ends, fields kept byte for byte (no trimming).
#pragma once
#include "../kernels/check.h"

typedef struct {
    char* question;
    char* choices[4];
    int answer;  // 0..3 for A..D
    int line;    // line of the file where the record starts (1-based)
} MmluRecord;

typedef struct {
    MmluRecord* records;
    int n;
} MmluFile;

// Reads and validates path. Errors name path:line: wrong field count, answer not in A-D, empty
// question or choice, unterminated quote, not UTF-8.
int mmlu_csv_read(const char* path, MmluFile* out, Err* e);
void mmlu_csv_free(MmluFile* f);
