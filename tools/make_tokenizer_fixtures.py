#!/usr/bin/env python3
"""Record what Hugging Face `tokenizers` makes of real text with the Qwen3 tokenizer, for arbor's
exact-agreement test (tests/test_tokenizer.c).

Usage: python tools/make_tokenizer_fixtures.py [DATA_DIR]   (default ../shared/data; needs tools/requirements.txt)

Writes tests/fixtures/tokenizer/:
  hard_cases.json   hand-made hard cases (emoji, CJK, combining accents NFC changes, runs of spaces and
                    newlines, digits, contractions, special tokens inside text, invalid UTF-8): bytes as hex,
                    and the ids (null where the bytes are not UTF-8: arbor refuses those, and Python cannot
                    even hold them as str without altering them)
  mmlu.txt          one line per MMLU CSV (dev/val/test): path, record count, token count, then one
                    32-bit hash per record of the ids of question, A, B, C, D (see id_hash)
  tinystories.txt   token count of the whole TinyStories validation slice, then one hash per line
"""
import csv, glob, json, os, sys

import tokenizers

DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tokenizer")


def id_hash(groups):
    """FNV-1a 64 over the ids as little-endian u32, 0xFFFFFFFF between groups; low 32 bits, hex."""
    h = 1469598103934665603
    for g, ids in enumerate(groups):
        seq = ([0xFFFFFFFF] if g else []) + list(ids)
        for x in seq:
            for byte in x.to_bytes(4, "little"):
                h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h & 0xFFFFFFFF:08x}"


HARD_CASES = [
    ("ascii", b"Hello world"),
    ("leading space", b" Hello world"),
    ("contractions", b"I'm sure they've said it's what we'd do, they'll see. DON'T YOU'RE"),
    ("contraction caseless", b"IT'S WE'LL THEY'D"),
    ("digits", b"In 1984 there were 31,415,926.53 apples; 0007 and 1e-10"),
    ("spaces", b"a  b   c    d\t\te     "),
    ("newlines", b"line one\n\nline two\r\n\r\n\n   \n  indented\n"),
    ("only spaces", b"        "),
    ("only newlines", b"\n\n\n\n"),
    ("emoji", "I ❤️ 🤗 tokenizers 👩‍👩‍👧‍👦 🏳️‍🌈 👍🏽".encode()),
    ("cjk", "我爱北京天安门。世界，你好！日本語のテキストと한국어 텍스트".encode()),
    ("nfc composes e + acute", "Cafe\u0301 re\u0301sume\u0301 na\u0308ive".encode()),
    ("nfc greek upsilon hook", "\u03d2\u0301 \u03d3".encode()),
    ("nfc hangul jamo", "\u1100\u1161\u11a8".encode()),
    ("nbsp and exotic spaces", "a\u00a0b\u2003c\u3000d\u200be".encode()),
    ("special tokens in text", b"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"),
    ("special tokens glued", b"x<|endoftext|>y<|endoftext|><|endoftext|>z <tool_call>{}</tool_call>"),
    ("near-special text", b"<|im_start <|endoftext| |> <think"),
    ("punctuation runs", b"!!! ??? ... --- ### $$$ (a) [b] {c} \"quoted\" 'single'"),
    ("code", b"def f(x):\n    return x**2 + 1  # comment\n\tif a != b: pass"),
    ("mojibake", "fiancÃ©e rÃ©sumÃ© Â§ â€œquotedâ€".encode()),
    ("latin accents", "Ångström, façade, jalapeño, Øresund, straße".encode()),
    ("math symbols", "∀x ∈ ℝ: x² ≥ 0 ⇒ √x ∈ ℝ⁺ ∑ ∫".encode()),
    ("rtl", "مرحبا بالعالم שלום עולם".encode()),
    ("long word", b"pneumonoultramicroscopicsilicovolcanoconiosis" * 3),
    # one long pre-tokenizer piece, where the lazy BPE heap grows past the piece's length (it overflowed a
    # 64-entry buffer once: issue 13)
    ("long piece, heap bound", b"<fcccallccccccccccaccaccccccccaccacccccccccccccaccccccccccc"),
    ("long piece, 64 bytes", b"cacc" * 16),
    ("long piece, 65 bytes", b"c" + b"acca" * 16),
    ("long piece, 200 bytes", b"ccaccaccc" * 22 + b"cc"),
    ("invalid: lone continuation", b"abc\x80def"),
    ("invalid: truncated sequence", b"caf\xc3"),
    ("invalid: overlong", b"\xc0\xaf"),
    ("invalid: surrogate", b"\xed\xa0\x80"),
    ("invalid: beyond U+10FFFF", b"\xf4\x90\x80\x80"),
]


def main():
    tok = tokenizers.Tokenizer.from_file(os.path.join(DATA, "qwen3-tokenizer", "tokenizer.json"))
    enc = lambda s: tok.encode(s, add_special_tokens=False).ids
    os.makedirs(OUT, exist_ok=True)
    cases = []
    for name, raw in HARD_CASES:
        try:
            text = raw.decode("utf-8")
            ids = enc(text)
        except UnicodeDecodeError:
            ids = None
        cases.append({"name": name, "hex": raw.hex(), "ids": ids})
    meta = {"tokenizers": tokenizers.__version__, "tokenizer_json": "qwen3-tokenizer/tokenizer.json"}
    with open(os.path.join(OUT, "hard_cases.json"), "w") as f:
        json.dump({"versions": meta, "cases": cases}, f, indent=1, ensure_ascii=True)

    lines = [f"# tokenizers {tokenizers.__version__}; path records tokens hash-per-record"]
    for split in ("dev", "val", "test"):
        for path in sorted(glob.glob(os.path.join(DATA, "mmlu", split, "*.csv"))):
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            hashes, total = [], 0
            for row in rows:
                groups = [enc(x) for x in row[:5]]
                total += sum(len(g) for g in groups)
                hashes.append(id_hash(groups))
            rel = os.path.relpath(path, os.path.join(DATA, "mmlu"))
            lines.append(f"{rel} {len(rows)} {total} " + ",".join(hashes))
    with open(os.path.join(OUT, "mmlu.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    path = os.path.join(DATA, "corpus", "tinystories-valid-slice", "tinystories_val.txt")
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    out = [f"# tokenizers {tokenizers.__version__}; whole-file token count, then one hash per line (split on \\n)",
           str(len(enc(text)))]
    out += [id_hash([enc(line)]) for line in text.split("\n")]
    with open(os.path.join(OUT, "tinystories.txt"), "w") as f:
        f.write("\n".join(out) + "\n")
    print("hard cases", len(cases), "mmlu files", len(lines) - 1, "tinystories lines", len(out) - 2)


if __name__ == "__main__":
    main()
