#!/usr/bin/env python3
"""What Python's UTF-8 decoder makes of ill-formed bytes with errors='replace' (one U+FFFD per maximal
ill-formed subpart), for arbor's `tokenize --invalid-utf8 replace` (tests/test_text_pipeline.c).

Usage: python tools/make_utf8_fixture.py   (writes tests/fixtures/tokenizer/utf8_replace.json)
Each case: the input bytes and the output bytes, in hex. Hand-picked edge cases, then random strings
drawn from bytes that make ill-formed sequences likely.
"""
import json, os, random, sys

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tokenizer", "utf8_replace.json")
EDGES = [b"ok", b"a\xffb", b"\xe2\x82", b"\xe2\x82x", b"\xed\xa0\x80", b"\xf0\x90\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf",
         b"\xe0\x80\xaf", b"\xf8\x88\x80\x80\x80", b"\x80\x80", b"caf\xc3\xa9 \xc3", b"\xf0\x9f\x98\x80\xf0\x9f", b"\xef\xbf\xbd",
         b"\xc2", b"\xe1\x80", b"\xf1\x80\x80", b"\xf5\x80", b"\xed\x9f\xbf", b"\xee\x80\x80\xc1\xbf"]
POOL = list(range(0x20, 0x7f, 7)) + list(range(0x80, 0x100))


def main():
    rng = random.Random(5)
    cases = EDGES + [bytes(rng.choice(POOL) for _ in range(rng.randint(1, 12))) for _ in range(1000)]
    out = {"python": sys.version.split()[0],
           "cases": [[c.hex(), c.decode("utf-8", "replace").encode("utf-8").hex()] for c in cases]}
    json.dump(out, open(OUT, "w"), indent=0)
    print(f"{OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
