// sweep_plan.h: what each stage of a sweep cell runs, built in one place from the config. The stages
// take their options from these builders, and a stage's cache key is made from the canonical text of
// the same options (sweep_stage_plan), so a setting that changes what a stage runs changes its key,
// and a setting that does not reach any stage shows up in the key-walk test as dead.
#pragma once
#include <stddef.h>

#include "../distill/trainer.h"
#include "../evals/perplexity.h"
#include "../evals/throughput.h"
#include "../mmlu/mmlu_eval.h"
#include "../prune/importance.h"
#include "../prune/surgery.h"
#include "sweep_config.h"

void plan_calib(const SweepConfig* c, CalibOptions* o);
void plan_prune_target(const Cell* cell, PruneTarget* t);
// distillation (with_teacher) or from-scratch training; out_dir is left for the stage to set
void plan_train(const SweepConfig* c, int with_teacher, TrainConfig* tc);
void plan_mmlu(const SweepConfig* c, MmluOptions* o);
void plan_ppl(const SweepConfig* c, PplOptions* o);
void plan_bench(const SweepConfig* c, int batch_index, BenchOptions* o);
// The tokenizer the eval stage loads: [teacher] tokenizer, else the teacher's folder.
const char* plan_tokenizer(const SweepConfig* c);

// Canonical text of every option stage `stage` of `cell` passes on and every path it reads (not their
// content: the caller adds content hashes). Stages: prune, eval_pruned, distill, init, train, eval, bench.
void sweep_stage_plan(const SweepConfig* c, const Cell* cell, const char* stage, char* out, size_t n);
