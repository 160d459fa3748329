// sweep_plan.h: what each stage of a sweep cell runs, built in one place from the config. The stages
// take their options from these builders, and a stage's key (sweep_graph.h) is made from the canonical
// text of the same options (sweep_stage_plan), so a setting changes the key of exactly the stages that
// read it; the key-walk test checks that against a table.
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
// round r's targets (0-based; a layers target of 0 keeps the depth the round starts with)
void plan_prune_target(const Cell* cell, int round, PruneTarget* t);
// distillation (with_teacher) or from-scratch training of `steps` steps; out_dir is left for the stage to set
void plan_train(const SweepConfig* c, int with_teacher, int steps, TrainConfig* tc);
// teacher correction: training on [data] distill for correct_steps at correct_lr (min_lr capped at it)
void plan_correct(const SweepConfig* c, TrainConfig* tc);
// The stage folder of round r (0-based) of `stage` (prune or distill): the last round keeps the plain
// name, so the stages after it read it as from a one-shot cell; round N before it is "roundN_prune".
void sweep_round_stage(int n_rounds, int r, const char* stage, char* out, size_t n);
// The inverse: the round of a stage name and its plain name in *base ("round1_distill": 0, "distill").
int sweep_stage_round(const Cell* cell, const char* stage, const char** base);
void plan_mmlu(const SweepConfig* c, MmluOptions* o);
void plan_ppl(const SweepConfig* c, PplOptions* o);
void plan_bench(const SweepConfig* c, int batch_index, BenchOptions* o);
// The tokenizer the eval stage loads: [teacher] tokenizer, else the teacher's folder.
const char* plan_tokenizer(const SweepConfig* c);

// Canonical text of every setting stage `stage` of `cell` reads, and nothing else: not the paths of its
// inputs (their content joins the key in sweep_graph.c), not settings of other stages. Stages: correct,
// prune, eval_pruned, distill, init, train, eval, bench, and a cell's earlier rounds (sweep_round_stage).
// eval_pruned writes "eval": the same evaluation, of another model.
void sweep_stage_plan(const SweepConfig* c, const Cell* cell, const char* stage, char* out, size_t n);
