#!/usr/bin/env bash
# Voice benchmark: decoding + resampling speed (times real time) per format, from
# 30-second recordings made here (a tone and espeak-ng speech; WAV 16 kHz mono,
# 44.1 kHz stereo 16-bit and 48 kHz stereo float; MP3, OGG Vorbis, FLAC), measured by
# `tendero transcribe` (median of REPEAT runs). With TENDERO_WHISPER_MODEL pointing
# at a real ggml model it also measures the transcription real-time factor and the
# process's peak RSS.
# Usage: benches/voice.sh   (make bench-voice)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/tendero/target}
BIN=$TARGET/release/tendero
REPEAT=${REPEAT:-7}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

machine
# Speech: a Spanish question, repeated to 30 s; a 440 Hz tone of the same length.
espeak-ng -v es -w "$WORK/frase.wav" \
  "Buenas tardes, ¿tienen taladros inalámbricos de dieciocho voltios por menos de trescientos mil pesos, y cuánto tarda el envío a Medellín?"
sox "$WORK/frase.wav" "$WORK/habla.wav" repeat 10 trim 0 30
sox -n -r 44100 -c 2 -b 16 "$WORK/tono.wav" synth 30 sine 440 vol 0.5

files=()
for source in habla tono; do
  sox "$WORK/$source.wav" -r 16000 -c 1 -b 16 "$WORK/$source-16k-mono.wav"
  sox "$WORK/$source.wav" -r 44100 -c 2 -b 16 "$WORK/$source-44k-stereo.wav"
  sox "$WORK/$source.wav" -r 48000 -c 2 -e floating-point -b 32 "$WORK/$source-48k-float.wav"
  sox "$WORK/$source-44k-stereo.wav" "$WORK/$source-44k-stereo.mp3"
  sox "$WORK/$source-44k-stereo.wav" "$WORK/$source-44k-stereo.ogg"
  sox "$WORK/$source-44k-stereo.wav" "$WORK/$source-44k-stereo.flac"
  files+=("$WORK/$source-16k-mono.wav" "$WORK/$source-44k-stereo.wav" "$WORK/$source-48k-float.wav"
          "$WORK/$source-44k-stereo.mp3" "$WORK/$source-44k-stereo.ogg" "$WORK/$source-44k-stereo.flac")
done

if [ -z "${TENDERO_WHISPER_MODEL:-}" ]; then
  echo "TENDERO_WHISPER_MODEL is not set: decoding only (no transcription figures)"
fi
/usr/bin/time -f "%M" -o "$WORK/rss" env TENDERO_LOG_LEVEL=warn "$BIN" transcribe --json \
  --repeat "$REPEAT" "${files[@]}" > "$WORK/report.jsonl"
python3 - "$WORK/report.jsonl" <<'PY'
import json, os, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"| file | format | decode + resample (ms) | x real time | transcription (ms) | real-time factor |")
print("| --- | --- | --- | --- | --- | --- |")
for r in rows:
    name = os.path.basename(r["file"])
    t = f'{r["transcribe_ms"]:.0f}' if "transcribe_ms" in r else "—"
    f = f'{r["real_time_factor"]:.3f}' if "real_time_factor" in r else "—"
    print(f'| {name} | {r["format"]} | {r["decode_ms"]:.1f} | {r["decode_x_realtime"]:.0f} | {t} | {f} |')
PY
echo "peak RSS of the process: $(( $(cat "$WORK/rss") / 1024 )) MB"
