"""The peer a Python shop would pick: faster-whisper (CTranslate2) on the same Whisper
base weights, the same recordings and the same threads, int8, greedy decoding as
Tendero's. Prints one JSON object per file, like `tendero transcribe --json`.

Usage: whisper_peer.py MODEL_DIR THREADS REPEAT LANGUAGE FILE...
"""

import json
import resource
import sys
import time

from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio


def main():
    model_dir, threads, repeat, language = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    started = time.perf_counter()
    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1)
    load_ms = (time.perf_counter() - started) * 1e3
    for path in sys.argv[5:]:
        audio = decode_audio(path, sampling_rate=16000)
        audio_ms = len(audio) / 16.0
        times, text = [], ""
        for _ in range(repeat):
            started = time.perf_counter()
            segments, _ = model.transcribe(
                audio, language=None if language == "auto" else language, beam_size=1, best_of=1,
                temperature=0.0, condition_on_previous_text=False, vad_filter=False,
                without_timestamps=False,
            )
            text = "".join(s.text for s in segments).strip()
            times.append((time.perf_counter() - started) * 1e3)
        times.sort()
        ms = times[len(times) // 2]
        print(json.dumps({"file": path, "audio_ms": audio_ms, "model_load_ms": load_ms, "transcribe_ms": ms,
                          "real_time_factor": ms / audio_ms, "text": text}, ensure_ascii=False))
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
