"""Scrapes a Prometheus endpoint every INTERVAL seconds over one keep-alive
connection until killed, as a Prometheus server would (one process, no fork per
scrape). Usage: scrape.py PORT [INTERVAL]"""
import http.client
import sys
import time

port = int(sys.argv[1])
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
conn = None
while True:
    try:
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/metrics", headers={"Accept": "application/openmetrics-text"})
        conn.getresponse().read()
    except OSError:
        conn = None
    time.sleep(interval)
