#!/usr/bin/env python3
"""Reference losses and gradients for arbor's backward pass (tests/test_train_grad.c), computed with
Hugging Face transformers models and torch autograd.

Usage: python tools/make_train_fixtures.py      (needs tools/requirements.txt)
Writes tests/fixtures/train/<case>/: student/ and teacher/ checkpoints (F32, teacher deeper and wider),
reference.json (token windows, loss settings and values, versions) and grads_<loss>.safetensors (the
gradient of every student parameter, named as the parameter).

Loss definitions (distill/loss.h): ce = mean token cross-entropy; kl = T^2 * mean KL(pt || ps) with
p = softmax(logits / T); rkl = T^2 * mean KL(ps || pt); topk = T^2 * mean KL over the teacher's top-k
tokens, both distributions renormalised there; a case's total is ce_weight * ce + kd_weight * kd.
"""
import json, os, shutil, sys

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

sys.path.insert(0, os.path.dirname(__file__))
from make_hf_fixtures import reinit  # noqa: E402  (the same scaled init as the forward fixtures)

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "train")
B, T, V = 2, 8, 96


def cfgs(kind):
    common = dict(vocab_size=V, rms_norm_eps=1e-6, max_position_embeddings=128)
    if kind == "qwen3":
        s = Qwen3Config(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=16, rope_theta=1e6, tie_word_embeddings=True, **common)
        t = Qwen3Config(hidden_size=40, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=10, rope_theta=1e6, tie_word_embeddings=True, **common)
        return Qwen3ForCausalLM, s, t
    if kind == "llama":
        s = LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=4, head_dim=8, rope_theta=10000.0, tie_word_embeddings=False, **common)
        t = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=8, rope_theta=10000.0, tie_word_embeddings=False, **common)
        return LlamaForCausalLM, s, t
    s = Qwen2Config(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, rope_theta=10000.0, tie_word_embeddings=False, **common)
    t = Qwen2Config(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                    num_key_value_heads=2, rope_theta=10000.0, tie_word_embeddings=False, **common)
    return Qwen2ForCausalLM, s, t


def kd_term(zs, zt, kind, temp, k):
    if kind == "kl":
        return (F.softmax(zt / temp, -1) * (F.log_softmax(zt / temp, -1) - F.log_softmax(zs / temp, -1))).sum(-1)
    if kind == "rkl":
        return (F.softmax(zs / temp, -1) * (F.log_softmax(zs / temp, -1) - F.log_softmax(zt / temp, -1))).sum(-1)
    idx = zt.topk(k, dim=-1).indices
    a, b = zs.gather(-1, idx), zt.gather(-1, idx)
    return (F.softmax(b / temp, -1) * (F.log_softmax(b / temp, -1) - F.log_softmax(a / temp, -1))).sum(-1)


LOSSES = {  # name: (ce_weight, kd_weight, kd, temperature, t2_scaling, topk)
    "ce": (1.0, 0.0, "none", 1.0, False, 0),
    "mix_kl": (0.5, 1.0, "kl", 2.0, True, 0),
    "rkl": (0.0, 1.0, "rkl", 1.0, False, 0),
    "topk": (0.0, 1.0, "topk", 1.5, True, 5),
    "hidden_cos": (1.0, 0.0, "none", 1.0, False, 0),
    "hidden_mse": (0.0, 1.0, "kl", 1.0, False, 0),
}
HIDDEN = {"hidden_cos": ("cosine", 1.0), "hidden_mse": ("mse", 0.5)}  # name: (kind, weight)
CASES = {"qwen3": ["ce", "mix_kl", "rkl", "topk"], "llama": ["ce", "mix_kl", "hidden_cos", "hidden_mse"], "qwen2": ["ce"]}


def layer_outputs(model, inp):
    """Residual stream after each decoder layer, via forward hooks (hidden_states[-1] is normed)."""
    outs, hooks = [], []
    for layer in model.model.layers:
        hooks.append(layer.register_forward_hook(lambda m, a, o: outs.append(o[0] if isinstance(o, tuple) else o)))
    logits = model(inp).logits
    for h in hooks:
        h.remove()
    return logits, outs


def hidden_term(hs, ht, kind):
    if kind == "cosine":
        return (1 - F.cosine_similarity(hs, ht, dim=-1, eps=1e-12)).mean()
    return ((hs - ht) ** 2).mean()


TRAJ = dict(steps=10, accum=2, lr=3e-3, min_lr=3e-4, warmup=3, wd=0.1, beta1=0.9, beta2=0.95, eps=1e-8, clip=1.0,
            loss="mix_kl")


def lr_at(s):  # distill/optim.c lr_at, cosine
    import math
    if s < TRAJ["warmup"]:
        return TRAJ["lr"] * (s + 1) / TRAJ["warmup"]
    p = min(1.0, (s - TRAJ["warmup"]) / (TRAJ["steps"] - TRAJ["warmup"]))
    return TRAJ["min_lr"] + 0.5 * (TRAJ["lr"] - TRAJ["min_lr"]) * (1 + math.cos(math.pi * p))


