// fuzz_mmlu_csv.c: an MMLU CSV (quoted fields, newlines, CRLF) into records.
#include "../mmlu/mmlu_csv.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    MmluFile f;
    Err e;
    if (mmlu_csv_read(fuzz_file("anatomy_test.csv", data, n), &f, &e) == 0) mmlu_csv_free(&f);
    return 0;
}
