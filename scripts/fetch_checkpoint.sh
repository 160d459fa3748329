#!/usr/bin/env bash
# Downloads a Hugging Face checkpoint (config.json, safetensors, tokenizer files) into DIR.
# Usage: scripts/fetch_checkpoint.sh Qwen/Qwen3-0.6B [DIR]      (needs: pip install huggingface_hub)
set -euo pipefail
repo=${1:?usage: scripts/fetch_checkpoint.sh ORG/NAME [DIR]}
dest=${2:-checkpoints/$(basename "$repo")}
if command -v hf >/dev/null; then
  hf download "$repo" --local-dir "$dest" --include '*.json' '*.safetensors' 'merges.txt' 'vocab.json'
elif command -v huggingface-cli >/dev/null; then
  huggingface-cli download "$repo" --local-dir "$dest" --include '*.json' '*.safetensors' 'merges.txt' 'vocab.json'
else
  echo "fetch_checkpoint: needs the Hugging Face CLI: python3 -m pip install huggingface_hub" >&2
  exit 1
fi
echo "checkpoint in $dest; try: build/arbor info --model $dest" >&2
