// paper_text.h: every sentence of a sweep's article, written from OUT/NAME/sweep.json (what the sweep
// was: harness/sweep_describe.h) and results.csv (what it measured), so that no fixed text can
// contradict the run: abstract.tex, method.tex, setup.tex, results_text.tex, limitations.tex and
// captions.tex beside paper.tex, which only arranges them.
#pragma once
#include <cJSON.h>

#include "../kernels/check.h"
#include "../models/vec.h"
#include "results_table.h"

int paper_write_text(const char* out_dir, const cJSON* sweep, const Table* results, Err* e);
// s with LaTeX's special characters escaped for text mode (labels such as bi-L30>24, paths), onto v
void latex_append(ByteVec* v, const char* s);
