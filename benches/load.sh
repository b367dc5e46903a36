#!/usr/bin/env bash
# Load benchmark of the shop backend: GET /api/productos/{id} and POST /api/pedidos,
# on SQLite and on PostgreSQL, with wrk on this machine. Prints requests/s, latency
# percentiles, the orders created versus the stock consumed, and the server's RSS.
#
# Usage: benches/load.sh [sqlite|postgres|all]   (PostgreSQL from BENCH_PG_URL,
#        default postgres://postgres@127.0.0.1:5432/test)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/tendero/target}
BIN=$TARGET/release/tendero
DURATION=${BENCH_DURATION:-15s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
PORT=${BENCH_PORT:-8790}
BASE=http://127.0.0.1:$PORT
STOCK=100000000
PRODUCTS=${BENCH_PRODUCTS:-50}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# shellcheck source=benches/common.sh
source "$(dirname "$0")/common.sh"

run_backend() {
  local backend=$1 pid token
  start_server "$backend" TENDERO_RATE_LIMIT_PER_SECOND=1000000 TENDERO_RATE_LIMIT_BURST=1000000 \
    TENDERO_LOG_LEVEL="${BENCH_LOG_LEVEL:-info}" TENDERO_DB_MAX_CONNECTIONS="${BENCH_DB_CONNECTIONS:-16}"
  pid=$PID token=$TOKEN
  for i in $(seq "$PRODUCTS"); do
    api POST /api/productos "{\"sku\":\"BENCH-$i\",\"nombre\":\"Producto de carga $i\",\"precio\":\"19990.50\",\"stock\":$STOCK,\"categoria\":\"bench\"}" >/dev/null
  done
  api POST /api/clientes '{"nombre":"Cliente de carga","email":"carga@bench.test"}' >/dev/null

  echo "== $backend: GET /api/productos/1 ($CONNECTIONS connections, $DURATION)"
  TOKEN=$token wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/read.lua "$BASE/api/productos/1" \
    | grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors'
  echo "   RSS after reads: $(( $(rss_kb $pid) / 1024 )) MB"

  local spread
  for spread in 1 "$PRODUCTS"; do
    echo "== $backend: POST /api/pedidos, one unit of one of $spread product(s) ($CONNECTIONS connections, $DURATION)"
    PRODUCTS=$spread TOKEN=$token wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/order.lua "$BASE/api/pedidos" \
      | grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors'
  done
  local consumed=0 orders stock
  for i in $(seq "$PRODUCTS"); do
    stock=$(curl -sf "$BASE/api/productos/$i" -H "authorization: Bearer $token" | json '["stock"]')
    consumed=$(( consumed + STOCK - stock ))
  done
  orders=$(curl -sf "$BASE/api/pedidos?limit=1" -H "authorization: Bearer $token" | json '["total"]')
  echo "   orders created: $orders; units of stock consumed: $consumed (equal: no oversell, no lost update)"
  echo "   RSS now: $(( $(rss_kb $pid) / 1024 )) MB, peak: $(( $(hwm_kb $pid) / 1024 )) MB"
  stop_server
}

run_benchmark "${1:-all}"
