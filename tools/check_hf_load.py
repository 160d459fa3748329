#!/usr/bin/env python3
"""Check that Hugging Face transformers loads, unchanged, the checkpoints arbor writes, and that its
logits agree with `arbor forward` on them.

Usage: python tools/check_hf_load.py [path/to/arbor]    (needs tools/requirements.txt)

Writes into a temp dir: arbor init tiny (F32 and BF16, single file and sharded, tied and untied), arbor
prune of it (depth + every width target), and arbor convert of each tests/fixtures/hf case (Qwen2,
Llama, biases); for each, loads it with
AutoModelForCausalLM.from_pretrained and compares logits for fixed token ids (relative L2).
"""
import json, os, struct, subprocess, sys, tempfile

import numpy as np
import torch
from transformers import AutoModelForCausalLM

ARBOR = sys.argv[1] if len(sys.argv) > 1 else "build/arbor"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "hf")
TOKENS = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]


def arbor(*args):
    subprocess.run([ARBOR, *args], check=True, stderr=subprocess.DEVNULL)


def compare(d):
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        ref = model(torch.tensor([TOKENS])).logits[0].numpy()
    out = os.path.join(d, "arbor_logits.npy")
    arbor("forward", "--model", d, "--tokens", " ".join(map(str, TOKENS)), "--out", out)
    got = np.load(out)
    err = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    cfg = json.load(open(os.path.join(d, "config.json")))
    return cfg["architectures"][0], err


def main():
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        for name, extra in [("tiny_f32", ["--dtype", "f32"]), ("tiny_bf16_sharded", ["--max-shard-bytes", "200000"]),
                            ("tiny_untied_f32", ["--dtype", "f32", "--untied"])]:
            d = os.path.join(tmp, name)
            args = ["init", "--arch", "tiny", "--seed", "1", "--out", d] + extra
            arbor(*args)
            dirs.append(d)
        # pruned: depth and every width target at once, scored on a small calibration shard
        shard = os.path.join(tmp, "calib.shard")
        ids = [(i * 7919) % 512 for i in range(4096)]
        with open(shard, "wb") as f:
            f.write(b"ARBORTOK" + struct.pack("<IIQIiQ", 1, 2, len(ids), 512, -1, 1) + bytes(24))
            f.write(struct.pack(f"<{len(ids)}H", *ids))
        for name, extra in [("pruned_bi_width", ["--strategy", "bi", "--layers", "3", "--ffn", "128", "--heads", "2",
                                                 "--kv-heads", "1", "--hidden", "48"]),
                            ("pruned_drop_block", ["--drop-layers", "1,2", "--heads", "4", "--kv-heads", "2"])]:
            d = os.path.join(tmp, name)
            arbor("prune", "--model", dirs[0], "--calib", shard, "--seq-len", "32", "--out", d, "--dtype", "f32", *extra)
            dirs.append(d)
        for case in sorted(os.listdir(FIXTURES)):
            d = os.path.join(tmp, "convert_" + case)
            arbor("convert", "--model", os.path.join(FIXTURES, case), "--out", d, "--dtype", "f32")
            dirs.append(d)
        for d in dirs:
            arch, err = compare(d)
            ok = err <= 1e-5
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {os.path.basename(d):45s} {arch:18s} rel L2 {err:.2e}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
