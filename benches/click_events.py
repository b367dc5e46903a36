"""Writes a synthetic event log for the click-learning benchmark as CSV (tipo, datos,
producto_id, ref_id, created_at, updated_at): searches of a Zipf-distributed set of
queries by many clients over the last 80 days, each showing ten products, and clicks
on them by a position-based model. Seeded: the same file every run.

Usage: click_events.py EVENTS QUERIES OUT.csv"""
import csv
import datetime
import itertools
import json
import random
import sys
import uuid

events, n_queries, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(42)
products = 5000
cumulative = list(itertools.accumulate(1 / (rank + 1) ** 1.1 for rank in range(n_queries)))
now = datetime.datetime.now(datetime.timezone.utc)
written = 0
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    while written < events:
        q = rng.choices(range(n_queries), cum_weights=cumulative)[0]
        base = (q * 7919) % products
        shown = [(base + i * 13 + rng.randrange(3)) % products + 1 for i in range(10)]
        client = f"{rng.randrange(200_000):024x}"
        at = (now - datetime.timedelta(seconds=rng.randrange(80 * 86400))).strftime(
            "%Y-%m-%d %H:%M:%S+00:00")
        sid = str(uuid.UUID(int=rng.getrandbits(128)))
        datos = {"busqueda_id": sid, "q": f"consulta {q}", "corregida": None, "modo": "hybrid",
                 "k": 10, "resultados": 10, "productos": shown, "aprendizaje": True,
                 "canal": "rest", "cliente": client, "ms": 2.0}
        w.writerow(["busqueda", json.dumps(datos), "", sid, at, at])
        written += 1
        for place, product in enumerate(shown):
            attraction = 0.6 if (product + q) % 5 == 0 else 0.05
            if written < events and rng.random() < attraction / (place + 1):
                click = {"busqueda_id": sid, "chat_id": None, "producto_id": product,
                         "posicion": place + 1, "canal": "rest", "cliente": client}
                w.writerow(["click_producto", json.dumps(click), product, sid, at, at])
                written += 1
