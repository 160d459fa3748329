// text_pipeline.h: the normalizers and pre-tokenizers of Hugging Face `tokenizers`, as byte-level BPE
// checkpoints compose them in tokenizer.json, with the library's exact semantics:
//
// normalizers: NFC NFD NFKC NFKD (utf8proc), Lowercase (per character, full mapping), Strip, Prepend,
//   Replace (String or Regex), Sequence.
// pre-tokenizers: Split (String or Regex; Removed, Isolated, MergedWithPrevious, MergedWithNext,
//   Contiguous; invert), Digits, Punctuation, Whitespace, WhitespaceSplit, ByteLevel (use_regex,
//   add_prefix_space), Sequence (nested, any order). Steps after ByteLevel see its mapped symbols, as in
//   the library; the pieces handed back are raw bytes again.
//
// Regexes run on PCRE2 (UTF + UCP). tokenizers runs Oniguruma, whose \s is Unicode White_Space and whose
// \w is Alphabetic + marks + Nd + Pc plus a few Latin-1 numbers; PCRE2's differ (U+180E; marks, No), so
// \s \S \w \W are rewritten to those classes (equal code point by code point, but for characters newer
// than PCRE2's Unicode tables). The Whitespace pre-tokenizer is the exception: tokenizers runs it on the
// `regex` crate, whose \w is Unicode TR18's (Alphabetic, marks, Nd, Pc, Join_Control).
// Matches are enumerated as the `onig` crate's find_iter does (an empty match right after the previous
// match is skipped), and a Split's parts merged exactly as NormalizedString::split does.
#pragma once
#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../kernels/check.h"
#include "../vec.h"

typedef enum { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_LOWERCASE, NORM_STRIP, NORM_PREPEND, NORM_REPLACE } NormKind;

typedef struct {
    NormKind kind;
    bool left, right;  // Strip
    char* text;        // Prepend: the prefix; Replace: the replacement
    void* regex;       // Replace: pcre2_code* (a String pattern is escaped into one)
} Normalizer;

typedef enum { PRE_SPLIT, PRE_DIGITS, PRE_PUNCTUATION, PRE_WHITESPACE, PRE_WHITESPACE_SPLIT, PRE_BYTE_LEVEL } PreKind;
typedef enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_WITH_PREVIOUS, SPLIT_MERGED_WITH_NEXT, SPLIT_CONTIGUOUS } SplitBehavior;

typedef struct {
    PreKind kind;
    SplitBehavior behavior;          // Split, Punctuation
    bool invert;                     // Split
    bool individual_digits;          // Digits
    bool add_prefix_space, use_regex;  // ByteLevel
    void* regex;                     // Split, Whitespace, ByteLevel with use_regex: pcre2_code*
} PreTokenizer;

typedef struct {
    Normalizer* norm;  // (n_norm) applied in order
    int n_norm;
    PreTokenizer* pre;  // (n_pre) applied in order, Sequences flattened
    int n_pre;
    int byte_level_at;  // index of the ByteLevel step in pre, -1 when none
} TextPipeline;

// Pieces of text: (offset, length) pairs into one byte arena.
typedef struct {
    ByteVec arena;
    IntVec spans;  // (2 * count) offset, length
} Pieces;

// Reads tokenizer.json's "normalizer" and "pre_tokenizer" (either may be NULL or JSON null). Anything
// not listed above, a second ByteLevel, or a regex PCRE2 cannot compile: -1 with e naming source and
// the step.
int text_pipeline_parse(TextPipeline* p, const cJSON* normalizer, const cJSON* pre_tokenizer, const char* source, Err* e);
void text_pipeline_free(TextPipeline* p);

// The normalizers applied to s (len bytes of valid UTF-8), into out (cleared first).
int text_normalize(const TextPipeline* p, const char* s, size_t len, ByteVec* out, Err* e);
// The pre-tokenizers applied to s: out (cleared first) gets the pieces, as raw bytes, in order; empty
// pieces are dropped as the library drops them.
void text_pre_tokenize(const TextPipeline* p, const char* s, size_t len, Pieces* out);
void pieces_free(Pieces* ps);

// Matches of a compiled regex in s, enumerated as the `onig` crate's find_iter does. Start with
// {0}; each call gives the next match [*start, *end) and returns 1, or 0 when there are no more.
typedef struct {
    size_t last_end, last_match_end;
    bool have_match, done;
} TextRegexIter;
int text_regex_next(const void* re, void* match_data, const char* s, size_t len, TextRegexIter* it, size_t* start, size_t* end);

// Compiles pattern (PCRE2, UTF + UCP, after the Oniguruma class rewrite above). NULL with e on failure.
void* text_regex_compile(const char* pattern, const char* source, Err* e);
void text_regex_free(void* re);
