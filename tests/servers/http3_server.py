#!/usr/bin/env python3
"""A minimal HTTP/3 server for tests/it/http3.rs, on aioquic's API (the design of
aioquic's examples/http3_server.py, without its ASGI layer). Prints its UDP port,
then answers:

  GET  /ok       200 "hello"
  POST /echo     201 with the request body
  GET  /slow     nothing (the request is left unanswered)
  anything else  404

After each request it writes {"requests": {path: count}} to STATS_FILE.
Usage: http3_server.py CERT KEY STATS_FILE [PORT]   (0, the default: a free port)
"""

import asyncio
import json
import os
import socket
import sys

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated

COUNTS = {}
STATS_FILE = ""


def record(path):
    COUNTS[path] = COUNTS.get(path, 0) + 1
    tmp = STATS_FILE + ".tmp"
    with open(tmp, "w") as out:
        json.dump({"requests": COUNTS}, out)
    os.replace(tmp, STATS_FILE)


class Http3Server(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._http = None
        self._requests = {}

    def quic_event_received(self, event):
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self._http = H3Connection(self._quic)
        if self._http is None:
            return
        for h3_event in self._http.handle_event(event):
            self.h3_event_received(h3_event)

    def h3_event_received(self, event):
        if isinstance(event, HeadersReceived):
            headers = dict(event.headers)
            self._requests[event.stream_id] = {
                "method": headers.get(b":method", b"").decode(),
                "path": headers.get(b":path", b"").decode(),
                "body": bytearray(),
            }
        elif isinstance(event, DataReceived) and event.stream_id in self._requests:
            self._requests[event.stream_id]["body"].extend(event.data)
        if getattr(event, "stream_ended", False) and event.stream_id in self._requests:
            self.respond(event.stream_id, self._requests.pop(event.stream_id))

    def respond(self, stream_id, request):
        path = request["path"].split("?")[0]
        record(path)
        if path == "/slow":
            return
        if path == "/ok" and request["method"] == "GET":
            status, body = 200, b"hello"
        elif path == "/echo" and request["method"] == "POST":
            status, body = 201, bytes(request["body"])
        else:
            status, body = 404, b"not found"
        self._http.send_headers(stream_id, [
            (b":status", str(status).encode()),
            (b"content-type", b"text/plain"),
            (b"content-length", str(len(body)).encode()),
        ])
        self._http.send_data(stream_id, body, end_stream=True)
        self.transmit()


async def main():
    global STATS_FILE
    cert, key, STATS_FILE = sys.argv[1], sys.argv[2], sys.argv[3]
    port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    if port == 0:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
    configuration = QuicConfiguration(alpn_protocols=H3_ALPN, is_client=False)
    configuration.load_cert_chain(cert, key)
    await serve("127.0.0.1", port, configuration=configuration, create_protocol=Http3Server)
    print(port, flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
