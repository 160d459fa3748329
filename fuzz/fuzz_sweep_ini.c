// fuzz_sweep_ini.c: a sweep INI read leniently (no inputs on disk need exist) and its cells expanded.
#include <stdlib.h>

#include "../harness/sweep_config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    static SweepConfig c;  // large: not on the stack
    Err e;
    if (sweep_config_load_lenient(fuzz_file("sweep.ini", data, n), &c, &e) == 0) {
        Cell* cells;
        int count;
        if (sweep_cells(&c, &cells, &count) == 0) free(cells);
    }
    return 0;
}
