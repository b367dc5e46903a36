"""Measures a server's analytics (benches/analytics.sh): waits until every event is
folded (the time from its start), then sends each /api/analitica route REQUESTS times,
one after another, over one connection, and prints p50 and p95 per route and range, and
the server's resident memory before and after the totals were built.

Usage: analytics_load.py BASE TOKEN PID REQUESTS"""
import datetime
import http.client
import json
import statistics
import sys
import time
import urllib.parse

base, token, pid, requests = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
url = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(url.hostname, url.port)
headers = {"authorization": f"Bearer {token}"}


def rss_mb():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def get(path):
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"{path}: {response.status} {body[:300]!r}")
    return json.loads(body)


start_rss = rss_mb()
started = time.monotonic()
while True:
    answer = get("/api/analitica/serie")
    if answer["al_dia"]:
        break
    time.sleep(0.5)
folded = time.monotonic() - started
today = datetime.datetime.now(datetime.timezone.utc).date()
# The events span the last 80 days.
since = (today - datetime.timedelta(days=89)).isoformat()
total = get(f"/api/analitica/serie?desde={since}")["total"]
print(f"folded {total['busquedas']} searches and {total['clics']} clicks in {folded:.1f} s "
      f"(measured from the first request); RSS {start_rss:.0f} MB before, {rss_mb():.0f} MB after")

for days in (30, 90):
    since = (today - datetime.timedelta(days=days - 1)).isoformat()
    routes = {
        "serie (día)": f"/api/analitica/serie?desde={since}",
        "serie (semana)": f"/api/analitica/serie?desde={since}&por=semana",
        "consultas populares": f"/api/analitica/consultas?desde={since}",
        "consultas sin clics": f"/api/analitica/consultas?desde={since}&orden=sin_clics",
        "productos": f"/api/analitica/productos?desde={since}",
        "valoraciones": f"/api/analitica/valoraciones?desde={since}",
    }
    for name, path in routes.items():
        get(path)
        times = []
        for _ in range(requests):
            t = time.perf_counter()
            get(path)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        print(f"{days} days, {name}: p50 {statistics.median(times):.2f} ms, "
              f"p95 {times[int(len(times) * 0.95) - 1]:.2f} ms")
print(f"RSS at the end {rss_mb():.0f} MB")
