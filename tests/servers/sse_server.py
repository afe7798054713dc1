#!/usr/bin/env python3
"""A Server-Sent Events endpoint for tests/it/sse.rs (the standard library's
threading HTTP server, HTTP/1.1 with chunked bodies). Prints its port, then serves:

  GET /events?count=N&interval=MS  a comment, `event: status` / `data: ready`, then N
                                   `id: i` / `data: tick i` events MS apart, then ends
  GET /silent                      the response head, then nothing (up to 30 s)
  GET /stats                       {"opened": streams opened, "refused": without Accept}
  anything else                    404

An event-stream request without `Accept: text/event-stream` is answered 406.
Usage: sse_server.py [PORT]   (0, the default: a free port)
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
STATS = {"opened": 0, "refused": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/stats":
            with LOCK:
                body = json.dumps(STATS).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if url.path not in ("/events", "/silent"):
            self.send_error(404)
            return
        if "text/event-stream" not in self.headers.get("Accept", ""):
            with LOCK:
                STATS["refused"] += 1
            self.send_error(406)
            return
        with LOCK:
            STATS["opened"] += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            if url.path == "/silent":
                time.sleep(30)
                return
            query = parse_qs(url.query)
            count = int(query.get("count", ["3"])[0])
            interval = int(query.get("interval", ["10"])[0]) / 1000
            self.chunk(": welcome\n\nevent: status\ndata: ready\n\n")
            for i in range(count):
                time.sleep(interval)
                self.chunk(f"id: {i}\ndata: tick {i}\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
