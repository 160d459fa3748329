#!/usr/bin/env python3
"""Build a small Llama-family checkpoint the way Hugging Face builds SmolLM2: its own byte-level BPE
tokenizer (trained here by `tokenizers` on the committed TinyStories slice and MMLU-style answer lines; Digits + ByteLevel
pre-tokenizer, 17 special tokens that are also vocabulary ids 0-16, as SmolLM2's), a LlamaForCausalLM
with tied embeddings saved by transformers in bf16, bos/eos token ids in config.json; and what HF makes of
it, for arbor's tests (tests/test_llama_family.c) and the whole CLI path in CI.

Usage: python tools/make_llama_family_fixture.py   (writes tests/fixtures/llama_family/)
Needs: pip install -r tools/requirements.txt

tests/fixtures/llama_family/
  model/                 config.json, model.safetensors (bf16, lm_head tied), tokenizer.json,
                         tokenizer_config.json, special_tokens_map.json: a checkpoint as the Hub has them
  tokenizer_extended/    the same tokenizer with two added tokens past the vocabulary (as Qwen3's extend it)
  reference.json         ids HF `tokenizers` gives for each text (add_special_tokens=False, as lm-eval
                         and arbor tokenize), get_vocab_size(with_added_tokens=True) of both tokenizers,
                         the prompt and the versions
  reference.safetensors  logits (T, V) of the prompt, in fp32 from the bf16 weights
"""
import json, os, shutil

import safetensors
import tokenizers
import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "llama_family")
CORPUS = os.path.join(HERE, "..", "tests", "fixtures", "tokenizer", "tinystories.txt")

# SmolLM2's specials, in its order: ids 0-16, in the vocabulary and in added_tokens
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>", "<file_sep>", "<filename>",
            "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>", "<jupyter_start>", "<jupyter_text>",
            "<jupyter_code>", "<jupyter_output>", "<jupyter_script>", "<empty_output>"]
VOCAB = 512

TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "<|im_start|>user\nHow many apples? 2024 or 12345!<|im_end|>\n<|endoftext|>",
    "ab\u0000cd efg",
    "\u0000hello",
    "café naïve 😀 日本語 don't we'll  two  spaces\ttab\n\nnew",
    "Digits 3.14159 and 1,000,000 and ١٢٣",
]


def train_tokenizer(text):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    # MMLU-style answer lines beside the stories, so that " A" .. " D" are single tokens, as in real
    # vocabularies (arbor scores MMLU on single-token answers, as lm-eval's continuations are there)
    answers = ["Answer: " + c for c in "ABCD"] * 200
    tok.train_from_iterator(text.split("\n\n") + answers, trainer)
    for c in "ABCD":
        assert len(tok.encode(" " + c, add_special_tokens=False).ids) == 1, c
    return tok


def main():
    text = open(CORPUS, encoding="utf-8").read()
    tok = train_tokenizer(text)
    assert tok.get_vocab_size(with_added_tokens=False) == VOCAB, tok.get_vocab_size(False)
    assert all(tok.token_to_id(s) == i for i, s in enumerate(SPECIALS)), "the specials are ids 0-16"
    shutil.rmtree(OUT, ignore_errors=True)
    model_dir = os.path.join(OUT, "model")
    os.makedirs(model_dir)
    tok.save(os.path.join(model_dir, "tokenizer.json"))
    added = json.load(open(os.path.join(model_dir, "tokenizer.json")))["added_tokens"]
    assert len(added) == len(SPECIALS) and all(a["id"] == i for i, a in enumerate(added)), "added tokens reuse ids 0-16"
    json.dump({"add_prefix_space": False, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "model_max_length": 256, "tokenizer_class": "GPT2Tokenizer",
               "additional_special_tokens": SPECIALS[1:3]},
              open(os.path.join(model_dir, "tokenizer_config.json"), "w"), indent=2)
    json.dump({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
               "additional_special_tokens": SPECIALS[1:3]}, open(os.path.join(model_dir, "special_tokens_map.json"), "w"), indent=2)
    # the extending variant: two added tokens past the vocabulary
    ext = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    ext.add_special_tokens(["<|fim_prefix|>", "<|fim_suffix|>"])
    ext_dir = os.path.join(OUT, "tokenizer_extended")
    os.makedirs(ext_dir)
    ext.save(os.path.join(ext_dir, "tokenizer.json"))

    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(7)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
                      max_position_embeddings=256, bos_token_id=0, eos_token_id=0)
    cfg._attn_implementation = "eager"
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # transformers' init scale is too small for logits far from ties; round to bf16 first
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=gen)
            elif "embed_tokens" in name:
                v = torch.randn(p.shape, generator=gen) * 0.5
            else:
                v = torch.randn(p.shape, generator=gen) / (p.shape[1] ** 0.5)
            p.copy_(v.to(torch.bfloat16).to(torch.float32))
    model.tie_weights()
    prompt = tok.encode(TEXTS[0], add_special_tokens=False).ids
    with torch.no_grad():
        logits = model(torch.tensor([prompt])).logits[0].float().contiguous()
    model.to(torch.bfloat16).save_pretrained(model_dir, safe_serialization=True)
    gc = os.path.join(model_dir, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)
    with safetensors.safe_open(os.path.join(model_dir, "model.safetensors"), "pt") as f:
        assert "lm_head.weight" not in f.keys(), "tied: the checkpoint holds no lm_head"
    save_file({"prompt": logits}, os.path.join(OUT, "reference.safetensors"))
    ref = {
        "texts": TEXTS,
        "ids": [tok.encode(t, add_special_tokens=False).ids for t in TEXTS],
        "corpus_ids_head": tok.encode(text[:4000], add_special_tokens=False).ids,
        "vocab_size_with_added": tok.get_vocab_size(with_added_tokens=True),
        "extended_vocab_size_with_added": ext.get_vocab_size(with_added_tokens=True),
        "prompt": prompt,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "safetensors": safetensors.__version__},
    }
    json.dump(ref, open(os.path.join(OUT, "reference.json"), "w"), indent=1)
    print(f"{OUT}: vocab {ref['vocab_size_with_added']} (extended {ref['extended_vocab_size_with_added']}), "
          f"prompt {len(prompt)} tokens")


if __name__ == "__main__":
    main()
