// sweep_plan.c: see sweep_plan.h.
#include "sweep_plan.h"

#include <stdio.h>
#include <string.h>

void plan_calib(const SweepConfig* c, CalibOptions* o) {
    Aggregation agg = AGG_L2;
    aggregation_parse(c->aggregation, &agg);  // validated with the config
    *o = (CalibOptions){c->calib_windows, c->prune_seq_len, 4, agg, c->device == DEVICE_CUDA, c->bi_after_norm, c->ablation_windows,
                        {0}, 0};
}

void plan_prune_target(const Cell* cell, int round, PruneTarget* t) {
    const int* r = cell->round[round];
    *t = (PruneTarget){DEPTH_NONE, r[0], NULL, 0, r[1], r[3], r[4], r[2]};
    depth_strategy_parse(cell->strategy, &t->depth);  // validated with the config
}

void sweep_round_stage(int n_rounds, int r, const char* stage, char* out, size_t n) {
    if (r == n_rounds - 1) snprintf(out, n, "%s", stage);
    else snprintf(out, n, "round%d_%s", r + 1, stage);
}

int sweep_stage_round(const Cell* cell, const char* stage, const char** base) {
    int r;
    *base = stage;
    if (sscanf(stage, "round%d_", &r) != 1 || r < 1) return cell->n_rounds - 1;
    *base = strchr(stage, '_') + 1;
    return r - 1;
}

void plan_train(const SweepConfig* c, int with_teacher, int steps, TrainConfig* tc) {
    memset(tc, 0, sizeof *tc);
    tc->steps = steps, tc->batch = c->batch, tc->grad_accum = c->grad_accum, tc->seq_len = c->seq_len;
    tc->optim = (OptimConfig){(float)c->lr, (float)c->min_lr, c->warmup, steps, !strcmp(c->schedule, "cosine"), 0.9f,
                              0.95f, 1e-8f, (float)c->weight_decay, (float)c->clip};
    if (with_teacher) {
        tc->loss = c->loss_cfg;
    } else {
        tc->loss = (LossConfig){1.0f, 0.0f, KD_NONE, 1.0f, 0, 0, 0.0f};
    }
    tc->val_every = steps, tc->val_windows = 32, tc->val_fraction = 0.05, tc->seed = (uint64_t)c->seed;
    tc->log_every = steps / 10 > 0 ? steps / 10 : 1;
    tc->save_every = steps / 20 > 0 ? steps / 20 : 1;  // a killed stage loses at most 5% of its steps
    tc->gpu = c->device == DEVICE_CUDA;
    tc->bucket_bytes = (size_t)(c->bucket_mb * (1 << 20));
    tc->zero1 = c->zero1;
    tc->reduce_bf16 = !strcmp(c->grad_reduce, "bf16");
}

void plan_correct(const SweepConfig* c, TrainConfig* tc) {
    plan_train(c, 0, c->correct_steps, tc);
    tc->optim.lr = (float)c->correct_lr;
    if (tc->optim.min_lr > tc->optim.lr) tc->optim.min_lr = tc->optim.lr;
}

void plan_mmlu(const SweepConfig* c, MmluOptions* o) {
    *o = (MmluOptions){c->shots, c->limit, 4, 0, "test", c->subjects[0] ? c->subjects : NULL, 0, c->truncation};
}

void plan_ppl(const SweepConfig* c, PplOptions* o) { *o = (PplOptions){c->ppl_seq_len, c->ppl_seq_len, 0, 256}; }

void plan_bench(const SweepConfig* c, int i, BenchOptions* o) {
    *o = (BenchOptions){c->bench_batch[i], c->prompt_len, c->gen_len, c->repeats, 0, 0};
}

const char* plan_tokenizer(const SweepConfig* c) { return c->tokenizer[0] ? c->tokenizer : c->teacher; }

#define ADD(...) (len += snprintf(out + len, len < n ? n - len : 0, __VA_ARGS__))

