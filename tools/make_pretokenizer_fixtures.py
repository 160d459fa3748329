#!/usr/bin/env python3
"""Record what Hugging Face `tokenizers` makes of the hard cases with each normalizer and pre-tokenizer
alone, for arbor's unit test of models/tokenizer/text_pipeline.c (tests/test_text_pipeline.c): the normalised text,
and the pieces a pre-tokenizer cuts (as bytes: a ByteLevel step's symbols are mapped back).

Usage: python tools/make_pretokenizer_fixtures.py     (needs tools/requirements.txt; no data)

Writes tests/fixtures/tokenizer/pipeline_steps.json:
  cases:          the hard cases of make_tokenizer_variant_fixtures.py that are valid UTF-8 (hex)
  normalizers:    [{spec, out: [hex of normalize_str(case) per case]}]
  pre_tokenizers: [{spec, out: [[hex of each piece] per case]}]
"""
import json, os, sys

import tokenizers

sys.path.insert(0, os.path.dirname(__file__))
from make_tokenizer_variant_fixtures import EXTRA_CASES, HARD_CASES, LLAMA3_SPLIT, VARIANTS, bl, byte_level, seq, split  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tokenizer", "pipeline_steps.json")
UNBYTE = {byte_level(b): b for b in range(256)}

# besides every normalizer and pre-tokenizer of the variants: each kind alone, and the empty-match cases
EXTRA_PRE = [
    {"type": "Whitespace"},
    {"type": "WhitespaceSplit"},
    {"type": "Punctuation", "behavior": "Removed"},
    {"type": "Punctuation", "behavior": "MergedWithNext"},
    {"type": "Digits", "individual_digits": False},
    split(r"\w+", "Isolated"),
    split(r"\W+", "Removed"),
    split(r"[\s\S]", "Contiguous", invert=True),
    split(r"", "Isolated"),
    split(r"x*", "MergedWithPrevious"),
    split(" ", "Contiguous", literal=True),
    split("a.b", "Isolated", literal=True),
    split(LLAMA3_SPLIT, "Isolated"),
    seq(bl(True, True), {"type": "Digits", "individual_digits": True}),
]


def main():
    cases = []
    for _, raw in HARD_CASES + EXTRA_CASES:
        try:
            cases.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    norms, pres = [], []
    for _, patch in VARIANTS:
        if patch.get("normalizer") and patch["normalizer"] not in norms:
            norms.append(patch["normalizer"])
        if patch.get("pre_tokenizer") and patch["pre_tokenizer"] not in pres:
            pres.append(patch["pre_tokenizer"])
    pres += EXTRA_PRE
    out = {"versions": {"tokenizers": tokenizers.__version__}, "cases": [c.encode().hex() for c in cases],
           "normalizers": [], "pre_tokenizers": []}
    for spec in norms:
        norm = tokenizers.Tokenizer.from_str(json.dumps(shell(normalizer=spec))).normalizer
        out["normalizers"].append({"spec": spec, "out": [norm.normalize_str(c).encode().hex() for c in cases]})
    for spec in pres:
        pre = tokenizers.Tokenizer.from_str(json.dumps(shell(pre_tokenizer=spec))).pre_tokenizer
        mapped = "ByteLevel" in json.dumps(spec)
        per_case = []
        for c in cases:
            pieces = [p for p, _ in pre.pre_tokenize_str(c)]
            per_case.append([(bytes(UNBYTE[ch] for ch in p) if mapped else p.encode()).hex() for p in pieces])
        out["pre_tokenizers"].append({"spec": spec, "out": per_case})
    with open(OUT, "w") as f:
        json.dump(out, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    print("cases", len(cases), "normalizers", len(norms), "pre-tokenizers", len(pres))


def shell(normalizer=None, pre_tokenizer=None):
    """A minimal tokenizer.json around one step (the library reads steps through a whole tokenizer)."""
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": normalizer,
            "pre_tokenizer": pre_tokenizer, "post_processor": None, "decoder": None,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": {}, "merges": []}}


if __name__ == "__main__":
    main()
