// fuzz_train_state.c: a training state file loaded into a tiny student's trainer (checksum, fields).
#include "../distill/trainer.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t n) {
    static Model m;
    static Trainer tr;
    static int ready = 0;
    Err e;
    if (!ready) {
        ModelConfig c;
        config_preset("tiny", &c, &e);
        c.n_layers = 1, c.vocab = 64, c.hidden = 16, c.ffn = 32, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 8;
        model_create(&m, &c);
        if (trainer_init(&tr, &m, NULL, 1, 8, 0, 0, NULL, &e) != 0) return 0;
        ready = 1;
    }
    trainer_load(&tr, NULL, fuzz_file("train_state.bin", data, n), &e);
    return 0;
}
