# Shared by the benchmark scripts: start a release server on a fresh SQLite file or a
# fresh PostgreSQL database, sign in, and clean up. Source it; set BIN, PORT, BASE and
# PG_URL first.

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# fresh_database BACKEND: a new SQLite file (in a new DIR) or a new PostgreSQL database;
# sets DIR, DB_NAME (PostgreSQL only) and DB_URL.
fresh_database() {
  DIR=$(mktemp -d)
  DB_NAME=""
  if [ "$1" = postgres ]; then
    DB_NAME="tendero_bench_$$"
    psql "$PG_URL" -qc "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB_NAME" -c "CREATE DATABASE $DB_NAME" >/dev/null
    DB_URL="${PG_URL%/*}/$DB_NAME"
  else
    DB_URL="sqlite://$DIR/tendero.db?mode=rwc"
  fi
}

# server_env [VAR=value …]: SERVER_ENV for a server on PORT over DB_URL and DIR, with the
# benchmark's admin, and the extra settings given.
server_env() {
  SERVER_ENV=(TENDERO_ADDR="127.0.0.1:$PORT" TENDERO_DATA_DIR="$DIR" TENDERO_DATABASE_URL="$DB_URL"
    TENDERO_JWT_SECRET=bench-secret-bench-secret-bench-secret-42
    TENDERO_ADMIN_EMAIL=admin@bench.test TENDERO_ADMIN_PASSWORD=bench-password
    TENDERO_DEMO=false TENDERO_EMBEDDER=hash "$@")
}

# start_server BACKEND [VAR=value …]: sets DIR, PID, TOKEN, DB_NAME and DB_URL.
start_server() {
  local backend=$1
  shift
  fresh_database "$backend"
  server_env "$@"
  launch_server
  trap stop_server EXIT
}

# load_events CSV: appends the events of CSV (tipo, datos, producto_id, ref_id,
# created_at, updated_at) to DB_URL's event log, migrated first.
load_events() {
  if [ -n "$DB_NAME" ]; then
    psql "$DB_URL" -qc "\\copy eventos(tipo, datos, producto_id, ref_id, created_at, updated_at) FROM '$1' CSV"
  else
    python3 - "$DIR/tendero.db" "$1" <<'PY'
import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = ((t, d, int(p) if p else None, r, c, u) for t, d, p, r, c, u in csv.reader(open(sys.argv[2])))
db.executemany("INSERT INTO eventos (tipo, datos, producto_id, ref_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)", rows)
db.commit()
PY
  fi
}

# Starts the binary with SERVER_ENV, waits for /health, signs in.
launch_server() {
  env "${SERVER_ENV[@]}" "$BIN" serve >> "${BENCH_LOG:-$DIR/server.log}" 2>&1 &
  PID=$!
  for _ in $(seq "${HEALTH_TRIES:-100}"); do curl -sf "$BASE/health" >/dev/null && break; sleep 0.1; done
  TOKEN=$(curl -sf "$BASE/api/auth/login" -H 'content-type: application/json' \
    -d '{"email":"admin@bench.test","password":"bench-password"}' | json '["token"]')
}

# Stops the server and starts it again on the same data and settings.
restart_server() {
  kill "$PID" && wait "$PID" 2>/dev/null || true
  launch_server
}

stop_server() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  PID=""
  if [ -n "${DB_NAME:-}" ]; then psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME" >/dev/null; fi
  DB_NAME=""
  [ -n "${DIR:-}" ] && rm -rf "$DIR"
  DIR=""
  return 0
}

# api METHOD PATH [JSON]: a signed-in request.
api() {
  curl -sf -X "$1" "$BASE$2" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' ${3:+-d "$3"}
}

# run_benchmark sqlite|postgres|all: prints the machine, then calls the script's
# run_backend for each backend asked for.
run_benchmark() {
  machine
  case "$1" in
    sqlite) run_backend sqlite ;;
    postgres) run_backend postgres ;;
    all) run_backend sqlite; run_backend postgres ;;
    *) echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2 ;;
  esac
}

machine() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
}
