#!/usr/bin/env python3
"""arbor against its peers on the CPU, side by side in interleaved rounds: PyTorch (transformers) always,
llama.cpp when its llama-bench and a GGUF of the same checkpoint are given.

  python tools/bench_peers.py [--arbor build/arbor] [--model DIR | --arch qwen3-0.6b] [--threads 2]
         [--rounds 3] [--prompt 128] [--gen 32] [--weights fp32|bf16] [--train]
         [--llama-bench PATH --gguf FILE]

Inference: the same checkpoint (without --model, `arbor init --arch ARCH` writes one with random
weights, in the dtype of --weights), batch 1, a prompt of --prompt tokens, then --gen greedy decode
steps with the KV cache. --weights bf16: arbor holds its matrices bf16 (`--weights bf16`) and torch
loads the model in bfloat16; give llama.cpp a BF16 GGUF of the same checkpoint to match.

llama.cpp without a Debian package: its source ships inside PyPI's llama-cpp-python sdist.
  pip download --no-deps --no-binary :all: llama-cpp-python && tar xzf llama_cpp_python-*.tar.gz
  cd llama_cpp_python-*/vendor/llama.cpp && cmake -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
      && cmake --build build --target llama-bench -j        # -> build/bin/llama-bench
  cp QWEN3_TOKENIZER_DIR/* CHECKPOINT/    # the converter reads the tokenizer (pip install sentencepiece)
  PYTHONPATH=gguf-py python convert_hf_to_gguf.py CHECKPOINT --outtype bf16 --outfile model.bf16.gguf
Each tool runs in its own process per round, and the order of the tools rotates every round, so a busy
moment of this shared machine hits them in turn. --train adds a training step of the shape of
build/bench_train_throughput (21.7M parameters, batch 8 x 256 tokens, AdamW, cross-entropy):
arbor's against a torch training step (forward, backward, clip, AdamW) on the same shape and threads.
Reported: each tool's median tokens/s over the rounds, the median of the per-round ratios arbor/peer,
and the 1-minute load average at every round (a load above the thread count means shared cores).
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

TORCH_INFER = r"""
import sys, time, torch
from transformers import AutoModelForCausalLM
model_dir, threads, P, G = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
dtype = torch.bfloat16 if sys.argv[5] == "bf16" else torch.float32
torch.set_num_threads(threads)
m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
ids = torch.randint(0, m.config.vocab_size, (1, P), generator=torch.Generator().manual_seed(0))
with torch.inference_mode():
    m(ids[:, :8])  # warm-up
    t0 = time.perf_counter()
    out = m(ids, use_cache=True)
    t1 = time.perf_counter()
    past, tok = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
    for _ in range(G):
        out = m(tok, past_key_values=past, use_cache=True)
        past, tok = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
    t2 = time.perf_counter()
print(f"prefill_tokens_per_s={P / (t1 - t0):.3f}")
print(f"decode_tokens_per_s={G / (t2 - t1):.3f}")
"""

TORCH_TRAIN = r"""
import sys, time, torch
from transformers import Qwen3Config, Qwen3ForCausalLM
threads, steps, T, B = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = Qwen3Config(vocab_size=32000, hidden_size=384, intermediate_size=1024, num_hidden_layers=6, num_attention_heads=6,
                  num_key_value_heads=2, head_dim=64, tie_word_embeddings=True, max_position_embeddings=4096)
