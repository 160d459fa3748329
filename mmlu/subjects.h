// subjects.h: MMLU's 57 subjects and the four categories lm-evaluation-harness groups them into
// (mmlu_stem, mmlu_humanities, mmlu_social_sciences, mmlu_other).
#pragma once
#include "../kernels/check.h"

typedef enum { MMLU_STEM, MMLU_HUMANITIES, MMLU_SOCIAL_SCIENCES, MMLU_OTHER, MMLU_N_CATEGORIES } MmluCategory;

#define MMLU_N_SUBJECTS 57
const char* mmlu_subject_name(int i);       // i in [0, 57), alphabetical
int mmlu_subject_index(const char* name);   // -1 when not an MMLU subject
// A list of subjects, "anatomy,virology" (commas and spaces between names), into their indices
// (chosen: room for 57). -1 with e = "'x' is not one of MMLU's 57 subjects ...", "'x' is listed twice"
// or "empty list".
int mmlu_subject_list(const char* list, int* chosen, int* n, Err* e);
MmluCategory mmlu_subject_category(int i);
const char* mmlu_category_name(MmluCategory c);  // "stem", "humanities", "social_sciences", "other"
