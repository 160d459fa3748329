// fuzz_scores.c: scores.json (importance_load: the shape check, every table, block_influence_last and
// layer_ablation) against a fixed 3-layer tiny shape, then the depth strategies that read it.
#include "../prune/surgery.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    ModelConfig c;
    Err e;
    if (config_preset("tiny", &c, &e)) return 0;
    c.n_layers = 3, c.vocab = 151936;
    Importance imp;
    if (importance_load(&imp, &c, fuzz_file("scores.json", data, n), &e) == 0) {
        int keep[3], n_keep;
        for (int d = DEPTH_BI; d <= DEPTH_ABLATION_BLOCK; d++) {
            PruneTarget t = {(DepthStrategy)d, 2, NULL, 0, 0, 0, 0, 0};
            if (d != DEPTH_LIST && d != DEPTH_PPL) (void)prune_pick_layers(&c, &imp, &t, keep, &n_keep, &e);
        }
        importance_free(&imp);
    }
    return 0;
}
