#!/usr/bin/env python3
"""Reference logits for arbor's 16-bit CPU weights (--weights bf16|f16) on the fp32 checkpoints of
tests/fixtures/hf (made by tools/make_hf_fixtures.py).

Usage: python tools/make_16bit_fixtures.py [FIXTURE_ROOT]   (default tests/fixtures/hf)
Needs: pip install -r tools/requirements.txt

arbor holds a model's matrices (embedding, projections, lm_head) 16-bit and everything else fp32, and
computes in fp32. The same model in transformers: load the fp32 checkpoint, round every 2-D parameter
with torch's .to(dtype) and back to fp32, run in fp32. For each fp32 case this writes
reference16.safetensors beside reference.safetensors, F32 tensors:
  {bf16,f16}_prompt{i}  (T_i, V) logits of each prompt of reference.json run alone
  {bf16,f16}_decode     (T, V) logits over prompt 0 + the fp32 model's greedy continuation
and records the versions in the file's metadata.
"""
import json, os, sys

import numpy as np
import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

CASES = ["qwen3_odd_untied_bias_f32_sharded", "llama_tied_hubdialect_f32"]
DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16}


def rounded_model(d, dtype):
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        for p in model.parameters():  # tied embeddings are one parameter: rounded once, as arbor does
            if p.dim() == 2:
                p.copy_(p.to(dtype).to(torch.float32))
    return model


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures", "hf")
    for case in CASES:
        d = os.path.join(root, case)
        with open(os.path.join(d, "reference.json")) as f:
            ref = json.load(f)
        tensors = {}
        for tag, dtype in DTYPES.items():
            model = rounded_model(d, dtype)
            with torch.no_grad():
                for i, p in enumerate(ref["prompts"]):
                    tensors[f"{tag}_prompt{i}"] = model(torch.tensor([p])).logits[0].float().contiguous()
                ids = ref["prompts"][ref["generate_prompt"]] + ref["generated"]
                tensors[f"{tag}_decode"] = model(torch.tensor([ids])).logits[0].float().contiguous()
        meta = {"torch": torch.__version__, "transformers": transformers.__version__,
                "safetensors": safetensors.__version__, "numpy": np.__version__,
                "rounding": "2-D parameters .to(dtype).to(float32); 1-D parameters fp32"}
        save_file(tensors, os.path.join(d, "reference16.safetensors"), metadata=meta)
        print(f"{case}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