def trajectory(student, teacher, gen, d):
    """10 AdamW steps with warmup, cosine decay, clipping and 2-step accumulation on the mix_kl loss."""
    ce_w, kd_w, kd, temp, t2, k = LOSSES[TRAJ["loss"]]
    no_decay = [p for n, p in student.named_parameters() if "norm" in n or n.endswith(".bias")]
    decay = [p for n, p in student.named_parameters() if not ("norm" in n or n.endswith(".bias"))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": TRAJ["wd"]}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=TRAJ["lr"], betas=(TRAJ["beta1"], TRAJ["beta2"]), eps=TRAJ["eps"])
    windows = torch.randint(0, V, (TRAJ["steps"], TRAJ["accum"], B, T + 1), generator=gen)
    losses, norms = [], []
    for step in range(TRAJ["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad()
        total_loss = 0.0
        for m in range(TRAJ["accum"]):
            inp, tgt = windows[step, m, :, :-1], windows[step, m, :, 1:]
            with torch.no_grad():
                zt = teacher(inp).logits.reshape(-1, V)
            zs = student(inp).logits.reshape(-1, V)
            loss = ce_w * F.cross_entropy(zs, tgt.reshape(-1)) + kd_w * kd_term(zs, zt, kd, temp, k).mean() * (temp * temp if t2 else 1.0)
            (loss / TRAJ["accum"]).backward()
            total_loss += float(loss) / TRAJ["accum"]
        norms.append(float(torch.nn.utils.clip_grad_norm_(student.parameters(), TRAJ["clip"])))
        opt.step()
        losses.append(total_loss)
    params = {n: p.detach().contiguous() for n, p in student.named_parameters()}
    if student.config.tie_word_embeddings:
        params.pop("lm_head.weight", None)
    save_file(params, os.path.join(d, "trajectory_params.safetensors"))
    return {**TRAJ, "windows": windows.tolist(), "losses": losses, "grad_norms": norms}


def main():
    for n, (kind, losses) in enumerate(CASES.items()):
        cls, scfg, tcfg = cfgs(kind)
        gen = torch.Generator().manual_seed(100 + n)
        torch.manual_seed(100 + n)
        scfg._attn_implementation = tcfg._attn_implementation = "eager"
        student, teacher = cls(scfg).float(), cls(tcfg).float().eval()
        reinit(student, torch.float32, gen)
        reinit(teacher, torch.float32, gen)
        for m in (student, teacher):
            if m.config.tie_word_embeddings:
                m.tie_weights()
        d = os.path.join(OUT, kind)
        shutil.rmtree(d, ignore_errors=True)
        student.save_pretrained(os.path.join(d, "student"))
        teacher.save_pretrained(os.path.join(d, "teacher"))
        for sub in ("student", "teacher"):
            p = os.path.join(d, sub, "generation_config.json")
            if os.path.exists(p):
                os.remove(p)
        windows = torch.randint(0, V, (B, T + 1), generator=gen)
        inp, tgt = windows[:, :-1], windows[:, 1:]
        with torch.no_grad():
            zt_full, t_outs = layer_outputs(teacher, inp)
            zt = zt_full.reshape(-1, V)
        Ls, Lt = scfg.num_hidden_layers, tcfg.num_hidden_layers
        layer_map = [(i + 1) * Lt // Ls - 1 for i in range(Ls)]  # hidden_loss.h: spread evenly
        ref = {"B": B, "T": T, "windows": windows.tolist(), "losses": {},
               "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}
        for name in losses:
            ce_w, kd_w, kd, temp, t2, k = LOSSES[name]
            student.zero_grad()
            zs_full, s_outs = layer_outputs(student, inp)
            zs = zs_full.reshape(-1, V)
            ce = F.cross_entropy(zs, tgt.reshape(-1))
            kdv = torch.zeros(())
            if kd != "none":
                kdv = kd_term(zs, zt, kd, temp, k).mean() * (temp * temp if t2 else 1.0)
            total = ce_w * ce + kd_w * kdv
            hidden_kind, hidden_w = HIDDEN.get(name, ("none", 0.0))
            if hidden_kind != "none":
                hv = sum(hidden_term(s_outs[i], t_outs[layer_map[i]], hidden_kind) for i in range(Ls)) / Ls
                total = total + hidden_w * hv
            total.backward()
            grads = {nm: p.grad.detach().contiguous() for nm, p in student.named_parameters()}
            if scfg.tie_word_embeddings and "lm_head.weight" in grads:
                del grads["lm_head.weight"]
            save_file(grads, os.path.join(d, f"grads_{name}.safetensors"))
            ref["losses"][name] = {"ce_weight": ce_w, "kd_weight": kd_w, "kd": kd, "temperature": temp,
                                   "t2_scaling": t2, "topk": k, "hidden": hidden_kind, "hidden_weight": hidden_w,
                                   "layer_map": layer_map, "total": float(total), "ce_value": float(ce), "kd_value": float(kdv)}
        if kind == "qwen3":
            ref["trajectory"] = trajectory(student, teacher, gen, d)
        with open(os.path.join(d, "reference.json"), "w") as f:
            json.dump(ref, f, indent=1)
        print(kind, {k: round(v["total"], 5) for k, v in ref["losses"].items()})


if __name__ == "__main__":
    main()
