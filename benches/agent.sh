#!/usr/bin/env bash
# Sales-agent benchmark, with a fake Ollama (benches/agent/fake_ollama.mjs) that
# writes one token every 20 ms:
#   1. time to first token through Tendero minus straight from the fake, over SSE
#      and Socket.IO (retrieval on the demo shop included);
#   2. 200 Socket.IO conversations streaming at once, on a server whose limits are
#      raised out of the way (TENDERO_MAX_GENERATIONS=512, chat and REST rate
#      limits at 10,000,000): all complete, none mixed, per-token relay delay
#      (client receipt minus the fake's write time); then the same burst on a
#      server with the shipped limits (4 answers at once, each waiting up to
#      10 s): how many are answered, how many told `busy`, and after how long;
#   3. server RSS with 1,000 and 5,000 idle Socket.IO connections.
# Usage: benches/agent.sh [all|ttft]   (make bench-agent: all; ttft: part 1 alone)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/tendero/target}
BIN=${BIN:-$TARGET/release/tendero}
PORT=${PORT:-18441}
FAKE_PORT=${FAKE_PORT:-18442}
BASE=http://127.0.0.1:$PORT
FAKE=http://127.0.0.1:$FAKE_PORT
export FRONTEND_DIR=$PWD/test_frontend
SAMPLES=${SAMPLES:-200}
PARTS=${1:-all}
case "$PARTS" in all|ttft) ;; *) echo "usage: $0 [all|ttft]" >&2; exit 2 ;; esac
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

node benches/agent/fake_ollama.mjs "$FAKE_PORT" 20 30 > /dev/null &
FAKE_PID=$!

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

machine
# The demo shop is embedded at first start: give it up to a minute.
serve() {
  HEALTH_TRIES=600 start_server sqlite TENDERO_DEMO=true TENDERO_EMBEDDER=auto TENDERO_OLLAMA_URL="$FAKE" \
  TENDERO_OLLAMA_MODEL=bench TENDERO_LOG_LEVEL=warn \
  TENDERO_CHAT_RATE_LIMIT_PER_MINUTE=10000000 TENDERO_CHAT_RATE_LIMIT_BURST=10000000 \
  TENDERO_RATE_LIMIT_PER_SECOND=10000000 TENDERO_RATE_LIMIT_BURST=10000000 \
  TENDERO_MAX_GENERATIONS=512
  # start_server sets its own EXIT trap; stop the fake too.
  trap 'stop_server; kill $FAKE_PID 2>/dev/null' EXIT
}
serve
echo "embedder: $(curl -sf "$BASE/ready" | json '["components"]["embedder"]["detail"]')"
# The index upkeep compacts the freshly loaded demo shop at its first turns: measure
# once the LanceDB version has held still for 3 s (15 polls).
lancedb_version() { curl -sf "$BASE/ready" | json '["components"]["lancedb"]["detail"]'; }
last=$(lancedb_version) steady=0
while [ "$steady" -lt 15 ]; do
  sleep 0.2
  now=$(lancedb_version)
  if [ "$now" = "$last" ]; then steady=$((steady + 1)); else steady=0 last=$now; fi
done
echo "index settled: $last"

echo "## time to first token (ms), $SAMPLES questions per path"
node benches/agent/client.mjs ttft "$FAKE" "$BASE" "$SAMPLES"
[ "$PARTS" = ttft ] && exit 0

echo "## 200 concurrent Socket.IO conversations (30 tokens each), limits raised (see the header)"
node benches/agent/client.mjs concurrent "$BASE" 200

echo "RSS after the above: $(( $(rss_kb "$PID") / 1024 )) MB"

# The shipped limits: 4 answers at once, 10 s in the queue; each socket's own
# question budget (20 a minute, 5 at once) does not bind one question per socket.
echo "## the same burst with the shipped limits"
stop_server
HEALTH_TRIES=600 start_server sqlite TENDERO_DEMO=true TENDERO_EMBEDDER=auto TENDERO_OLLAMA_URL="$FAKE" \
  TENDERO_OLLAMA_MODEL=bench TENDERO_LOG_LEVEL=warn
trap 'stop_server; kill $FAKE_PID 2>/dev/null' EXIT
node benches/agent/client.mjs concurrent "$BASE" 200

# Per-connection memory does not depend on the catalog: a fresh server without the
# demo shop or the model, one per count, keeps the baseline steady. mimalloc keeps
# freed pages for a while before returning them, which can hide or inflate the growth;
# each count is measured as shipped and with the allocator returning pages at once.
echo "## RSS with idle Socket.IO connections (a fresh server per count, empty catalog)"
stop_server
idle_rss() {
  local n=$1 label=$2
  shift 2
  start_server sqlite TENDERO_LOG_LEVEL=warn "$@"
  trap 'stop_server; kill $FAKE_PID 2>/dev/null' EXIT
  sleep 2 # let start-up allocations settle (nothing to poll for)
  local before after line
  before=$(rss_kb "$PID")
  coproc IDLE { node benches/agent/client.mjs idle "$BASE" "$n"; }
  read -r line <&"${IDLE[0]}"
  sleep 2 # let the server settle after the handshakes (nothing to poll for)
  after=$(rss_kb "$PID")
  echo "$line ($label): RSS $((before / 1024)) MB -> $((after / 1024)) MB, $(( (after - before) / n )) KB per connection"
  exec {IDLE[1]}>&-
  wait "$IDLE_PID" 2>/dev/null || true
  stop_server
}
for n in 1000 5000; do
  idle_rss "$n" "mimalloc as shipped"
  idle_rss "$n" "pages returned at once" MIMALLOC_PURGE_DELAY=0 MIMALLOC_ARENA_EAGER_COMMIT=0
done
