// tokenizer.h: Hugging Face byte-level BPE tokenizers (Qwen2/2.5/3, Llama 3, SmolLM2, GPT-2 layouts)
// and the WordLevel kind of the built-in demo.
//
// encode: added tokens are matched first (leftmost-longest: those with normalized=false on the raw
// text, the others on each stretch after normalisation); each stretch between them goes through the
// tokenizer.json's normalizers and pre-tokenizers (text_pipeline.h), and each piece's bytes become their
// byte-level symbols, merged by BPE rank. A byte whose symbol is not in the vocabulary is what the
// library makes of it: its <0xNN> tokens (the symbol's UTF-8 bytes) with byte_fallback, else unk_token
// (fused runs with fuse_unk), else nothing. ignore_merges: a piece that is a whole token is that token.
// decode: the decoder's ByteLevel mapping (a token holding a non-symbol is its own UTF-8), ByteFallback
// runs of <0xNN> tokens when the decoder has it, added tokens as their content.
//
// The Qwen layout (NFC or none; Split(Regex, Isolated) + ByteLevel(use_regex=false), or ByteLevel with
// its regex alone) takes a direct path after normalising, with the same results: one regex scan, no
// piece list.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "../../kernels/check.h"
#include "../hashmap.h"
#include "byte_level.h"
#include "text_pipeline.h"
#include "../vec.h"

// WordLevel: tokenizers' WordLevel model with a WhitespaceSplit pre-tokenizer (the built-in demo's
// word tokenizer): text split on whitespace, each word one id (or unk), decode joins with spaces.
typedef enum { TOKENIZER_BYTE_LEVEL_BPE, TOKENIZER_WORD_LEVEL } TokenizerKind;

typedef struct {
    char* content;
    int len;
    int id;
    bool special;
    bool normalized;  // matched on normalised text, not the raw input
} AddedToken;

typedef struct {
    TokenizerKind kind;
    char source[4224];     // the file it was loaded from, for messages
    int n_ids;             // 1 + the largest id (base vocabulary and added tokens)
    char** tokens;         // (n_ids) token text as stored (byte-level symbols), NULL for unused ids
    int* token_lens;       // (n_ids)
    StrMap vocab;          // base token text -> id (keys live in vocab_keys)
    char* vocab_keys;      // the vocabulary's texts, owned by the map (tokens[] may be replaced by added tokens)
    U64Map merges;         // ((left << 32) | right) + 1 -> (rank << 32) | merged id
    AddedToken* added;     // (n_added)
    int n_added;
    TextPipeline pipe;     // normalizers and pre-tokenizers
    bool direct;           // the Qwen layout's direct path (see above)
    const void* direct_split;  //   its pcre2_code_8* (owned by pipe)
    bool any_normalized;   // some added token is matched on normalised text
    int byte_token[256];   // id of the one-symbol token of each byte, -1 when the vocabulary lacks it
    bool all_bytes;        // no byte_token is -1
    int fallback_ids[256][2];  // byte_fallback: the <0xNN> ids of each byte's symbol (UTF-8: 1 or 2 bytes)
    int fallback_n[256];   //   how many; 0 when one of them is missing
    bool byte_fallback, fuse_unk, ignore_merges;
    bool decode_byte_fallback;  // the decoder has ByteFallback
    int eod_id;            // <|endoftext|>, or -1
    int unk_id;            // WordLevel: the id of unknown words; BPE: unk_token's id, or -1
} Tokenizer;

// Loads DIR/tokenizer.json, or else DIR/vocab.json + DIR/merges.txt (+ tokenizer_config.json for the
// added tokens). Returns -1 with e naming the file and the problem.
int tokenizer_load(Tokenizer* t, const char* dir, Err* e);
void tokenizer_free(Tokenizer* t);

// Appends the ids of text (len bytes) to out. Text that is not valid UTF-8 is refused: -1 with e
// giving the byte offset.
int tokenizer_encode(const Tokenizer* t, const char* text, size_t len, IntVec* out, Err* e);
// Appends the bytes the ids stand for to out. -1 on an id outside the vocabulary.
int tokenizer_decode(const Tokenizer* t, const int* ids, size_t n, ByteVec* out, Err* e);

