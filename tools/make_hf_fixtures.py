#!/usr/bin/env python3
"""Build tiny random Qwen3 / Qwen2 / Llama checkpoints with Hugging Face transformers' own model
classes and record reference logits and greedy generations for arbor's parity tests.

Usage: python tools/make_hf_fixtures.py [OUT_DIR]   (default tests/fixtures/hf)
Needs: pip install -r tools/requirements.txt

Each case directory holds a checkpoint exactly as transformers saves it (config.json plus
safetensors, sharded in one case, in the dtype named by the case) and:
  reference.safetensors  F32 tensors: prompt{i} (T_i, V) logits of each prompt run alone,
                         decode (T, V) logits over prompt 0 + its greedy continuation
  reference.json         prompts, greedy ids, the min top1-top2 logit gap seen, versions
The weights are drawn with larger scales than HF's init so that logits are far from ties, and
rounded to the storage dtype before the reference runs, so the reference sees what arbor loads.
"""
import json, os, shutil, sys

import numpy as np
import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import (LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

GEN_STEPS = 32

CASES = [
    # name, model class, config, storage dtype, shard size, rewrite config to the Hub dialect
    ("qwen3_gqa_headdim_tied_bf16", Qwen3ForCausalLM, Qwen3Config(
        vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=24, rms_norm_eps=1e-6,
        rope_theta=1e6, tie_word_embeddings=True, max_position_embeddings=512),
     torch.bfloat16, None, False),
    ("qwen3_odd_untied_bias_f32_sharded", Qwen3ForCausalLM, Qwen3Config(
        vocab_size=160, hidden_size=45, intermediate_size=70, num_hidden_layers=3,
        num_attention_heads=3, num_key_value_heads=1, head_dim=16, rms_norm_eps=1e-6,
        rope_theta=1e6, tie_word_embeddings=False, attention_bias=True,
        max_position_embeddings=512),
     torch.float32, "60KB", False),
    ("qwen2_bias_untied_f16", Qwen2ForCausalLM, Qwen2Config(
        vocab_size=200, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=False, max_position_embeddings=512),
     torch.float16, None, False),
    ("llama_tied_hubdialect_f32", LlamaForCausalLM, LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=2, head_dim=8, rms_norm_eps=1e-5,
        rope_theta=500000.0, tie_word_embeddings=True, max_position_embeddings=512),
     torch.float32, None, True),
]


def reinit(model, dtype, gen):
    """Scales chosen so that logits spread over several units (no near-ties in greedy decoding)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=gen)
            elif name.endswith(".bias"):
                v = 0.2 * torch.randn(p.shape, generator=gen)
            elif "embed_tokens" in name:
                v = torch.randn(p.shape, generator=gen)
            else:
                v = torch.randn(p.shape, generator=gen) / (p.shape[1] ** 0.5) * 1.5
            p.copy_(v.to(dtype).to(torch.float32))


def hub_dialect(path):
    """transformers 5 writes rope_parameters; Hub checkpoints carry rope_theta at the top level."""
    with open(path) as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp["rope_theta"]
    cfg["rope_scaling"] = None
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def make_case(out_root, name, cls, cfg, dtype, shard, hub, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    cfg._attn_implementation = "eager"
    model = cls(cfg).eval()
    reinit(model, dtype, gen)
    if cfg.tie_word_embeddings:
        model.tie_weights()

    V = cfg.vocab_size
    lens = [7, 13, 4]
    prompts = [torch.randint(0, V, (n,), generator=gen).tolist() for n in lens]
    tensors = {}
    with torch.no_grad():
        for i, p in enumerate(prompts):
            tensors[f"prompt{i}"] = model(torch.tensor([p])).logits[0].float().contiguous()
        ids = torch.tensor([prompts[0]])
        out = model.generate(ids, max_new_tokens=GEN_STEPS, min_new_tokens=GEN_STEPS,
                             do_sample=False, eos_token_id=None, pad_token_id=0)
        generated = out[0, len(prompts[0]):].tolist()
        full = model(out).logits[0].float().contiguous()
        tensors["decode"] = full
        top2 = torch.topk(full[len(prompts[0]) - 1:-1], 2, dim=-1).values
        gap = float((top2[:, 0] - top2[:, 1]).min())
    assert gap > 1e-3, f"{name}: greedy near-tie (gap {gap}); pick another seed"
    # Save only after the reference ran: model.to(bf16) also rounds the RoPE inv_freq buffer, which
    # a round trip back to fp32 would not undo.
    d = os.path.join(out_root, name)
    shutil.rmtree(d, ignore_errors=True)
    kw = {"max_shard_size": shard} if shard else {}
    model.to(dtype).save_pretrained(d, safe_serialization=True, **kw)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(d, extra)):
            os.remove(os.path.join(d, extra))
    if hub:
        hub_dialect(os.path.join(d, "config.json"))
    save_file(tensors, os.path.join(d, "reference.safetensors"))
    ref = {
        "case": name, "architecture": cls.__name__, "storage_dtype": str(dtype),
        "prompts": prompts, "generate_prompt": 0, "generated": generated,
        "min_greedy_gap": gap,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__},
    }
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print(f"{name}: gap {gap:.4f}, generated {generated[:8]}...")


def main():
    out_root = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures", "hf")
    os.makedirs(out_root, exist_ok=True)
    for i, (name, cls, cfg, dtype, shard, hub) in enumerate(CASES):
        make_case(out_root, name, cls, cfg, dtype, shard, hub, seed=1234 + i)


if __name__ == "__main__":
    main()
