"""Accepts any POST or PUT on 127.0.0.1:PORT over keep-alive HTTP/1.1, reads the body,
answers 200 `{}` and counts requests and bytes (printed to stderr at exit): a stand-in
for a trace intake (the Datadog agent's PUT /v0.4/traces) that never slows the sender.
Usage: http_sink.py PORT"""
import http.server
import signal
import sys

port = int(sys.argv[1])
seen = {"requests": 0, "bytes": 0}


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_PUT(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        seen["requests"] += 1
        seen["bytes"] += length
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_PUT

    def log_message(self, *args):
        pass


def stop(*_):
    print(f"{seen['requests']} requests, {seen['bytes']} bytes", file=sys.stderr)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
