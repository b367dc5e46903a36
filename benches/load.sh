#!/usr/bin/env bash
# Load benchmark of the shop backend: GET /api/productos/{id} and POST /api/pedidos,
# on SQLite and on PostgreSQL, with wrk on this machine. Prints requests/s, latency
# percentiles and the server's RSS. Every product starts with BENCH_STOCK units, few
# enough that the orders run it out during the run (later ones are refused with 409
# insufficient_stock); afterwards, for every product, the units in the orders taken
# plus the stock left must equal the stock at the start, and the script fails when
# they do not (an oversell or a lost update).
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
STOCK=${BENCH_STOCK:-1500}
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
      | grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx|Socket errors|responses by status'
  done
  # Units ordered per product, from the order lines report, against the stock left.
  local lines
  lines=$(curl -sf "$BASE/api/exportar/pedidos?detalle=lineas&formato=jsonl" -H "authorization: Bearer $token")
  local stock_left=""
  for i in $(seq "$PRODUCTS"); do
    stock_left+="$i $(curl -sf "$BASE/api/productos/$i" -H "authorization: Bearer $token" | json '["stock"]')"$'\n'
  done
  STOCK_LEFT=$stock_left START=$STOCK python3 -c '
import json, os, sys
start = int(os.environ["START"])
left = dict(map(int, l.split()) for l in os.environ["STOCK_LEFT"].split("\n") if l.strip())
ordered = {pid: 0 for pid in left}
orders = set()
for line in sys.stdin:
    if line.strip():
        row = json.loads(line)
        if row["estado"] != "cancelado":
            ordered[row["producto_id"]] = ordered.get(row["producto_id"], 0) + row["cantidad"]
            orders.add(row["pedido_id"])
wrong = [(p, ordered[p], left.get(p)) for p in ordered if ordered[p] + left.get(p, 0) != start]
sold_out = sum(1 for p in left if left[p] == 0)
print(f"   orders taken: {len(orders)}; units ordered: {sum(ordered.values())}; "
      f"products sold out: {sold_out} of {len(left)}")
if wrong:
    print(f"   MISMATCH (units ordered + stock left != {start}) for {len(wrong)} products: {wrong[:5]}")
    sys.exit(1)
print(f"   every product: units ordered + stock left = {start} (no oversell, no lost update)")
if sold_out == 0:
    print("   note: no product ran out; lower BENCH_STOCK to test the refusals too")
' <<< "$lines"
  echo "   RSS now: $(( $(rss_kb $pid) / 1024 )) MB, peak: $(( $(hwm_kb $pid) / 1024 )) MB"
  stop_server
}

run_benchmark "${1:-all}"
