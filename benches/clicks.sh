#!/usr/bin/env bash
# Learning from clicks (docs/search.md#learning-from-clicks):
#   1. the click simulator on the Home Depot judged set (`tendero eval --clics`): NDCG@10
#      of queries with and without sessions as sessions accrue, the oracle, and what the
#      learned term adds to a search;
#   2. the learning job (`tendero aprender`) over a synthetic log of EVENTS (1,000,000)
#      searches and clicks, on SQLite and PostgreSQL: time and peak RSS.
# `make bench-clicks`; usage: benches/clicks.sh [simulator|job|all]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
BIN=${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/tendero/target}/release/tendero}
DATA=${HOMEDEPOT:-../shared/data/homedepot}
MODEL=${TENDERO_EMBEDDER_MODEL_DIR:-$HOME/.cache/tendero/models/all-MiniLM-L6-v2}
STORE=${STORE:-$HOME/.cache/tendero/bench/homedepot-minilm}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
EVENTS=${EVENTS:-1000000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

simulator() {
  echo "## click simulator: ${SESSIONS:-20} sessions per query, the ${SPLIT:-test} half"
  mkdir -p "$STORE"
  TENDERO_EMBEDDER=minilm TENDERO_EMBEDDER_MODEL_DIR="$MODEL" TENDERO_LOG_LEVEL=warn \
    "$BIN" eval "$DATA" --idioma English --store "$STORE" --split "${SPLIT:-test}" \
    --clics "${SESSIONS:-20}" --semilla "${SEED:-1}"
}

job() {
  python3 benches/click_events.py "$EVENTS" "${QUERIES:-20000}" "$WORK/events.csv"
  echo "## learning job over $(wc -l < "$WORK/events.csv") events"
  for backend in sqlite postgres; do
    fresh_database "$backend"
    local env=(TENDERO_DATABASE_URL="$DB_URL" TENDERO_DATA_DIR="$DIR" TENDERO_LOG_LEVEL=warn
               TENDERO_EMBEDDER=minilm TENDERO_EMBEDDER_MODEL_DIR="$MODEL")
    env "${env[@]}" "$BIN" migrate >/dev/null
    load_events "$WORK/events.csv"
    /usr/bin/time -f "%e s wall, peak RSS %M KB" env "${env[@]}" "$BIN" aprender --json \
      > "$WORK/summary.json" 2> "$WORK/time.txt"
    python3 - "$backend" "$WORK/summary.json" "$(tail -1 "$WORK/time.txt")" <<'PY'
import json, sys
s = json.load(open(sys.argv[2]))
print(f"{sys.argv[1]}: {s['busquedas']} searches, {s['clics_recibidos']} clicks ({s['clics_contados']} counted), "
      f"{s['consultas']} queries learned; learning {s['segundos']:.1f} s; whole command {sys.argv[3]}")
PY
    stop_server
  done
}

machine
case "${1:-all}" in
  simulator) simulator ;;
  job) job ;;
  all) simulator; job ;;
  *) echo "usage: $0 [simulator|job|all]" >&2; exit 2 ;;
esac
