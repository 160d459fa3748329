#!/usr/bin/env python3
"""A heterogeneous Qwen3 (layers that differ) and its reference logits, built with transformers' own
modules, for arbor's per-layer models (config.json "arbor_layers").

Usage: python tools/make_hetero_fixture.py [OUT_DIR]   (default tests/fixtures/hetero)
Needs: pip install -r tools/requirements.txt

A tiny Qwen3ForCausalLM (4 layers, hidden 64, intermediate 96, 4 heads of 16, 2 KV heads, vocab 256,
untied) with random weights; then, per layer, transformers' own Qwen3MLP of another intermediate size
(96, 48, none, 24) and the attention kept or replaced by a module that adds nothing (kept, removed,
kept, removed). A removed sublayer in transformers' decoder layer is residual + 0 = the stream passing,
which is what arbor's heterogeneous layer does. Writes OUT_DIR/config.json (Qwen3 fields plus
arbor_layers), model.safetensors (only the tensors that exist: no q/k/v/o or input_layernorm where the
attention is removed, no gate/up/down or post_attention_layernorm where the FFN is) and
reference.safetensors: "ids" (1, T) int64 and "logits" (T, V) float32, with the versions in its metadata.
"""
import json, os, sys

import numpy as np
import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import Qwen3Config, Qwen3ForCausalLM
from transformers.models.qwen3.modeling_qwen3 import Qwen3MLP

LAYERS = [(96, True), (48, False), (0, True), (24, False)]


class Nothing(torch.nn.Module):
    """A removed sublayer: adds zero to the residual stream (the attention's call returns a pair)."""

    def __init__(self, pair):
        super().__init__()
        self.pair = pair

    def forward(self, hidden_states, *args, **kwargs):
        z = torch.zeros_like(hidden_states)
        return (z, None) if self.pair else z


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures", "hetero")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(20261208)
    cfg = Qwen3Config(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=len(LAYERS),
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
                      rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False, attention_bias=False)
    cfg._attn_implementation = "eager"
    model = Qwen3ForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():  # weights of a scale that makes the layers matter
            p.normal_(0, 0.08)
        for layer in model.model.layers:  # norms away from 1, so that a wrong norm shows
            for n in (layer.input_layernorm, layer.post_attention_layernorm, layer.self_attn.q_norm, layer.self_attn.k_norm):
                n.weight.uniform_(0.5, 1.5)
        model.model.norm.weight.uniform_(0.5, 1.5)
        for l, (ffn, attention) in enumerate(LAYERS):
            layer = model.model.layers[l]
            if ffn == 0:
                layer.mlp = Nothing(pair=False)
            else:
                c = Qwen3Config(**{**cfg.to_dict(), "intermediate_size": ffn})
                layer.mlp = Qwen3MLP(c)
                for p in layer.mlp.parameters():
                    p.normal_(0, 0.08)
            if not attention:
                layer.self_attn = Nothing(pair=True)
        tensors = {}
        for name, p in model.state_dict().items():
            parts = name.split(".")
            if parts[0] == "model" and parts[1] == "layers":
                l, ffn, attention = int(parts[2]), *LAYERS[int(parts[2])]
                if not attention and (parts[3] == "self_attn" or parts[3] == "input_layernorm"):
                    continue
                if ffn == 0 and (parts[3] == "mlp" or parts[3] == "post_attention_layernorm"):
                    continue
            tensors[name] = p.detach().float().contiguous()
        save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        conf = cfg.to_dict()
        conf = {k: conf[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                     "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
                                     "rms_norm_eps", "tie_word_embeddings", "attention_bias")}
        rope = getattr(cfg, "rope_parameters", None) or {}
        conf["rope_theta"] = float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))
        assert conf["rope_theta"] == 10000.0, rope
        conf.update({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_act": "silu",
                     "torch_dtype": "float32", "bos_token_id": None, "eos_token_id": 0,
                     "arbor_layers": [{"intermediate_size": f, "attention": a} for f, a in LAYERS]})
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(conf, f, indent=2)
        ids = torch.randint(0, cfg.vocab_size, (1, 19))
        logits = model(ids).logits[0].float().contiguous()
    meta = {"torch": torch.__version__, "transformers": transformers.__version__, "safetensors": safetensors.__version__,
            "numpy": np.__version__, "layers": json.dumps(LAYERS)}
    save_file({"ids": ids.contiguous(), "logits": logits}, os.path.join(out, "reference.safetensors"), metadata=meta)
    print(f"{out}: {len(tensors)} tensors, logits {tuple(logits.shape)}")


if __name__ == "__main__":
    main()
