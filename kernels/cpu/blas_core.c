// blas_core.c: see blas_core.h.
#include "blas_core.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

char* openblas_get_corename(void);  // OpenBLAS's own (not in cblas.h)

const char* blas_core_name(void) { return openblas_get_corename(); }

static int named(const char* core, const char* const* names) {
    for (; *names; names++)
        if (!strcasecmp(core, *names)) return 1;
    return 0;
}

const char* blas_core_wanted(void) {
    if (getenv("OPENBLAS_CORETYPE")) return NULL;
    const char* core = blas_core_name();
    static const char* const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char* const avx2[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return named(core, avx512) ? NULL : "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return named(core, avx2) ? NULL : "Haswell";
    return NULL;
}
