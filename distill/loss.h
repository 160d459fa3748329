// loss.h: the losses of distillation and training, fused with the lm_head: logits are made for a
// chunk of rows at a time, the loss and its gradient computed there, and the gradient sent back
// through the lm_head, so (rows, vocab) never exists whole (Qwen's vocab is 151,936).
//
// Per row (z student logits, zt teacher logits, p = softmax(z / T), pt = softmax(zt / T)):
//   ce    = logsumexp(z) - z[target]
//   kl    = sum pt (log pt - log p)                 forward KL(teacher || student), Minitron's default
//   rkl   = sum p (log p - log pt)                  reverse KL
//   topk  = KL between the teacher's and the student's distributions over the teacher's top-k tokens
//           only (both renormalised over that set)
//   kd terms are multiplied by T^2 when t2_scaling (gradients keep the same scale across T).
// loss = ce_weight * mean(ce) + kd_weight * mean(kd), means over all rows.
// kd_auto_scale > 0 (--kd-scale auto[:S], NeMo's LogitsAndIntermediatesLossBalancer): the trainer sets
// kd_weight per micro-batch to S * mean(ce) / mean(kd), both values taken before the gradient (a
// constant, not differentiated), so the KD term is S times the LM loss in magnitude; lm_head_loss
// itself only reads kd_weight.
#pragma once
#include "../kernels/check.h"
#include "../models/train_config.h"

// KdKind, LossConfig and LossValues: models/train_config.h (the GPU trainer below distill/ needs them)

// xnf (N,C) student final-norm output; lm_head (V,C); targets (N) or NULL when ce_weight is 0;
// t_xnf (N,Ct) and t_lm_head (V,Ct) the teacher's, or NULL without KD.
// d_xnf (N,C) is overwritten with grad_scale * dloss/dxnf; d_lm_head (V,C) += grad_scale * dloss/dlm_head
// (grad_scale = 1/K averages K accumulated micro-batches). With d_lm_head NULL only the loss is
// computed (validation). Fails on a non-finite loss.
int lm_head_loss(const LossConfig* cfg, const float* xnf, const float* lm_head, int N, int C, int V,
                 const int* targets, const float* t_xnf, const float* t_lm_head, int Ct, float grad_scale,
                 float* d_xnf, float* d_lm_head, LossValues* out, Err* e);
// Parses a loss spec: kl | rkl | topk:K (1..4096) | ce | mix:W_CE,KIND (KIND kl, rkl or topk:K; KD weight 1).
// Sets ce/kd weights, kind and k; temperature and T^2 are left at 0 for the caller. Unknown specs, and
// a KD loss without a teacher, are refused: -1 with e = "loss 'SPEC': ...".
int loss_parse(const char* spec, int have_teacher, LossConfig* l, Err* e);
// --kd-scale: "none" (kd_auto_scale 0) | "auto" (S = 1) | "auto:S" (S in (0, 1e6]); refused for a loss
// without both terms (it balances the KD term against the LM loss). -1 with e = "--kd-scale 'SPEC': ...".
int kd_scale_parse(const char* spec, LossConfig* l, Err* e);
