"""A UDP sink that receives and discards datagrams, counting them.

    python3 bench/udp_discard.py PORT

Stands in for InfluxDB's UDP listener in bench/compare.sh; prints the datagram and
byte counts when terminated.
"""
import signal
import socket
import sys

port = int(sys.argv[1])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.bind(("127.0.0.1", port))
datagrams = 0
received = 0


def report(*_):
    print(f"{datagrams} datagrams, {received} bytes", file=sys.stderr)
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
while True:
    data = sock.recv(65536)
    datagrams += 1
    received += len(data)
