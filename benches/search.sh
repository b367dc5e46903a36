#!/usr/bin/env bash
# Retrieval benchmark on the Home Depot judged set (../shared/data/homedepot):
#   1. ingest of the 54,667 products with each embedder (rows/s, via tendero ingest),
#   2. server start on that index (FAISS build, then load of the saved file) and RSS,
#   3. `tendero eval`: quality per mode and search latency excluding embedding.
# Usage: benches/search.sh [hash|minilm|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/tendero/target}
BIN=$TARGET/release/tendero
INGEST=("$TARGET/release/tendero" ingest)
DATA=${HOMEDEPOT:-../shared/data/homedepot}
MODEL=${TENDERO_EMBEDDER_MODEL_DIR:-$HOME/.cache/tendero/models/all-MiniLM-L6-v2}
PORT=${PORT:-18431}
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
trap 'stop_server; rm -rf "$WORK"' EXIT

# The judged products as a shop catalog (price and stock are required columns).
python3 - "$DATA/products.csv" "$WORK/catalog.csv" <<'PY'
import csv, sys
with open(sys.argv[1], newline='') as src, open(sys.argv[2], 'w', newline='') as dst:
    out = csv.writer(dst)
    out.writerow(["sku", "nombre", "categoria", "precio", "stock"])
    for row in csv.DictReader(src):
        out.writerow([row["sku"], row["nombre"], "general", "1000", "1"])
PY

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

bench_embedder() {
  local embedder=$1 data=$WORK/$1
  mkdir -p "$data"
  echo "## embedder: $embedder"
  local env=(TENDERO_DATA_DIR="$data" TENDERO_EMBEDDER="$embedder" TENDERO_EMBEDDER_MODEL_DIR="$MODEL"
             TENDERO_SEARCH_LANGUAGE=English TENDERO_LOG_LEVEL=warn)
  env "${env[@]}" "${INGEST[@]}" productos "$WORK/catalog.csv" --json > "$WORK/ingest.json"
  python3 - "$WORK/ingest.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"ingest: {r['inserted']} products in {r['seconds']:.1f} s = {r['rows_per_second']:.0f} products/s "
      f"({r['index']['embedded']} embedded)")
PY
  for start in "first start (FAISS built from LanceDB)" "restart (saved FAISS loaded)"; do
    local t0=$(date +%s.%N)
    env "${env[@]}" TENDERO_ADDR="127.0.0.1:$PORT" TENDERO_DEV=true TENDERO_DEMO=false \
      "$BIN" serve > "$WORK/server.log" 2>&1 &
    PID=$!
    until curl -sf "$BASE/ready" >/dev/null; do sleep 0.05; done
    local t1=$(date +%s.%N)
    curl -sf "$BASE/api/search?q=cordless+drill&k=10" >/dev/null
    printf '%s: ready in %.1f s, RSS %s MB\n' "$start" "$(echo "$t1 - $t0" | bc)" "$(rss_mb $PID)"
    kill $PID; wait $PID 2>/dev/null || true
    PID=""
  done
  env "${env[@]}" "$BIN" eval "$DATA" --idioma English --store "$WORK/eval-$embedder" --json \
    > "$WORK/eval.json"
  python3 - "$WORK/eval.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"eval: {r['products']} products, {r['queries']} queries; query embedding p50 "
      f"{r['embed_ms_p50']:.2f} ms, p95 {r['embed_ms_p95']:.2f} ms; index {r['index_seconds']:.1f} s")
print("| mode | NDCG@10 | MRR@10 | Recall@100 | p50 ms | p95 ms | p99 ms |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for m in r["modes"]:
    print(f"| {m['mode']} | {m['ndcg_at_10']:.3f} | {m['mrr_at_10']:.3f} | {m['recall_at_100']:.3f} "
          f"| {m['latency_ms_p50']:.2f} | {m['latency_ms_p95']:.2f} | {m['latency_ms_p99']:.2f} |")
PY
}

machine
case "${1:-all}" in
  hash|minilm) bench_embedder "$1" ;;
  all) bench_embedder hash; bench_embedder minilm ;;
  *) echo "usage: $0 [hash|minilm|all]" >&2; exit 2 ;;
esac
