// subjects.h: MMLU's 57 subjects and the four categories lm-evaluation-harness groups them into
// (mmlu_stem, mmlu_humanities, mmlu_social_sciences, mmlu_other).
#pragma once

typedef enum { MMLU_STEM, MMLU_HUMANITIES, MMLU_SOCIAL_SCIENCES, MMLU_OTHER, MMLU_N_CATEGORIES } MmluCategory;

#define MMLU_N_SUBJECTS 57
const char* mmlu_subject_name(int i);       // i in [0, 57), alphabetical
int mmlu_subject_index(const char* name);   // -1 when not an MMLU subject
MmluCategory mmlu_subject_category(int i);
const char* mmlu_category_name(MmluCategory c);  // "stem", "humanities", "social_sciences", "other"
