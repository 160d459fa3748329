#!/usr/bin/env bash
# Downloads the original MMLU CSVs (Hendrycks et al., MIT license) into DIR (default data/mmlu):
# DIR/dev, DIR/val, DIR/test with one <subject>_<split>.csv per subject, as arbor eval mmlu reads them.
# Usage: scripts/fetch_mmlu.sh [DIR]
set -euo pipefail
dest=${1:-data/mmlu}
url=https://people.eecs.berkeley.edu/~hendrycks/data.tar
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "downloading $url" >&2
curl -fL --retry 3 -o "$tmp/data.tar" "$url"
tar -xf "$tmp/data.tar" -C "$tmp"
mkdir -p "$dest"
for split in dev val test; do
  rm -rf "$dest/$split"
  cp -r "$tmp/data/$split" "$dest/$split"
  n=$(ls "$dest/$split"/*_"$split".csv | wc -l)
  [ "$n" -eq 57 ] || { echo "fetch_mmlu: $dest/$split has $n subject files, expected 57" >&2; exit 1; }
done
echo "MMLU in $dest (57 subjects; dev/val/test)" >&2
