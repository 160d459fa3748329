// mmlu_eval.h: MMLU accuracy of a model, lm-evaluation-harness style: for each question, the
// log-likelihood of " A", " B", " C", " D" after the k-shot prompt (mmlu/prompt.h); the prediction is
// the argmax. Context and continuation are tokenized as lm-eval does: whole = encode(context +
// continuation), continuation ids = whole[len(encode(context)):]; the model sees
// encode(context) + continuation ids.
//
// Long prompts: by default as lm-eval's HFLM does (truncation MMLU_TRUNCATE_TOKENS): the model sees
// (context + continuation)[-(max_len + 1):][:-1], i.e. the last max_len context tokens, so a context
// is cut from the left only when it is longer than max_len (one that exactly fills it is kept
// whole). MMLU_TRUNCATE_SHOTS drops whole shots from the front instead until the context fits; a
// question whose zero-shot context still does not fit is then cut by tokens too. Either way no
// question ends the run: cut and fewer-shot questions are counted and written per question.
//
// Speed: the subject's description and shots are prefilled once into KV slot 0 and every question of
// the subject attends to them from there (when its tokens start with the prefix's tokens, which is
// checked); questions are batched, `batch` per forward call, in slots 1..batch.
#pragma once
#include <stdint.h>

#include "../models/engine.h"
#include "../models/tokenizer/tokenizer.h"
#include "subjects.h"

typedef enum { MMLU_TRUNCATE_TOKENS, MMLU_TRUNCATE_SHOTS } MmluTruncation;

typedef struct {
    int shots;               // 0..5
    int limit;               // questions per subject (0: all)
    int batch;               // questions per forward call
    int max_len;             // context limit in tokens (0: the model's max_position_embeddings; larger is refused)
    const char* split;       // "test" (default), "val" or "dev"
    const char* subjects;    // comma-separated subset, or NULL for all 57
    int dry_run;             // tokenize and count tokens only; no model calls, no answers
    MmluTruncation truncation;  // what gives way when a context is longer than max_len
} MmluOptions;

// "tokens" / "shots" <-> MmluTruncation; parse returns -1 for anything else.
int mmlu_truncation_parse(const char* s, MmluTruncation* t);
const char* mmlu_truncation_name(MmluTruncation t);

typedef struct {
    int subject;        // index into mmlu/subjects.h
    int index;          // row in the subject's CSV (0-based)
    int gold, pred;     // 0..3
    int shots_used;     // < shots when whole shots were dropped to fit max_len (MMLU_TRUNCATE_SHOTS)
    int cut_tokens;     // context tokens cut from the left to fit max_len
    double logprob[4];  // log P(" A" | context) ...
} MmluAnswer;

typedef struct {
    MmluAnswer* answers;
    int n;
    int n_truncated;         // questions whose context was cut by tokens to fit max_len
    int n_fewer_shots;       // questions that lost whole shots to fit max_len
    int max_len;             // the context limit used (MmluOptions.max_len or the model's positions)
    int shots;               // the shots asked for (n_fewer_shots questions got fewer)
    MmluTruncation truncation;  // what gave way for contexts past max_len
    int64_t prompt_tokens;   // tokens of all prompts as the model sees them
    int64_t computed_tokens; // tokens actually run (shared prefixes once per subject)
    double seconds;
} MmluResult;

// The subjects o asks for (all 57, or o->subjects) into chosen (room for 57), checked against data_dir
// before any work: each has its split file (and a dev file when o->shots > 0), and every file of the
// split is an MMLU subject. -1 with e naming the file and the problem.
int mmlu_pick_subjects(const char* data_dir, const MmluOptions* o, int* chosen, int* n, Err* e);

int mmlu_evaluate(const Model* m, const Tokenizer* tok, const char* data_dir, const MmluOptions* opt, MmluResult* r,
                  Err* e);
// The same on any backend (engine.h): `arbor eval mmlu --device cuda`.
int mmlu_evaluate_on(const Engine* en, const Tokenizer* tok, const char* data_dir, const MmluOptions* opt,
                     MmluResult* r, Err* e);
void mmlu_result_free(MmluResult* r);

// Accuracy by subject, by lm-eval category and overall: micro (lm-eval's headline number, weighted by
// question count) and macro (the mean over subjects).
typedef struct {
    int n[MMLU_N_SUBJECTS], correct[MMLU_N_SUBJECTS];
    int cat_n[MMLU_N_CATEGORIES], cat_correct[MMLU_N_CATEGORIES];
    int total, total_correct, subjects;
    double micro, macro;
} MmluSummary;
void mmlu_summarize(const MmluResult* r, MmluSummary* s);
// predictions.csv (one row per question) and summary.csv (per subject, per category, overall micro
// and macro) into out_dir, each written atomically.
int mmlu_write_results(const MmluResult* r, const char* out_dir, Err* e);
