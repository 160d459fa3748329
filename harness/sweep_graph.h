// sweep_graph.h: a sweep as a build graph, computed before anything runs. Each cell is a chain of
// stages; each stage's key is the hash of exactly what it reads: its own settings (sweep_stage_plan's
// canonical text) and the keys of its inputs (the model it starts from is named by the key of the stage
// that made it, a checkpoint or shard by its content). A stage whose key is in the store
// (sweep_store.h) is reused; so a setting re-runs only the stages that read it, and two cells or two
// configs that need the same stage share it.
//   teacher, baseline:   eval -> bench                       (their model: the checkpoint's content)
//   teacher-corrected:   correct -> eval -> bench
//   pruned:              [correct ->] {roundN_prune -> roundN_distill}* -> prune -> eval_pruned -> distill -> eval -> bench
//   scratch:             init -> train -> eval -> bench
// A pruned cell's first prune reads the teacher (the checkpoint, or the correct stage's model); each later
// round reads the distill before it; every distill reads the same teacher. A bench reads the cell's model
// and the teacher's, its reference for the tokens/s ratio.
#pragma once
#include <stddef.h>

#include "content_hash.h"
#include "sweep_config.h"

#define PLAN_KEY CONTENT_HASH_HEX  // 32 hex digits (XXH3-128 of the stage's text) + NUL
#define PLAN_MAX_STAGES (2 * SWEEP_MAX_ROUNDS + 6)

// The content of every input the stages read: files and folders by their content (content_hash.h).
typedef struct {
    char teacher[PLAN_KEY], calib[PLAN_KEY], distill[PLAN_KEY], val[PLAN_KEY], mmlu[PLAN_KEY], tokenizer[PLAN_KEY];
    char baseline[SWEEP_MAX_BASELINES][PLAN_KEY];
    int missing;  // lenient hashing: some inputs were not on disk (their hashes are "", the keys not final)
} InputHashes;

typedef enum { STAGE_CORRECT, STAGE_PRUNE, STAGE_EVAL_PRUNED, STAGE_DISTILL, STAGE_INIT, STAGE_TRAIN, STAGE_EVAL, STAGE_BENCH } StageKind;

typedef struct {
    StageKind kind;
    char name[32];      // correct, roundN_prune, prune, eval_pruned, roundN_distill, distill, init, train, eval, bench
    int round;          // prune, distill: the 0-based round
    char key[PLAN_KEY]; // its folder in the store: stages/KEY
    char* text;         // what the key hashes (malloc'd): "KIND | settings | inputs"
    int model_from;     // the stage of this cell whose model/ it reads; -1: the cell's checkpoint (or, for a prune of
                        // round 0 and every distill, the teacher: SweepPlan.teacher_dir)
} PlanStage;

typedef struct {
    Cell cell;
    PlanStage stages[PLAN_MAX_STAGES];
    int n_stages;
    int model_stage;          // the stage that made the model eval and bench read; -1: the checkpoint (teacher, baseline)
    char model_key[PLAN_KEY]; // that stage's key, or the checkpoint's content hash
} PlanCell;

typedef struct {
    char dir[2100];             // OUT/NAME
    InputHashes in;
    PlanCell* cells;            // n, in config order (sweep_cells)
    int n;
    char teacher_key[PLAN_KEY]; // the model pruned cells start from and are distilled from: the checkpoint's content
                                // hash, or with [teacher] correct_steps the correct stage's key
    char teacher_dir[2400];     // ... and where it is
} SweepPlan;

// Hashes the inputs (memo in OUT/NAME/content_hashes.tsv). lenient: an input not on disk hashes as ""
// and sets in->missing instead of failing (--dry-run, --emit-slurm before the data is fetched).
int sweep_hash_inputs(const SweepConfig* c, int lenient, InputHashes* in, Err* e);
// The graph of cells (n of them, from sweep_cells) with every stage's key. Pure: reads nothing.
void sweep_plan_build(const SweepConfig* c, const Cell* cells, int n, const InputHashes* in, SweepPlan* p);
void sweep_plan_free(SweepPlan* p);
// The stage of cell named `name` (NULL when the cell has none).
const PlanStage* plan_stage(const PlanCell* pc, const char* name);
// The cell whose id or label is `name` (NULL when none).
const PlanCell* plan_cell(const SweepPlan* p, const char* name);
const char* stage_kind_name(StageKind k);
