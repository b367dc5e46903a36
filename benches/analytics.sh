#!/usr/bin/env bash
# The analytics over a synthetic log of EVENTS (1,000,000) searches and clicks
# (benches/click_events.py: 20,000 queries, 5,000 products, 80 days; in time order unless
# ORDER=random), on SQLite and
# PostgreSQL: how long a server takes to fold the whole log into its totals, its memory
# before and after, and each /api/analitica route's latency (sequential requests, the
# last 30 and 90 days). `make bench-analytics`; usage: benches/analytics.sh [sqlite|postgres|all]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh
BIN=${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/tendero/target}/release/tendero}
PORT=${PORT:-8791}
BASE="http://127.0.0.1:$PORT"
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
EVENTS=${EVENTS:-1000000}
CSV=$(mktemp -d)/events.csv
python3 benches/click_events.py "$EVENTS" "${QUERIES:-20000}" "$CSV"
# A shop's log is written in time order (ids grow with time); the generator's is not.
# ORDER=random keeps its order: the fold's worst case (every chunk spans every day).
if [ "${ORDER:-time}" = time ]; then
  python3 - "$CSV" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
rows.sort(key=lambda r: r[4])
csv.writer(open(sys.argv[1], "w", newline="")).writerows(rows)
PY
fi

run_backend() {
  fresh_database "$1"
  server_env TENDERO_LOG_LEVEL=warn TENDERO_LEARNING_INTERVAL_SECS=0 TENDERO_ANALYTICS_INTERVAL_SECS=1 \
    TENDERO_RATE_LIMIT_PER_SECOND=100000 TENDERO_RATE_LIMIT_BURST=100000
  env "${SERVER_ENV[@]}" "$BIN" migrate >/dev/null
  load_events "$CSV"
  trap stop_server EXIT
  launch_server
  echo "## $1"
  python3 benches/analytics_load.py "$BASE" "$TOKEN" "$PID" "${REQUESTS:-200}"
  stop_server
}

run_benchmark "${1:-all}"
rm -rf "$(dirname "$CSV")"
