"""A small test exporter (run as its own process, outside the console's
multiprocess metric files): known values for the tests to find through a real
Prometheus and counters that grow every second.

    python exporter.py <port>

Importing this module creates no metric (tests import TRICKY_ROOMS).
"""

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Label values the escaping tests look for: a quote, a backslash, a newline.
TRICKY_ROOMS = {'lab "A"': 21.5, "c:\\temp": 18.25, "two\nlines": 30.0, "plain": 12.0}


def serve(port: int) -> None:
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

    registry = CollectorRegistry()
    temperature = Gauge("demo_temperature_celsius", "Room temperature.", ["room"], registry=registry)
    for room, value in TRICKY_ROOMS.items():
        temperature.labels(room).set(value)
    service_up = Gauge("demo_service_up", "1 when a demo service is up.", ["service"], registry=registry)
    service_up.labels("api").set(1)
    service_up.labels("db").set(0)
    queue = Gauge("demo_queue_depth", "Items waiting.", registry=registry)
    queue.set(7)
    ticks = Counter("demo_ticks", "Grows by one every second.", registry=registry)
    requests = Counter("demo_requests", "Requests by code.", ["code"], registry=registry)

    def tick() -> None:
        while True:
            ticks.inc()
            requests.labels("200").inc(10)
            requests.labels("500").inc(1)
            time.sleep(1)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    threading.Thread(target=tick, daemon=True).start()
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