m = Qwen3ForCausalLM(cfg).train()
opt = torch.optim.AdamW(m.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
best = 1e30
for step in range(steps + 1):  # step 0 warms up
    ids = torch.randint(0, 32000, (B, T + 1))
    t0 = time.perf_counter()
    logits = m(input_ids=ids[:, :-1]).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 32000), ids[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    if step: best = min(best, time.perf_counter() - t0)
print(f"train_tokens_per_s={B * T / best:.3f}")
"""


def kv(text):
    return {k: v for k, v in (line.split("=", 1) for line in text.split() if "=" in line)}


def load():
    return float(open("/proc/loadavg").read().split()[0])


def run(cmd, env):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"bench_peers: {' '.join(cmd[:3])} ... failed:\n{r.stderr[-2000:]}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arbor", default="build/arbor")
    ap.add_argument("--train-bench", default="build/bench_train_throughput")
    ap.add_argument("--model")
    ap.add_argument("--arch", default="qwen3-0.6b")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--weights", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--llama-bench")
    ap.add_argument("--gguf")
    a = ap.parse_args()
    if bool(a.llama_bench) != bool(a.gguf):
        sys.exit("bench_peers: --llama-bench and --gguf go together")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    tmp = tempfile.TemporaryDirectory()
    model = a.model
    if not model:
        model = os.path.join(tmp.name, a.arch)
        run([a.arbor, "init", "--arch", a.arch, "--dtype", "f32" if a.weights == "fp32" else "bf16", "--out", model], env)
    tools = {
        "arbor": lambda: kv(run([a.arbor, "bench", "--model", model, "--prompt-len", str(a.prompt), "--gen-len", str(a.gen),
                                  "--repeats", "1", "--threads", str(a.threads), "--weights", a.weights], env)),
        "torch": lambda: kv(run([sys.executable, "-c", TORCH_INFER, model, str(a.threads), str(a.prompt), str(a.gen),
                                 a.weights], env)),
    }
    if a.llama_bench:
        def llama():
            out = json.loads(run([a.llama_bench, "-m", a.gguf, "-p", str(a.prompt), "-n", str(a.gen), "-t", str(a.threads),
                                  "-r", "1", "-o", "json"], env))
            pre = [r["avg_ts"] for r in out if r.get("n_prompt", 0) > 0]
            dec = [r["avg_ts"] for r in out if r.get("n_gen", 0) > 0]
            return {"prefill_tokens_per_s": pre[0], "decode_tokens_per_s": dec[0]}
        tools["llama.cpp"] = llama
    if a.train:
        def arbor_train():  # its "train  N tokens/s | ..." line
            r = subprocess.run([a.train_bench, "2", "256", "8"], capture_output=True, text=True, env=env)
            lines = [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("train ")]
            if r.returncode or not lines:
                sys.exit(f"bench_peers: {a.train_bench} failed:\n{r.stderr[-2000:]}")
            return {"train_tokens_per_s": lines[0].split()[1]}
        tools["arbor train"] = arbor_train
        tools["torch train"] = lambda: kv(run([sys.executable, "-c", TORCH_TRAIN, str(a.threads), "2", "256", "8"], env))
    names = list(tools)
    results = {n: [] for n in names}
    loads = []
    for r in range(a.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        loads.append(load())
        for n in order:
            results[n].append({k: float(v) for k, v in tools[n]().items() if k.endswith("tokens_per_s")})
            print(f"round {r + 1}/{a.rounds} {n}: {results[n][-1]} (load {load():.2f})", file=sys.stderr)
    print(f"# {model}: {a.weights} weights, {a.threads} threads, prompt {a.prompt}, gen {a.gen}; {a.rounds} interleaved rounds; "
          f"load average at the rounds: {', '.join(f'{x:.2f}' for x in loads)}")
    print(f"{'metric':28s} {'tool':12s} {'median tokens/s':>16s} {'arbor / tool (median of rounds)':>34s}")
    pairs = [("prefill_tokens_per_s", "arbor"), ("decode_tokens_per_s", "arbor"), ("train_tokens_per_s", "arbor train")]
    for metric, ours in pairs:
        for n in names:
            vals = [x[metric] for x in results[n] if metric in x]
            if not vals or n == ours or (metric == "train_tokens_per_s") != n.endswith("train"):
                continue
            mine = [x[metric] for x in results[ours]]
            ratio = statistics.median(m / v for m, v in zip(mine, vals))
            print(f"{metric:28s} {n:12s} {statistics.median(vals):16.2f} {ratio:34.2f}")
        if results.get(ours) and metric in results[ours][0]:
            print(f"{metric:28s} {ours:12s} {statistics.median(x[metric] for x in results[ours]):16.2f}")


if __name__ == "__main__":
    main()
