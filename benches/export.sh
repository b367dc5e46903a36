#!/usr/bin/env bash
# Export benchmark: 1,000,000 order lines (500,000 orders of two lines) streamed as CSV
# and as JSON Lines through GET /api/exportar/pedidos?detalle=lineas, on SQLite and on
# PostgreSQL. Prints rows/s and the server's RSS before and at its peak during the export.
#
# Usage: benches/export.sh [sqlite|postgres|all]   (PostgreSQL from BENCH_PG_URL)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/tendero/target}
BIN=$TARGET/release/tendero
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
PORT=${BENCH_PORT:-8791}
BASE=http://127.0.0.1:$PORT
ORDERS=${BENCH_ORDERS:-500000}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }

# shellcheck source=benches/common.sh
source "$(dirname "$0")/common.sh"

seed_sqlite() {
  python3 - "$1" "$ORDERS" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
orders = int(sys.argv[2])
now = "2026-11-21T10:00:00.000000+00:00"
db.execute("""INSERT INTO pedidos (cliente_id, estado, total_centavos, created_at, updated_at)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
  SELECT 1, 'pendiente', 5001, ?, ? FROM n""", (orders, now, now))
for _ in range(2):
    db.execute("""INSERT INTO pedido_items (pedido_id, producto_id, sku, nombre, cantidad,
      precio_unitario_centavos, subtotal_centavos, created_at, updated_at)
      SELECT id, 1, 'BENCH-1', 'Camiseta "básica", talla M', 1, 2500, 2500, created_at, updated_at
      FROM pedidos""")
db.commit()
PY
}

seed_postgres() {
  psql "$1" -q <<SQL
INSERT INTO pedidos (cliente_id, estado, total_centavos, created_at, updated_at)
  SELECT 1, 'pendiente', 5001, now(), now() FROM generate_series(1, $ORDERS);
INSERT INTO pedido_items (pedido_id, producto_id, sku, nombre, cantidad, precio_unitario_centavos,
  subtotal_centavos, created_at, updated_at)
  SELECT p.id, 1, 'BENCH-1', 'Camiseta "básica", talla M', 1, 2500, 2500, p.created_at, p.updated_at
  FROM pedidos p CROSS JOIN generate_series(1, 2);
ANALYZE;
SQL
}

run_backend() {
  local backend=$1 pid token
  start_server "$backend"
  pid=$PID token=$TOKEN
  api POST /api/clientes '{"nombre":"Cliente de carga","email":"carga@bench.test"}' >/dev/null
  api POST /api/productos '{"sku":"BENCH-1","nombre":"Camiseta","precio":"25","stock":10}' >/dev/null
  local seeded=$SECONDS
  if [ "$backend" = postgres ]; then seed_postgres "$DB_URL"; else seed_sqlite "$DIR/tendero.db"; fi
  echo "== $backend: seeded $ORDERS orders, $(( ORDERS * 2 )) lines in $(( SECONDS - seeded )) s"

  local format
  for format in ${BENCH_FORMATS:-csv jsonl}; do
    local before peak sampler result
    before=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    ( peak=0; while kill -0 "$pid" 2>/dev/null; do
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        [ "$rss" -gt "$peak" ] && peak=$rss && echo "$peak" > "$DIR/peak"
        sleep 0.02
      done ) &
    sampler=$!
    result=$(curl -sf -o "$DIR/out" -w '%{time_total} %{size_download}' \
      "$BASE/api/exportar/pedidos?detalle=lineas&formato=$format${BENCH_QUERY:-}" -H "authorization: Bearer $token")
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    peak=$(cat "$DIR/peak")
    local seconds=${result%% *} bytes=${result##* } lines
    lines=$(wc -l < "$DIR/out")
    [ "$format" = csv ] && lines=$(( lines - 1 ))
    awk -v f="$format" -v n="$lines" -v s="$seconds" -v b="$bytes" -v r0="$before" -v r1="$peak" 'BEGIN {
      printf "   %-5s %d rows in %.2f s = %d rows/s, %d MB; RSS %d MB before, %d MB peak (+%d MB)\n",
        f, n, s, n / s, b / 1e6, r0 / 1024, r1 / 1024, (r1 - r0) / 1024 }'
    rm -f "$DIR/out" "$DIR/peak"
  done
  stop_server
}

run_benchmark "${1:-all}"
