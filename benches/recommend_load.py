"""Loads the Online Retail orders into a running Tendero through its REST API: the
products and customers the temporal protocol keeps, then every invoice as an order
(in time order). Prints the customer ids it created, one per line, to the file given.

usage: recommend_load.py BASE TOKEN ORDERS_CSV_GZ CUSTOMER_IDS_OUT
"""
import csv
import gzip
import http.client
import json
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

base, token, path, out = sys.argv[1:5]
host = urllib.parse.urlparse(base)
local = threading.local()


def call(method, route, body):
    if not hasattr(local, "conn"):
        local.conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
    payload = json.dumps(body)
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    local.conn.request(method, route, payload, headers)
    response = local.conn.getresponse()
    data = response.read()
    if response.status >= 300:
        raise SystemExit(f"{method} {route} -> {response.status}: {data[:300]!r}")
    return json.loads(data)


products, customers, invoices = {}, set(), {}
with gzip.open(path, "rt", newline="") as f:
    for row in csv.DictReader(f):
        code, invoice, customer = row["StockCode"], row["InvoiceNo"], row["CustomerID"]
        if not customer or invoice.startswith("C") or len(code) < 5 or not code[:5].isdigit():
            continue
        quantity = int(float(row["Quantity"]))
        if quantity <= 0:
            continue
        customer = int(float(customer))
        products.setdefault(code, (row["Description"].strip() or code, max(float(row["UnitPrice"]), 0.01)))
        customers.add(customer)
        order = invoices.setdefault(invoice, {"date": row["InvoiceDate"], "customer": customer, "items": {}})
        order["items"][code] = order["items"].get(code, 0) + quantity

started = time.time()
with ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda item: call("POST", "/api/productos", {
        "sku": item[0], "nombre": item[1][0][:200], "categoria": "regalos",
        "precio": f"{item[1][1]:.2f}", "stock": 1_000_000_000,
    }), products.items()))
    ids = dict(zip(sorted(customers), pool.map(lambda c: call("POST", "/api/clientes", {
        "nombre": f"Cliente {c}", "email": f"c{c}@retail.test",
    })["id"], sorted(customers))))
    # An order takes at most 100 lines: a larger invoice becomes several orders.
    orders = []
    for _, order in sorted(invoices.items(), key=lambda kv: (kv[1]["date"], kv[0])):
        lines = [{"sku": code, "cantidad": min(q, 10_000)} for code, q in order["items"].items()]
        for start in range(0, len(lines), 100):
            orders.append({"cliente_id": ids[order["customer"]], "items": lines[start:start + 100]})
    list(pool.map(lambda body: call("POST", "/api/pedidos", body), orders))
lines = sum(len(o["items"]) for o in invoices.values())
print(f"loaded {len(products)} products, {len(customers)} customers, {len(invoices)} invoices "
      f"as {len(orders)} orders ({lines} lines) in {time.time() - started:.0f} s")
with open(out, "w") as f:
    f.write("\n".join(str(i) for i in ids.values()) + "\n")
