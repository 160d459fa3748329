#!/usr/bin/env python3
"""Reference perplexity numbers for arbor's `eval ppl` (tests/test_perplexity.c), computed with
transformers on a fixture checkpoint.

Usage: python tools/make_ppl_fixture.py     (needs tools/requirements.txt and tests/fixtures/hf)
Writes tests/fixtures/ppl/reference.json: token ids, and for several (seq_len, stride) the mean NLL
and the number of predicted tokens under the rule in evals/perplexity.h: windows start every stride
tokens; each predicts the tokens after the previous window's end that have context in it (not its
first token), from its own context.
"""
import json, os

import torch
import transformers
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(__file__)
MODEL = os.path.join(HERE, "..", "tests", "fixtures", "hf", "qwen3_gqa_headdim_tied_bf16")
OUT = os.path.join(HERE, "..", "tests", "fixtures", "ppl", "reference.json")


def mean_nll(model, ids, seq_len, stride):
    n, total, count, prev_end = len(ids), 0.0, 0, 1
    for begin in range(0, n - 1, stride):
        end = min(begin + seq_len, n)
        if end > prev_end:
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ids[begin:end]])).logits[0].double(), dim=-1)
            for p in range(max(prev_end, begin + 1), end):  # target p predicted by the logits at p - 1
                total -= float(logp[p - 1 - begin, ids[p]])
                count += 1
            prev_end = end
        if end == n:
            break
    return total / count, count


def main():
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager").eval()
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(0, model.config.vocab_size, (150,), generator=gen).tolist()
    cases = []
    for seq_len, stride in [(32, 32), (32, 8), (48, 20), (200, 200)]:
        nll, count = mean_nll(model, ids, seq_len, stride)
        cases.append({"seq_len": seq_len, "stride": stride, "mean_nll": nll, "predicted": count})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"model": "hf/qwen3_gqa_headdim_tied_bf16", "tokens": ids, "cases": cases,
                   "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}, f, indent=1)
    print(cases)


if __name__ == "__main__":
    main()
