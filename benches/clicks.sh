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
    local url
    if [ "$backend" = postgres ]; then
      psql "$PG_URL" -qc "DROP DATABASE IF EXISTS tendero_bench_clicks" -c "CREATE DATABASE tendero_bench_clicks" >/dev/null
      url="${PG_URL%/*}/tendero_bench_clicks"
    else
      url="sqlite://$WORK/tendero.db?mode=rwc"
    fi
    local env=(TENDERO_DATABASE_URL="$url" TENDERO_DATA_DIR="$WORK" TENDERO_LOG_LEVEL=warn
               TENDERO_EMBEDDER=minilm TENDERO_EMBEDDER_MODEL_DIR="$MODEL")
    env "${env[@]}" "$BIN" migrate >/dev/null
    if [ "$backend" = postgres ]; then
      psql "${PG_URL%/*}/tendero_bench_clicks" -qc "\\copy eventos(tipo, datos, producto_id, ref_id, created_at, updated_at) FROM '$WORK/events.csv' CSV"
    else
      python3 - "$WORK/tendero.db" "$WORK/events.csv" <<'PY'
import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = ((t, d, int(p) if p else None, r, c, u) for t, d, p, r, c, u in csv.reader(open(sys.argv[2])))
db.executemany("INSERT INTO eventos (tipo, datos, producto_id, ref_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)", rows)
db.commit()
PY
    fi
    /usr/bin/time -f "%e s wall, peak RSS %M KB" env "${env[@]}" "$BIN" aprender --json \
      > "$WORK/summary.json" 2> "$WORK/time.txt"
    python3 - "$backend" "$WORK/summary.json" "$(tail -1 "$WORK/time.txt")" <<'PY'
import json, sys
s = json.load(open(sys.argv[2]))
print(f"{sys.argv[1]}: {s['busquedas']} searches, {s['clics_recibidos']} clicks ({s['clics_contados']} counted), "
      f"{s['consultas']} queries learned; learning {s['segundos']:.1f} s; whole command {sys.argv[3]}")
PY
    [ "$backend" = postgres ] && psql "$PG_URL" -qc "DROP DATABASE IF EXISTS tendero_bench_clicks" >/dev/null
    rm -f "$WORK"/tendero.db*
  done
}

machine
case "${1:-all}" in
  simulator) simulator ;;
  job) job ;;
  all) simulator; job ;;
  *) echo "usage: $0 [simulator|job|all]" >&2; exit 2 ;;
esac
