#!/usr/bin/env python3
"""Record what Hugging Face `tokenizers` makes of real text with variants of the Qwen3 tokenizer: the
normalizers and pre-tokenizers other byte-level BPE checkpoints use (Llama 3, SmolLM2, GPT-2 style),
composed in Sequences in either order, and vocabularies that lack some bytes (dropped, <unk>, fused <unk>,
byte fallback), for arbor's exact-agreement test (tests/test_tokenizer_variants.c).

Usage: python tools/make_tokenizer_variant_fixtures.py [DATA_DIR]   (default ../shared/data)

Each variant is the real Qwen3 tokenizer.json with a patch: a normalizer and/or pre_tokenizer replacing
its own, model fields set, bytes dropped from the vocabulary (every vocab entry holding the byte's
byte-level symbol, and every merge with such a side), tokens added to model.vocab (new ids after the
largest). The test applies the same patch in C, so the 11 MB base file need not be committed.

Writes tests/fixtures/tokenizer/variants.json: per variant the patch, then
  hard:        ids of each hard case (tools/make_tokenizer_fixtures.py's cases + EXTRA_CASES; null where
               the bytes are not UTF-8)
  mmlu:        per split (dev, val, test): records, tokens, one hash over the ids of every question and
               choice of every file in path order (id_hash of the groups)
  tinystories: token count of the whole slice, and one hash over the ids of each of its lines
"""
import csv, glob, json, os, sys

import tokenizers

sys.path.insert(0, os.path.dirname(__file__))
from make_tokenizer_fixtures import HARD_CASES, id_hash  # noqa: E402

DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tokenizer", "variants.json")

EXTRA_CASES = [
    ("control bytes", b"a\x04b\x06c\x13d\x14e\x19f\x1a\x7f end"),
    ("planes 15 and 16", "x\U000F0000y\U00100000z \U0010FFFF".encode()),
    ("lowercase specials", "İstanbul ΣΊΣΥΦΟΣ ǅungla ẞ Ω K Å".encode()),
    ("compatibility forms", "ﬁne ① ² ½ ｆｕｌｌ ㎏ ℌ ﬀ ǆ".encode()),
    ("other digits", "٣٤ ५६ ௭ 一二 Ⅻ ¹²³ 12345678".encode()),
    ("leading and trailing spaces", b"   padded both sides   "),
    ("punctuation in words", b"e.g. U.S.A., don't-stop; a/b\\c well...ok?!"),
    ("underscores and marks", "snake_case __init__ ‿ a\u0301\u0302 x\u20dd".encode()),
    ("byte fallback letters", b"Quick quiz: quaint quotas quell qualms. \xc3\x83 \xc3\xa9"),
    ("a lone space", b" "),
    ("runs of missing bytes", b"qqq \x04\x06\x13 Q\xc3\x83\xc3\x83 \xf3\xb0\x80\x80\xf4\x80\x80\x80"),
    ("mongolian vowel separator", "a\u180e b\u180e\u180ec \u180e".encode()),  # PCRE2's \s has it, Oniguruma's not
    ("word characters", "x\u00b2 \u00bd\u2070 \u24b6b \u0903a \u200dz_\u2040w".encode()),  # Oniguruma's \w
    ("tabs and vertical space", b"\t\x0b\x0c a\xc2\x85b\xe2\x80\xa8c \xc2\x85\xc2\x85 x\xc2\x85 \xc2\x85"),
]

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SMOLLM2_MISSING = [0x04, 0x06, 0x13, 0x14, 0x19, 0x1A] + list(range(0xF1, 0x100))  # 21 bytes
MORE_MISSING = SMOLLM2_MISSING + [ord("q"), 0xC3]  # bytes real text does use


def byte_level(b):
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    if b in bs:
        return chr(b)
    return chr(256 + sum(1 for x in range(b) if x not in bs))


