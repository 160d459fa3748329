// sweep_config.h: a sweep described in an INI file (read with inih): the teacher, the data, the stage
// settings, the matrix axes and the baselines. Every key is known and typed; an unknown key, a bad
// value or an impossible combination is reported as FILE:LINE before any work starts.
//
//   [sweep]     name, out, device (cpu or cuda: where calibration, distill, train, eval and bench run),
//               max_cells (a larger matrix is refused; default 1024)
//   [teacher]   model, tokenizer, correct_steps, correct_lr (teacher correction: the teacher fine-tuned on
//               [data] distill for correct_steps steps before any student is pruned or distilled from it)
//   [data]      calib, distill, val
//   [prune]     calib_windows, seq_len, aggregation, ablation_windows, bi_after_norm
//   [distill]   steps, round_steps (the rounds before the last of a cell with rounds), tokens, seq_len, batch, grad_accum, lr, min_lr, warmup, schedule, loss, kd_temp,
//               t2, weight_decay, clip, seed, nodes, ranks_per_node (CPU: MPI ranks), gpus_per_node (CUDA: a
//               rank per GPU, NCCL), bucket_mb (the ranks' gradient buckets, default 25), zero1 (the
//               optimizer state sharded over the ranks), grad_reduce (fp32 | bf16, GPU ranks). batch x grad_accum is the global batch whatever the ranks: each rank
//               accumulates grad_accum / ranks micro-batches, so the ranks do not change the result.
//   [eval]      mmlu, shots, subjects, limit, truncate (tokens|shots), ppl_seq_len, ppl_tokens
//   [bench]     batch, prompt_len, gen_len, repeats, precision (CPU: fp32, bf16 or f16 weights; CUDA: bf16)
//   [matrix]    strategies (bi, block, last, ppl, ablation, ablation-block), layers, ffn, hidden, heads, kv_heads (lists; 0 = keep).
//               A value may be a chain of rounds, "30>24": prune to 30, distill, score the distilled model again,
//               prune to 24, distill (iterative pruning); a plain value beside a chain is reached in the last round.
//   [baseline.NAME]  model            (evaluated as it is)
//   [scratch]   enabled               (a from-scratch student per pruned shape, same token budget)
//   [hetero]    ratio (parameter shares: a heterogeneous cell "hetero-pNN" each), widths (FFN width grid),
//               attention (variants with the attention removed), metric (kl | loss): the block library,
//               the exact search under the share and the surgery in the cell's prune stage (CPU only)
//   [slurm]     time, mem, partition, account, cpus_per_task, gpus_per_task (--emit-slurm's job array)
#pragma once
#include <stdbool.h>

#include "../distill/loss.h"
#include "../kernels/check.h"
#include "../mmlu/mmlu_eval.h"
#include "../models/engine.h"

#define SWEEP_MAX_AXIS 16
#define SWEEP_MAX_BASELINES 8
#define SWEEP_MAX_ROUNDS 8

