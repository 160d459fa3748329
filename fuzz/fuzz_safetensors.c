// fuzz_safetensors.c: the safetensors reader (header JSON, offsets, dtypes) and a read of every tensor,
// to fp32 and to the 16-bit types (--weights bf16|f16).
#include "../models/safetensors.h"
#include "fuzz_common.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    StFile f;
    Err e;
    if (st_open(&f, fuzz_file("model.safetensors", data, n), &e) == 0) {
        for (int i = 0; i < f.n_tensors; i++) {
            int64_t count = st_numel(&f.tensors[i]);
            if (count > (1 << 20) || f.tensors[i].dtype == ST_UNSUPPORTED) continue;
            float* out = malloc(sizeof(float) * (size_t)(count ? count : 1));
            st_read_f32(&f, &f.tensors[i], out, &e);
            st_read_16(&f, &f.tensors[i], i % 2 ? WEIGHT_F16 : WEIGHT_BF16, (uint16_t*)out, &e);
            free(out);
        }
        st_close(&f);
    }
    return 0;
}