def bl(use_regex=True, prefix=False):
    return {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": True, "use_regex": use_regex}


def split(pattern, behavior, invert=False, literal=False):
    return {"type": "Split", "pattern": {"String" if literal else "Regex": pattern}, "behavior": behavior, "invert": invert}


def seq(*steps):
    return {"type": "Sequence", "pretokenizers": list(steps)}


def nseq(*steps):
    return {"type": "Sequence", "normalizers": list(steps)}


QWEN_PRE = None  # keep the file's own
FALLBACK = [f"<0x{b:02X}>" for b in range(256)]
VARIANTS = [
    # pre-tokenizers (normalizer: none unless given)
    ("smollm2: digits individual + byte-level regex", {"normalizer": None, "pre_tokenizer": seq({"type": "Digits", "individual_digits": True}, bl())}),
    ("digits contiguous + byte-level regex", {"normalizer": None, "pre_tokenizer": seq({"type": "Digits", "individual_digits": False}, bl())}),
    ("gpt-2: byte-level with prefix space", {"normalizer": None, "pre_tokenizer": bl(True, True)}),
    ("byte-level first, then split on mapped spaces", {"normalizer": None, "pre_tokenizer": seq(bl(False, True), split("Ġ", "MergedWithNext"))}),
    ("split removed", {"pre_tokenizer": seq(split(r"\s+", "Removed"), bl(False))}),
    ("split merged with previous", {"pre_tokenizer": seq(split(r"[.,;:!?]", "MergedWithPrevious"), bl(False))}),
    ("split merged with next", {"pre_tokenizer": seq(split(" ", "MergedWithNext", literal=True), bl(False))}),
    ("split contiguous", {"pre_tokenizer": seq(split(r"\p{P}", "Contiguous"), bl(True))}),
    ("split inverted, merged with previous", {"pre_tokenizer": seq(split(r"\s+", "MergedWithPrevious", invert=True), bl(False))}),
    ("split inverted, removed", {"pre_tokenizer": seq(split(r"\p{L}+|\p{N}+", "Removed", invert=True), bl(False))}),
    ("split on a string, isolated", {"pre_tokenizer": seq(split("e", "Isolated", literal=True), bl(True))}),
    ("split with empty matches", {"pre_tokenizer": seq(split(r"(?=[A-Z])", "Isolated"), bl(True))}),
    ("llama 3: split + byte-level, ignore merges", {"normalizer": None, "pre_tokenizer": seq(split(LLAMA3_SPLIT, "Isolated"), bl(False)), "model": {"ignore_merges": True}}),
    ("punctuation isolated", {"pre_tokenizer": seq({"type": "Punctuation", "behavior": "Isolated"}, bl(True))}),
    ("punctuation contiguous", {"pre_tokenizer": seq({"type": "Punctuation", "behavior": "Contiguous"}, bl(False))}),
    ("whitespace", {"pre_tokenizer": seq({"type": "Whitespace"}, bl(False))}),
    ("whitespace split", {"pre_tokenizer": seq({"type": "WhitespaceSplit"}, bl(False))}),
    ("nested sequence", {"pre_tokenizer": seq(seq({"type": "Digits", "individual_digits": True}, {"type": "Punctuation", "behavior": "MergedWithNext"}), bl(True))}),
    # normalizers (pre-tokenizer: Qwen3's own)
    ("nfkc", {"normalizer": {"type": "NFKC"}}),
    ("nfd", {"normalizer": {"type": "NFD"}}),
    ("nfkd", {"normalizer": {"type": "NFKD"}}),
    ("lowercase", {"normalizer": {"type": "Lowercase"}}),
    ("strip both", {"normalizer": {"type": "Strip", "strip_left": True, "strip_right": True}}),
    ("strip right", {"normalizer": {"type": "Strip", "strip_left": False, "strip_right": True}}),
    ("prepend", {"normalizer": {"type": "Prepend", "prepend": "▁"}}),
    ("replace a string", {"normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}}),
    ("replace a regex", {"normalizer": {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}}),
    ("normalizer sequence", {"normalizer": nseq({"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": True},
                                                 {"type": "Replace", "pattern": {"String": "``"}, "content": "\""})}),
    # vocabularies without every byte
    ("smollm2-like missing bytes, no unk: dropped", {"drop_bytes": SMOLLM2_MISSING}),
    ("missing bytes, no unk: dropped", {"drop_bytes": MORE_MISSING}),
    ("missing bytes, unk", {"drop_bytes": MORE_MISSING, "add_tokens": ["<unk>"], "model": {"unk_token": "<unk>"}}),
    ("missing bytes, fused unk", {"drop_bytes": MORE_MISSING, "add_tokens": ["<unk>"], "model": {"unk_token": "<unk>", "fuse_unk": True}}),
    ("missing bytes, byte fallback", {"drop_bytes": MORE_MISSING, "add_tokens": FALLBACK, "model": {"byte_fallback": True}}),
    ("missing bytes, partial byte fallback + unk", {"drop_bytes": MORE_MISSING, "add_tokens": ["<unk>"] + FALLBACK[:128],
                                                    "model": {"byte_fallback": True, "unk_token": "<unk>"}}),
]


def apply_patch(base, patch):
    """The same edit as fuzz/tokenizer_variant.c: replace normalizer / pre_tokenizer, set model fields,
    drop bytes, add tokens (those absent)."""
    d = json.loads(json.dumps(base))
    for key in ("normalizer", "pre_tokenizer", "decoder"):
        if key in patch:
            d[key] = patch[key]
    model = d["model"]
    dropped = [byte_level(b) for b in patch.get("drop_bytes", [])]
    added = [t for t in patch.get("add_tokens", []) if t not in model["vocab"]]  # a token already there stays
    if dropped or added:
        # what a vocabulary trained that way looks like: ids 0..V-1 in the old order, the new tokens last,
        # then the added tokens (the ids tokenizers gives them on load anyway)
        kept = sorted((v, k) for k, v in model["vocab"].items() if not any(c in k for c in dropped))
        model["vocab"] = {k: i for i, (_, k) in enumerate(kept + [(0, t) for t in added])}
        model["merges"] = [m for m in model["merges"] if not any(c in m[0] or c in m[1] for c in dropped)]
        for i, a in enumerate(d["added_tokens"]):
            a["id"] = len(model["vocab"]) + i
    model.update(patch.get("model", {}))
    return d


def main():
    with open(os.path.join(DATA, "qwen3-tokenizer", "tokenizer.json"), encoding="utf-8") as f:
        base = json.load(f)
    cases = HARD_CASES + EXTRA_CASES
    mmlu = {s: sorted(glob.glob(os.path.join(DATA, "mmlu", s, "*.csv"))) for s in ("dev", "val", "test")}
    rows = {}
    for s, paths in mmlu.items():
        rows[s] = []
        for path in paths:
            with open(path, newline="", encoding="utf-8") as f:
                rows[s] += [r[:5] for r in csv.reader(f)]
    with open(os.path.join(DATA, "corpus", "tinystories-valid-slice", "tinystories_val.txt"), encoding="utf-8", newline="") as f:
        story = f.read()
    out = {"versions": {"tokenizers": tokenizers.__version__, "base": "qwen3-tokenizer/tokenizer.json"},
           "cases": [{"name": n, "hex": raw.hex()} for n, raw in cases], "variants": []}
    for name, patch in VARIANTS:
        tok = tokenizers.Tokenizer.from_str(json.dumps(apply_patch(base, patch)))
        enc = lambda s: tok.encode(s, add_special_tokens=False).ids  # noqa: E731
        hard = []
        for _, raw in cases:
            try:
                hard.append(enc(raw.decode("utf-8")))
            except UnicodeDecodeError:
                hard.append(None)
        split_rows = {}
        for s in mmlu:
            groups = [enc(x) for r in rows[s] for x in r]
            split_rows[s] = {"records": len(rows[s]), "tokens": sum(len(g) for g in groups), "hash": id_hash(groups)}
        lines = [enc(line) for line in story.split("\n")]
        out["variants"].append({"name": name, "patch": patch, "hard": hard, "mmlu": split_rows,
                                "tinystories": {"tokens": len(enc(story)), "lines_hash": id_hash(lines)}})
        print(f"{name}: mmlu test {split_rows['test']['tokens']} tokens", file=sys.stderr)
    with open(OUT, "w") as f:
        json.dump(out, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    print("variants", len(VARIANTS), "cases", len(cases))


if __name__ == "__main__":
    main()
