// prompt.h: MMLU prompts exactly as lm-evaluation-harness's `mmlu` task builds them:
//   description  "The following are multiple choice questions (with answers) about {subject, _ -> space}.\n\n"
//   each example "{question.strip()}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\nAnswer:"
//   k shots      the first k dev rows, each example followed by " {gold letter}", joined by "\n\n",
//                and "\n\n" before the question
//   continuations " A", " B", " C", " D"
#pragma once
#include "../models/vec.h"
#include "mmlu_csv.h"

// Appends the example text of r (no answer).
void mmlu_example_text(ByteVec* out, const MmluRecord* r);
// Appends description + shots (dev[first .. first+k-1]) + the separator before the question.
void mmlu_prefix(ByteVec* out, const char* subject, const MmluRecord* dev, int first, int k);
// Python's str.strip(): the byte range of s without leading/trailing Unicode whitespace.
void python_strip(const char* s, size_t len, size_t* start, size_t* end);
