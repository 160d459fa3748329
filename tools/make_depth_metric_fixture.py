#!/usr/bin/env python3
"""Depth metrics of a committed tiny checkpoint computed with Hugging Face transformers, for
tests/test_prune.c: Block Influence with the last layer before and after the final norm, and the
layer-ablation NMSE (final hidden state and logits) of every single layer and every block of 2.

Usage: python tools/make_depth_metric_fixture.py   (needs tools/requirements.txt)

Model: tests/fixtures/hf/qwen3_odd_untied_bias_f32_sharded (made by tools/make_hf_fixtures.py).
Tokens: 4 sequences of 24 ids from numpy's default_rng(7). Ablation uses the first 3 sequences.
Definitions (those of prune/importance.h and prune/ablation.h):
  bi[l]   = mean over tokens of 1 - cos(h_l, h_{l+1}); h_L before the final norm (the hook on the
            norm's input) or after it (transformers' hidden_states[-1])
  NMSE    = sum (ablated - full)^2 / sum full^2 over all tokens and features; hidden = the final
            norm's output; ablating layers s..s+n-1 = removing them from model.model.layers
Writes tests/fixtures/prune/depth_metrics.json.
"""
import copy, json, os

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "tests", "fixtures", "hf", "qwen3_odd_untied_bias_f32_sharded")
OUT = os.path.join(HERE, "..", "tests", "fixtures", "prune", "depth_metrics.json")
SEQS, T, ABLATION_SEQS, BLOCK_SIZES = 4, 24, 3, [1, 2]


def run(model, ids):
    """(pre-norm h_L, hidden_states tuple, logits) of ids (B, T)."""
    pre = {}
    hook = model.model.norm.register_forward_hook(lambda mod, inp, out: pre.__setitem__("h", inp[0].detach()))
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True, use_cache=False)
    hook.remove()
    return pre["h"], out.hidden_states, out.logits


def bi(a, b):
    return (1 - torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)).mean().item()


def main():
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    cfg = model.config
    L = cfg.num_hidden_layers
    ids = np.random.default_rng(7).integers(0, cfg.vocab_size, size=(SEQS, T))
    x = torch.tensor(ids, dtype=torch.long)
    pre, hs, _ = run(model, x)
    before = [bi(hs[l], hs[l + 1] if l + 1 < L else pre) for l in range(L)]
    after = [bi(hs[l], hs[l + 1]) for l in range(L)]
    xa = x[:ABLATION_SEQS]
    _, hs_full, logits_full = run(model, xa)
    y, z = hs_full[-1].double(), logits_full.double()
    ablation = []
    for n in BLOCK_SIZES:
        hidden, logits = [], []
        for s in range(L - n + 1):
            m = copy.deepcopy(model)
            m.model.layers = torch.nn.ModuleList([layer for i, layer in enumerate(m.model.layers) if not s <= i < s + n])
            _, hs_a, logits_a = run(m, xa)
            hidden.append(((hs_a[-1].double() - y) ** 2).sum().item() / (y ** 2).sum().item())
            logits.append(((logits_a.double() - z) ** 2).sum().item() / (z ** 2).sum().item())
        ablation.append({"size": n, "hidden_nmse": hidden, "logits_nmse": logits})
    ref = {"model": "tests/fixtures/hf/qwen3_odd_untied_bias_f32_sharded", "seq_len": T, "sequences": SEQS,
           "ablation_sequences": ABLATION_SEQS, "tokens": ids.reshape(-1).tolist(), "bi_before_final_norm": before,
           "bi_after_final_norm": after, "ablation": ablation,
           "versions": {"transformers": transformers.__version__, "torch": torch.__version__}}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(ref, f, indent=1)
    print("bi before", before, "after", after)
    for a in ablation:
        print("size", a["size"], "hidden", a["hidden_nmse"], "logits", a["logits_nmse"])


if __name__ == "__main__":
    main()
