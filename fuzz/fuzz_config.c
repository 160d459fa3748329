// fuzz_config.c: config.json into a ModelConfig (both rope dialects, presets' validation).
#include "../models/config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    fuzz_file("config.json", data, n);
    ModelConfig c;
    Err e;
    if (config_load(fuzz_dir(), &c, &e) == 0) (void)config_param_count(&c);
    return 0;
}