void sweep_stage_plan(const SweepConfig* c, const Cell* cell, const char* stage, char* out, size_t n) {
    size_t len = 0;
    out[0] = 0;
    const char* base;
    int round = sweep_stage_round(cell, stage, &base);
    if (!strcmp(base, "eval_pruned")) base = "eval";  // the same evaluation, of the pruned model
    ADD("%s device=%s", base, device_name(c->device));
    if (!strcmp(base, "prune") && !strcmp(cell->strategy, "hetero")) {  // block library + search + surgery
        CalibOptions co;
        plan_calib(c, &co);
        ADD(" hetero ratio=%.9g widths=%s attention=%d metric=%s windows=%d seq=%d batch=%d agg=%d", cell->hetero_ratio,
            c->hetero_widths, c->hetero_attention, c->hetero_metric, co.windows, co.seq_len, co.batch, (int)co.agg);
    } else if (!strcmp(base, "prune")) {
        CalibOptions co;
        PruneTarget t;
        plan_calib(c, &co);
        plan_prune_target(cell, round, &t);
        ADD(" windows=%d seq=%d batch=%d agg=%d gpu=%d depth=%d layers=%d ffn=%d heads=%d kv=%d hidden=%d bi_after_norm=%d"
            " ablation_windows=%d",
            co.windows, co.seq_len, co.batch, (int)co.agg, co.gpu, (int)t.depth, t.layers, t.ffn, t.heads, t.kv_heads, t.hidden,
            co.bi_after_norm, co.ablation_windows);
    } else if (!strcmp(base, "distill") || !strcmp(base, "train") || !strcmp(base, "correct")) {
        int kd = !strcmp(base, "distill");
        TrainConfig tc;
        if (!strcmp(base, "correct")) plan_correct(c, &tc);
        else plan_train(c, kd, kd && round < cell->n_rounds - 1 ? c->round_steps : c->steps, &tc);
        const OptimConfig* o = &tc.optim;
        const LossConfig* l = &tc.loss;
        ADD(" steps=%d batch=%d accum=%d seq=%d lr=%.9g min_lr=%.9g warmup=%d total=%d cosine=%d b1=%.9g b2=%.9g eps=%.9g"
            " wd=%.9g clip=%.9g ce=%.9g kdw=%.9g kd=%d temp=%.9g t2=%d topk=%d kd_auto=%.9g hidden=%d val_every=%d"
            " val_windows=%d val_fraction=%.9g seed=%llu gpu=%d save_every=%d",
            tc.steps, tc.batch, tc.grad_accum, tc.seq_len, o->lr, o->min_lr, o->warmup, o->total_steps, o->cosine, o->beta1,
            o->beta2, o->eps, o->weight_decay, o->clip, l->ce_weight, l->kd_weight, (int)l->kd, l->temperature, l->t2_scaling,
            l->topk, l->kd_auto_scale, (int)tc.hidden_kind, tc.val_every, tc.val_windows, tc.val_fraction,
            (unsigned long long)tc.seed, tc.gpu, tc.save_every);
        // the reduction's buckets: the CPU's fp64 sums are exact whatever the cut; NCCL's fp32 ones may round
        // otherwise, so a GPU run over ranks is keyed on them
        if (tc.gpu && sweep_distill_ranks(c) > 1)
            ADD(" ranks=%d bucket_bytes=%zu zero1=%d reduce_bf16=%d", sweep_distill_ranks(c), tc.bucket_bytes, tc.zero1, tc.reduce_bf16);
    } else if (!strcmp(base, "init")) {
        ADD(" seed=%d layers=%d ffn=%d heads=%d kv=%d hidden=%d", c->seed, cell->layers, cell->ffn, cell->heads, cell->kv_heads,
            cell->hidden);
    } else if (!strcmp(base, "eval")) {
        MmluOptions mo;
        PplOptions po;
        plan_mmlu(c, &mo);
        plan_ppl(c, &po);
        if (c->mmlu[0])
            ADD(" mmlu: shots=%d limit=%d batch=%d max_len=%d split=%s subjects=%s truncate=%s", mo.shots, mo.limit, mo.batch,
                mo.max_len, mo.split, mo.subjects ? mo.subjects : "all", mmlu_truncation_name(mo.truncation));
        if (c->val[0]) ADD(" ppl: tokens=%d seq=%d stride=%d chunk=%d", c->ppl_tokens, po.seq_len, po.stride, po.chunk);
    } else if (!strcmp(base, "bench")) {
        ADD(" precision=%s", c->precision);
        for (int i = 0; i < c->n_bench_batch; i++) {
            BenchOptions bo;
            plan_bench(c, i, &bo);
            ADD(" [batch=%d prompt=%d gen=%d repeats=%d seed=%llu]", bo.batch, bo.prompt_len, bo.gen_len, bo.repeats,
                (unsigned long long)bo.seed);
        }
    }
}
