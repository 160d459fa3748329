// sweep_describe.h: OUT/NAME/sweep.json, what a sweep is, written when it runs: the teacher and its
// shape, the data and token budgets, the distillation loss, the benchmark (its name, and whether it is
// synthetic: a benchmark.json in the MMLU folder says so), the throughput protocol and the machine.
// `arbor paper` writes every sentence of the article from this file and results.csv.
#pragma once
#include "sweep_config.h"

int sweep_describe(const SweepConfig* c, const Cell* cells, int n, Err* e);
// A readable name of a loss: "forward KL(teacher || student), T = 2, scaled by T^2".
void loss_describe(const LossConfig* l, char* out, size_t n);
