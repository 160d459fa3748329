// demo_data.h: the built-in demo's synthetic world, made from a seed: invented entities with four
// attributes (color, city, food, animal; four values each), a corpus of fact sentences and answered
// questions, the questions as an MMLU-format benchmark (subject "miscellaneous", options in a fixed order
// per attribute, so a fact maps straight to a letter: what a small model learns in a minute or two; see
// the feasibility notes in docs), and a word-level tokenizer.json covering every word. Entity names of
// several shared syllable words put the facts in the layers (which must combine the words), so depth
// pruning removes knowledge and smaller students recover less of it: the demo's frontier bends.
#pragma once
#include <stdint.h>

#include "../kernels/check.h"

typedef struct {
    int entities;       // invented names
    int repeats;        // copies of every fact sentence and answered question in the corpus
    int name_words;     // words per entity name: 1, one token each; more, shared syllable words
    uint64_t seed;
} DemoDataOptions;

// Writes DIR/tokenizer/tokenizer.json, DIR/mmlu/{dev,val,test}/miscellaneous_*.csv and the token shards
// DIR/train.shard (shuffled documents separated by EOD) and DIR/val.shard.
int demo_data_write(const char* dir, const DemoDataOptions* o, Err* e);