typedef struct {
    char name[128], out[1024];
    char device_text[8];   // [sweep] device as written
    int max_cells;
    Device device;         // ... parsed
    char teacher[1024], tokenizer[1024];
    int correct_steps;     // [teacher] correction (0: none) ...
    double correct_lr;     // ... and its learning rate (default: [distill] lr)
    char calib[1024], distill_data[1024], val[1024];
    int calib_windows, prune_seq_len;
    char aggregation[16];
    int ablation_windows, bi_after_norm;  // [prune] depth metrics (importance.h)
    int steps, seq_len, batch, grad_accum, warmup, seed, t2;
    int nodes, ranks_per_node, gpus_per_node;  // [distill] data parallel: ranks = nodes x per node
    double bucket_mb;   // [distill] gradient buckets of the ranks' reduction (0: 25 MB)
    int zero1;          // [distill] shard the masters and AdamW moments over the ranks (ZeRO-1)
    char grad_reduce[8];  // [distill] fp32 (default) | bf16: the type GPU ranks sum gradients in
    double tokens, lr, min_lr, kd_temp, weight_decay, clip;
    char schedule[16], loss[64], kd_scale[32];  // kd_scale: none | auto | auto:S (distill/loss.h)
    LossConfig loss_cfg;   // [distill] loss, kd_temp and t2, parsed: what the distill stage runs
    char mmlu[1024], subjects[2048];
    int shots, limit, ppl_seq_len, ppl_tokens;
    char truncate_text[16];      // [eval] truncate as written
    MmluTruncation truncation;   // ... parsed
    int bench_batch[SWEEP_MAX_AXIS], n_bench_batch, prompt_len, gen_len, repeats;
    char precision[16];
    WeightType bench_weights;    // ... how the CPU bench holds the weights (WEIGHT_F32 on CUDA, which uploads bf16)
    char strategies[SWEEP_MAX_AXIS][16];
    int n_strategies;
    int layers[SWEEP_MAX_AXIS], n_layers;
    int ffn[SWEEP_MAX_AXIS], n_ffn;
    int hidden[SWEEP_MAX_AXIS], n_hidden;
    int heads[SWEEP_MAX_AXIS], n_heads;
    int kv_heads[SWEEP_MAX_AXIS], n_kv_heads;
    // the rounds of each axis value, in sweep_axes order: chain[a][i] (chain_len[a][i] of them, 1 for a
    // plain value) ends with the value itself (layers[i], ffn[i], ...)
    int chain[5][SWEEP_MAX_AXIS][SWEEP_MAX_ROUNDS], chain_len[5][SWEEP_MAX_AXIS];
    int round_steps;       // [distill] round_steps (default: steps)
    char baseline_name[SWEEP_MAX_BASELINES][64], baseline_model[SWEEP_MAX_BASELINES][1024];
    int n_baselines;
    int scratch;           // bool (stored as int: the INI reader writes ints)
    // [hetero]: heterogeneous cells (prune/block_library.h, hetero_search.h), one per parameter share in
    // ratio: the block library scored, the best per-layer architecture under the share, made a model
    char hetero_ratio_text[256], hetero_widths[128], hetero_metric[8];
    double hetero_ratio[SWEEP_MAX_AXIS], hetero_width[16];  // (16: BLOCK_MAX_WIDTHS)
    int n_hetero, n_hetero_widths, hetero_attention;
    char slurm_time[32], slurm_mem[32], slurm_partition[128], slurm_account[128];
    int slurm_cpus, slurm_gpus;  // per task; gpus defaults to 1 with device = cuda
    char path[1024];  // the config file
    char skipped[4096];  // lenient load: the checks not made because an input is not on disk yet, one per line
} SweepConfig;

// The distill stage's ranks: nodes x (ranks_per_node or gpus_per_node); 1 when none are set.
int sweep_distill_ranks(const SweepConfig* c);

// The matrix's integer axes by key ("layers", "ffn", "hidden", "heads", "kv_heads"): values and count.
typedef struct {
    const char* key;
    const int* v;
    int n;
} SweepAxis;
void sweep_axes(const SweepConfig* c, SweepAxis axes[5]);

// The known keys (for tests that walk them all): key i and its section; [baseline.NAME] model is not listed.
int sweep_config_key_count(void);
const char* sweep_config_key(int i, const char** section);

// Reads and validates path before any work: every value and combination, and against what it names
// on disk (the teacher's config.json: layers, widths, head/KV arithmetic, positions; the shards' headers:
// valid, long enough, a vocabulary inside the teacher's; MMLU data and a tokenizer). -1 with e =
// "FILE:LINE: problem".
int sweep_config_load(const char* path, SweepConfig* c, Err* e);
// The same, except that inputs not on disk yet are not errors: c->skipped lists each one and the checks
// that had to be skipped (--dry-run, --emit-slurm before the checkpoints are fetched).
int sweep_config_load_lenient(const char* path, SweepConfig* c, Err* e);

// CELL_CORRECTED: the teacher after teacher correction ([teacher] correct_steps), the model every pruned
// cell is pruned and distilled from.
typedef enum { CELL_TEACHER, CELL_BASELINE, CELL_PRUNED, CELL_SCRATCH, CELL_CORRECTED } CellKind;
const char* cell_kind_name(CellKind k);

typedef struct {
    CellKind kind;
    char id[17];          // hash of what the cell is (kind, label, checkpoint): stable across settings
    char label[128];      // human-readable: "bi-L24-ffn9728"
    char model[1024];     // teacher / baseline checkpoint
    char strategy[16];
    int layers, ffn, hidden, heads, kv_heads;  // the final targets (0: keep)
    int n_rounds;         // prune-distill rounds (1: one shot)
    double hetero_ratio;  // strategy "hetero": the parameter share its search meets (0 otherwise)
    int round[SWEEP_MAX_ROUNDS][5];  // each round's targets in sweep_axes order, 0: keep what the round starts with
} Cell;

// The cells of the sweep: the teacher, the corrected teacher (with correct_steps), each baseline, the
// matrix (strategy x layers x ffn x hidden x heads x kv_heads), and a scratch cell per distinct final
// pruned shape when enabled. *cells is malloc'd.
int sweep_cells(const SweepConfig* c, Cell** cells, int* n);
