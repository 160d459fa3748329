// subjects.c: see subjects.h.
#include "subjects.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char* name;
    MmluCategory category;
} subjects[MMLU_N_SUBJECTS] = {
    {"abstract_algebra", MMLU_STEM},
    {"anatomy", MMLU_STEM},
    {"astronomy", MMLU_STEM},
    {"business_ethics", MMLU_OTHER},
    {"clinical_knowledge", MMLU_OTHER},
    {"college_biology", MMLU_STEM},
    {"college_chemistry", MMLU_STEM},
    {"college_computer_science", MMLU_STEM},
    {"college_mathematics", MMLU_STEM},
    {"college_medicine", MMLU_OTHER},
    {"college_physics", MMLU_STEM},
    {"computer_security", MMLU_STEM},
    {"conceptual_physics", MMLU_STEM},
    {"econometrics", MMLU_SOCIAL_SCIENCES},
    {"electrical_engineering", MMLU_STEM},
    {"elementary_mathematics", MMLU_STEM},
    {"formal_logic", MMLU_HUMANITIES},
    {"global_facts", MMLU_OTHER},
    {"high_school_biology", MMLU_STEM},
    {"high_school_chemistry", MMLU_STEM},
    {"high_school_computer_science", MMLU_STEM},
    {"high_school_european_history", MMLU_HUMANITIES},
    {"high_school_geography", MMLU_SOCIAL_SCIENCES},
    {"high_school_government_and_politics", MMLU_SOCIAL_SCIENCES},
    {"high_school_macroeconomics", MMLU_SOCIAL_SCIENCES},
    {"high_school_mathematics", MMLU_STEM},
    {"high_school_microeconomics", MMLU_SOCIAL_SCIENCES},
    {"high_school_physics", MMLU_STEM},
    {"high_school_psychology", MMLU_SOCIAL_SCIENCES},
    {"high_school_statistics", MMLU_STEM},
    {"high_school_us_history", MMLU_HUMANITIES},
    {"high_school_world_history", MMLU_HUMANITIES},
    {"human_aging", MMLU_OTHER},
    {"human_sexuality", MMLU_SOCIAL_SCIENCES},
    {"international_law", MMLU_HUMANITIES},
    {"jurisprudence", MMLU_HUMANITIES},
    {"logical_fallacies", MMLU_HUMANITIES},
    {"machine_learning", MMLU_STEM},
    {"management", MMLU_OTHER},
    {"marketing", MMLU_OTHER},
    {"medical_genetics", MMLU_OTHER},
    {"miscellaneous", MMLU_OTHER},
    {"moral_disputes", MMLU_HUMANITIES},
    {"moral_scenarios", MMLU_HUMANITIES},
    {"nutrition", MMLU_OTHER},
    {"philosophy", MMLU_HUMANITIES},
    {"prehistory", MMLU_HUMANITIES},
    {"professional_accounting", MMLU_OTHER},
    {"professional_law", MMLU_HUMANITIES},
    {"professional_medicine", MMLU_OTHER},
    {"professional_psychology", MMLU_SOCIAL_SCIENCES},
    {"public_relations", MMLU_SOCIAL_SCIENCES},
    {"security_studies", MMLU_SOCIAL_SCIENCES},
    {"sociology", MMLU_SOCIAL_SCIENCES},
    {"us_foreign_policy", MMLU_SOCIAL_SCIENCES},
    {"virology", MMLU_OTHER},
    {"world_religions", MMLU_HUMANITIES},
};

const char* mmlu_subject_name(int i) { return subjects[i].name; }

int mmlu_subject_index(const char* name) {
    for (int i = 0; i < MMLU_N_SUBJECTS; i++)
        if (strcmp(subjects[i].name, name) == 0) return i;
    return -1;
}

int mmlu_subject_list(const char* list, int* chosen, int* n, Err* e) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", list);
    *n = 0;
    for (char* s = strtok(buf, ", \t"); s; s = strtok(NULL, ", \t")) {
        int i = mmlu_subject_index(s);
        if (i < 0) return err_set(e, "'%s' is not one of MMLU's 57 subjects (mmlu/subjects.c lists them)", s);
        for (int k = 0; k < *n; k++)
            if (chosen[k] == i) return err_set(e, "'%s' is listed twice", s);
        chosen[(*n)++] = i;
    }
    return *n ? 0 : err_set(e, "empty list");
}

MmluCategory mmlu_subject_category(int i) { return subjects[i].category; }

const char* mmlu_category_name(MmluCategory c) {
    static const char* names[] = {"stem", "humanities", "social_sciences", "other"};
    return c < MMLU_N_CATEGORIES ? names[c] : "?";
}
