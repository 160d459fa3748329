#!/usr/bin/env python3
"""Tokenizer throughput, arbor vs Hugging Face tokenizers, on the same text in one run.

Usage: python tools/bench_tokenizer.py [build/bench_tokenizer_throughput] [DATA_DIR]
Text: the TinyStories validation slice plus every MMLU test question and choice (one per line).
Both sides: single thread, tokenizer load excluded, best of 3. tokenizers also batched (all threads).
"""
import csv, glob, os, subprocess, sys, tempfile, time

import tokenizers

BIN = sys.argv[1] if len(sys.argv) > 1 else "build/bench_tokenizer_throughput"
DATA = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def main():
    parts = [open(os.path.join(DATA, "corpus", "tinystories-valid-slice", "tinystories_val.txt"), encoding="utf-8").read()]
    for path in sorted(glob.glob(os.path.join(DATA, "mmlu", "test", "*.csv"))):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                parts.append("\n".join(row[:5]))
    text = "\n".join(parts)
    raw = text.encode()
    tok_dir = os.path.join(DATA, "qwen3-tokenizer")
    tok = tokenizers.Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
    best = 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        ids = tok.encode(text, add_special_tokens=False).ids
        best = min(best, time.perf_counter() - t0)
    hf = len(raw) / best / 1e6
    lines = text.split("\n")
    t0 = time.perf_counter()
    tok.encode_batch(lines, add_special_tokens=False)
    hf_batch = len(raw) / (time.perf_counter() - t0) / 1e6
    with tempfile.NamedTemporaryFile("wb", suffix=".txt") as f:
        f.write(raw)
        f.flush()
        out = subprocess.run([BIN, tok_dir, f.name, "3"], check=True, capture_output=True, text=True).stdout
    res = dict(line.split("=") for line in out.split())
    arbor = float(res["mb_per_s"])
    assert int(res["tokens"]) == len(ids), f"token counts differ: arbor {res['tokens']}, tokenizers {len(ids)}"
    print(f"text: {len(raw) / 1e6:.2f} MB, {len(ids)} tokens (same count on both sides)")
    print(f"tokenizers {tokenizers.__version__} encode, 1 thread : {hf:7.2f} MB/s")
    print(f"tokenizers encode_batch, one item per line : {hf_batch:7.2f} MB/s")
    print(f"arbor tokenizer_encode, 1 thread        : {arbor:7.2f} MB/s   ratio arbor/tokenizers {arbor / hf:.2f}")


if __name__ == "__main__":
    main()
