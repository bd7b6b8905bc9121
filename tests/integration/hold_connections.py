#!/usr/bin/env python3
"""Holds many connections to a server the way a careless or hostile client would, and reports
when the server closes them. Used by frontdoor_limits_test.sh and the benchmarks.

  hold_connections.py MODE COUNT PORT [--tls] [--limit SECONDS] [--sources K]

MODE:
  idle       connect and send nothing
  tls-idle   finish a TLS handshake and send nothing
  trickle    send a request head one header line per second, never finishing it
  keepalive  send one complete GET (of --path, /healthz by default), read its answer, then
             stay idle

Prints "opened N" once COUNT connections are up (and, for keepalive, answered), then
"closed N of COUNT after S s" when the server has closed all of them or --limit passes.
Exits 0 when every connection was opened; the caller judges the closing report.
--sources K spreads the connections over K source addresses 127.0.0.1 ... 127.0.0.K.
"""
import argparse
import resource
import selectors
import socket
import ssl
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["idle", "tls-idle", "trickle", "keepalive"])
    ap.add_argument("count", type=int)
    ap.add_argument("port", type=int)
    ap.add_argument("--limit", type=float, default=60.0)
    ap.add_argument("--sources", type=int, default=1)
    ap.add_argument("--path", default="/healthz")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.count + 64 > hard:
        print(f"cannot hold {args.count} connections: the descriptor limit is {hard}", flush=True)
        return 2

    ctx = None
    if args.mode == "tls-idle":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

    sel = selectors.DefaultSelector()
    conns = []
    start = time.monotonic()
    deadline = start + 120  # for opening, however long --limit is
    batch = 500  # handshakes are finished a batch at a time, so none waits long for its turn
    for first in range(0, args.count, batch):
        fresh = []
        for i in range(first, min(first + batch, args.count)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if args.sources > 1:
                s.bind((f"127.0.0.{1 + i % args.sources}", 0))
            s.connect(("127.0.0.1", args.port))
            s.setblocking(False)
            if ctx is not None:
                s = ctx.wrap_socket(s, server_side=False, do_handshake_on_connect=False)
            fresh.append(s)
        pending = set(fresh) if ctx is not None else set()
        while pending and time.monotonic() < deadline:
            for s in list(pending):
                try:
                    s.do_handshake()
                    pending.discard(s)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
            if pending:
                time.sleep(0.002)
        if pending:
            print(f"{len(pending)} TLS handshakes did not finish", flush=True)
            return 1
        conns.extend(fresh)

    if args.mode == "keepalive":
        request = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % args.path.encode()
        for s in conns:
            s.send(request)
        answered = set()
        deadline = time.monotonic() + args.limit
        buffers = {s: b"" for s in conns}
        while len(answered) < len(conns) and time.monotonic() < deadline:
            for s in conns:
                if s in answered:
                    continue
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                buffers[s] += data
                if b"\r\n\r\n" in buffers[s] or not data:  # the answer's head arrived
                    answered.add(s)
            time.sleep(0.01)
        if len(answered) < len(conns):
            print(f"only {len(answered)} of {len(conns)} keep-alive requests answered", flush=True)
            return 1

    if args.mode == "trickle":
        for s in conns:
            s.send(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")

    opened_at = time.monotonic()
    print(f"opened {len(conns)} in {opened_at - start:.1f} s", flush=True)

    for s in conns:
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    next_line = time.monotonic() + 1.0
    line = 0
    deadline = opened_at + args.limit
    while closed < len(conns) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except (ConnectionResetError, ssl.SSLError, OSError):
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                closed += 1
        if args.mode == "trickle" and time.monotonic() >= next_line:
            line += 1
            for key in list(sel.get_map().values()):
                try:
                    key.fileobj.send(f"X-Trickle-{line}: {line}\r\n".encode())
                except OSError:
                    pass
            next_line += 1.0
    print(f"closed {closed} of {len(conns)} after {time.monotonic() - opened_at:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
