"""How well Tendero hears the demo shop's customers: spoken questions about the demo
catalog's products (espeak-ng, two Spanish voices, two speeds) sent to
POST /api/query/voice of a release server with the real Whisper model, with and
without each of the two aids (the shop's vocabulary as Whisper's prompt; the
transcript's words corrected toward the catalog's). Scores:

- keyword recall: share of the product words of each question found in the text the
  agent answers (folded; a word counts when the transcript has it or its plural/
  singular form);
- first card: share of questions whose answer's first product card is the product
  asked about (or one of its variants), next to the same questions typed.

Usage: python3 benches/voice_quality.py BIN MODEL OUT_DIR   (make bench-voice-quality)
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
import urllib.request
import uuid

# (question, product words, SKUs that answer it)
QUESTIONS = [
    ("¿Tienen taladros inalámbricos?", ["taladros", "inalambricos"], ["FER-0001"]),
    ("Quiero comprar un martillo", ["martillo"], ["FER-0007"]),
    ("Necesito una caja de tornillos para madera", ["tornillos", "madera"], ["FER-0017"]),
    ("¿Cuánto cuesta la sierra circular?", ["sierra", "circular"], ["FER-0004"]),
    ("Busco una escalera de aluminio", ["escalera", "aluminio"], ["FER-0014"]),
    ("¿Tienen pintura blanca?", ["pintura"], ["FER-0015"]),
    ("Quiero una licuadora con vaso de vidrio", ["licuadora", "vidrio"], ["COC-0003", "COC-0004"]),
    ("¿Tienen freidora de aire?", ["freidora", "aire"], ["COC-0005"]),
    ("Busco una olla arrocera", ["olla", "arrocera"], ["COC-0001"]),
    ("¿Cuánto vale el sartén antiadherente?", ["sarten", "antiadherente"], ["COC-0010", "COC-0011"]),
    ("Necesito una nevera", ["nevera"], ["ELE-0001", "ELE-0002", "ELE-0003"]),
    ("¿Tienen lavadora de carga superior?", ["lavadora", "carga"], ["ELE-0004"]),
    ("Quiero un horno microondas", ["horno", "microondas"], ["ELE-0007", "ELE-0008"]),
    ("¿Venden ventiladores de pie?", ["ventiladores"], ["ELE-0013"]),
    ("Busco una aspiradora inalámbrica", ["aspiradora", "inalambrica"], ["ELE-0015"]),
    ("¿Tienen audífonos inalámbricos Sony?", ["audifonos", "sony"], ["TEC-0010", "TEC-0011"]),
    ("Quiero un parlante bluetooth", ["parlante", "bluetooth"], ["TEC-0012", "TEC-0013"]),
    ("¿Tienen impresora multifuncional?", ["impresora", "multifuncional"], ["TEC-0019"]),
    ("Necesito un mouse inalámbrico", ["mouse", "inalambrico"], ["TEC-0007", "TEC-0008"]),
    ("¿Cuánto cuesta el celular Samsung Galaxy?", ["celular", "samsung", "galaxy"],
     ["CEL-0001", "CEL-0002", "CEL-0003", "CEL-0004"]),
    ("Busco un cargador rápido", ["cargador", "rapido"], ["CEL-0013"]),
    ("¿Tienen batería externa?", ["bateria", "externa"], ["CEL-0016"]),
    ("Quiero una silla de oficina", ["silla", "oficina"], ["MUE-0009"]),
    ("¿Tienen mesa de noche?", ["mesa", "noche"], ["MUE-0014"]),
    ("Busco guantes de boxeo", ["guantes", "boxeo"], ["DEP-0016"]),
    ("¿Venden tapete de yoga?", ["tapete", "yoga"], ["DEP-0011"]),
    ("Necesito botas de seguridad", ["botas", "seguridad"], ["CAL-0009"]),
    ("Quiero un peluche de oso", ["peluche", "oso"], ["JUG-0014"]),
    ("¿Tienen protector solar?", ["protector", "solar"], ["BEL-0007"]),
    ("Busco una manguera de jardín", ["manguera", "jardin"], ["JAR-0001"]),
    ("¿Tienen cama para perro?", ["cama", "perro"], ["MAS-0005"]),
    ("Necesito una batería para carro", ["bateria", "carro"], ["AUT-0004"]),
    ("Quiero comprar dos martillos y una caja de tornillos", ["martillos", "tornillos"],
     ["FER-0007", "FER-0017"]),
    ("¿Tienen taladros inalámbricos de menos de doscientos mil pesos?",
     ["taladros", "inalambricos"], ["FER-0001", "FER-0005"]),
]
VOICES = [("es-419", 130), ("es-419", 165), ("es", 130), ("es", 165)]
CONFIGS = [
    ("ninguna", {"TENDERO_WHISPER_VOCABULARY": "false", "TENDERO_CORRECT_TRANSCRIPTS": "false"}),
    ("vocabulario", {"TENDERO_WHISPER_VOCABULARY": "true", "TENDERO_CORRECT_TRANSCRIPTS": "false"}),
    ("corrección", {"TENDERO_WHISPER_VOCABULARY": "false", "TENDERO_CORRECT_TRANSCRIPTS": "true"}),
    ("ambas", {"TENDERO_WHISPER_VOCABULARY": "true", "TENDERO_CORRECT_TRANSCRIPTS": "true"}),
]
PORT = int(os.environ.get("PORT", "18097"))
BASE = f"http://127.0.0.1:{PORT}"


def fold(text):
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


def words(text):
    return "".join(c if c.isalnum() else " " for c in fold(text)).split()


def has_word(said, word):
    """The transcript has `word`, or its plural or singular."""
    forms = {word, word + "s", word + "es"}
    if word.endswith("es"):
        forms.add(word[:-2])
    if word.endswith("s"):
        forms.add(word[:-1])
    return any(w in forms for w in said)


def recordings(work):
    made = []
    for qi, (question, _, _) in enumerate(QUESTIONS):
        for voice, speed in VOICES:
            path = os.path.join(work, f"q{qi:02}-{voice}-{speed}.wav")
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", path, question], check=True)
            made.append((qi, voice, speed, path))
    return made


def multipart(path):
    boundary = uuid.uuid4().hex
    with open(path, "rb") as f:
        audio = f.read()
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"q.wav\"\r\n"
        "Content-Type: audio/wav\r\n\r\n"
    ).encode() + audio + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(path, body, content_type):
    request = urllib.request.Request(BASE + path, data=body, headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.load(response)
    except urllib.error.HTTPError as err:
        return json.load(err)


def start(bin_path, model, data_dir, extra):
    env = dict(os.environ)
    env.update({
        "TENDERO_ADDR": f"127.0.0.1:{PORT}",
        "TENDERO_DATA_DIR": data_dir,
        "TENDERO_DEMO": "true",
        "TENDERO_DEV": "true",
        "TENDERO_GENERATOR": "extractive",
        "TENDERO_WHISPER_MODEL": model,
        "TENDERO_CHAT_RATE_LIMIT_PER_MINUTE": "1000000",
        "TENDERO_CHAT_RATE_LIMIT_BURST": "1000000",
        "TENDERO_RATE_LIMIT_PER_SECOND": "1000000",
        "TENDERO_RATE_LIMIT_BURST": "1000000",
        "TENDERO_LOG_LEVEL": "warn",
    })
    env.update(extra)
    log = open(os.path.join(data_dir, "server.log"), "a")
    server = subprocess.Popen([bin_path, "serve"], env=env, stdout=log, stderr=log)
    for _ in range(1200):
        try:
            urllib.request.urlopen(BASE + "/health", timeout=1)
            return server
        except Exception:
            if server.poll() is not None:
                sys.exit(f"the server stopped; see {data_dir}/server.log")
            time.sleep(0.25)
    sys.exit("the server did not start")


def main():
    bin_path, model, out_dir = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="tendero-voz-")
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    made = recordings(work)
    print(f"{len(made)} recordings of {len(QUESTIONS)} questions, voices {VOICES}")
    results = {}
    typed_hits = None
    for name, extra in CONFIGS:
        server = start(bin_path, model, data_dir, extra)
        try:
            if typed_hits is None:
                typed_hits = 0
                for question, _, skus in QUESTIONS:
                    answer = post("/api/query/text", json.dumps({"query": question}).encode(), "application/json")
                    first = next((s["sku"] for s in answer.get("sources", []) if s.get("sku")), None)
                    typed_hits += first in skus
            rows = []
            for qi, voice, speed, path in made:
                question, keywords, skus = QUESTIONS[qi]
                body, content_type = multipart(path)
                answer = post("/api/query/voice", body, content_type)
                heard = answer.get("transcription", {})
                text = heard.get("text", "")
                said = words(text)
                first = next((s["sku"] for s in answer.get("sources", []) if s.get("sku")), None)
                rows.append({
                    "question": question, "voice": voice, "speed": speed,
                    "whisper": heard.get("heard") or text, "text": text,
                    "keywords_found": sum(has_word(said, k) for k in keywords),
                    "keywords": len(keywords), "first_card": first, "hit": first in skus,
                    "audio_ms": heard.get("audio_ms"), "transcribe_ms": heard.get("transcribe_ms"),
                })
            results[name] = rows
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
    with open(os.path.join(out_dir, "voice_quality.json"), "w") as f:
        json.dump({"questions": len(QUESTIONS), "voices": VOICES, "typed_first_card": typed_hits,
                   "results": results}, f, ensure_ascii=False, indent=1)
    n = len(made)
    print(f"\nTyped, the same {len(QUESTIONS)} questions: first card right {typed_hits}/{len(QUESTIONS)}")
    print("\n| aids | keyword recall | first card right |")
    print("| --- | --- | --- |")
    for name, rows in results.items():
        found = sum(r["keywords_found"] for r in rows)
        total = sum(r["keywords"] for r in rows)
        hits = sum(r["hit"] for r in rows)
        print(f"| {name} | {found}/{total} = {found / total:.3f} | {hits}/{n} = {hits / n:.3f} |")
    print(f"\nPer recording: {os.path.join(out_dir, 'voice_quality.json')}")


if __name__ == "__main__":
    main()
