// tokenizer.h: Hugging Face byte-level BPE tokenizers as Qwen2 / Qwen2.5 / Qwen3 ship them.
//
// encode: added tokens are matched on the raw text first (leftmost-longest); each stretch between them
// is NFC-normalised, split by the pre-tokenizer regex (PCRE2, UTF + UCP, "Isolated" behaviour), each
// piece's bytes mapped to their byte-level symbols and merged by BPE rank.
// decode: tokens back to bytes (added tokens as their content).
//
// Kinds: only byte-level BPE today. A Llama/Mistral SentencePiece-BPE tokenizer.json (Metaspace "▁"
// pre-tokenizer, <0xNN> byte fallback) fits the same pipeline: it differs in the normaliser/pre-
// tokenizer step and in how a piece becomes initial symbols and a token becomes bytes, which are the
// per-kind functions in tokenizer.c; the loader already records `kind` and refuses what it cannot run.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "../kernels/check.h"
#include "hashmap.h"
#include "vec.h"

// WordLevel: tokenizers' WordLevel model with a WhitespaceSplit pre-tokenizer (the built-in demo's
// word tokenizer): text split on whitespace, each word one id (or unk), decode joins with spaces.
typedef enum { TOKENIZER_BYTE_LEVEL_BPE, TOKENIZER_WORD_LEVEL } TokenizerKind;

typedef struct {
    char* content;
    int len;
    int id;
    bool special;
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
    bool nfc;              // normaliser: NFC or none
    void* split;           // pcre2_code_8*: the pre-tokenizer pattern
    int byte_token[256];   // id of the one-symbol token of each byte
    int16_t cp_to_byte[512];  // byte-level symbol code point -> byte, -1 when none
    int eod_id;            // <|endoftext|>, or -1
    int unk_id;            // WordLevel: the id of unknown words
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

// Offset of the first byte that is not valid UTF-8 (overlongs, surrogates and > U+10FFFF are
// invalid, as in Python's strict decoder), or -1 when all of it is valid.
long utf8_invalid_offset(const char* s, size_t len);
// GPT-2's bytes_to_unicode: the code point that stands for byte b.
uint32_t byte_level_code_point(int b);
