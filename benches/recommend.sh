#!/usr/bin/env bash
# Recommendations served from a shop of Online Retail's size: its products, customers
# and orders loaded through the REST API, the models trained (time, RSS before and
# after), then wrk on one customer's list (unfiltered and filtered) and on batches of
# 100 customers, and what loading the models adds to a fresh server's RSS. The sequential
# model's training is capped at SEQUENTIAL_MAX_SECS (120) per training.
# `make bench-recommend`; usage: benches/recommend.sh [sqlite|postgres|all]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
BIN=${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/tendero/target}/release/tendero}
PORT=${PORT:-18090}
BASE="http://127.0.0.1:$PORT"
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
ORDERS=${ORDERS:-../shared/data/online-retail/online_retail.csv.gz}
DURATION=${DURATION:-15s}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ -f "$ORDERS" ] || { echo "the orders file is missing: $ORDERS (set ORDERS)" >&2; exit 1; }

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$PID/status"; }

run_backend() {
  echo "== $1"
  start_server "$1" TENDERO_RATE_LIMIT_PER_SECOND=1000000 TENDERO_RATE_LIMIT_BURST=1000000 \
    TENDERO_RECOMMEND_INTERVAL_SECS=0 \
    TENDERO_RECOMMEND_SEQUENTIAL_MAX_SECS=${SEQUENTIAL_MAX_SECS:-120}
  local ids="$DIR/customers.txt"
  python3 benches/recommend_load.py "$BASE" "$TOKEN" "$ORDERS" "$ids"
  echo "RSS before training: $(rss_mb) MB"
  local started=$(date +%s.%N)
  api POST /api/recomendaciones/entrenar '{}' > "$DIR/estado.json"
  echo "training (models and the shop's own evaluation): $(python3 -c "print(round($(date +%s.%N) - $started, 1))") s;" \
    "$(json '["pedidos"]' < "$DIR/estado.json") orders, $(json '["productos"]' < "$DIR/estado.json") products"
  echo "RSS after training: $(rss_mb) MB"
  for mode in plain filtered batch; do
    echo "-- $mode"
    MODE=$mode IDS_FILE=$ids TOKEN=$TOKEN wrk -t1 -c1 -d"$DURATION" --latency -s benches/recommend.lua "$BASE" \
      | grep -E "Requests/sec|^ +(50|90|99)%|Non-2xx"
  done
  echo "RSS after serving: $(rss_mb) MB"
  # A server started with the generation stored: what loading it added to its RSS.
  restart_server
  api GET /api/recomendaciones/estado > "$DIR/estado.json"
  echo "models loaded by a fresh server: +$(json '["memoria_al_cargar_mb"]' < "$DIR/estado.json") MB RSS;" \
    "its RSS after start: $(rss_mb) MB"
  stop_server
}

run_benchmark "${1:-sqlite}"
