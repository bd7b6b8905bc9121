#!/usr/bin/env python3
"""A TCP relay that behaves like one shared WAN link, for the proxy suite's link variant.

    python3 bench/harness/link.py --listen-port P --target-port Q --mbit M

It listens on 127.0.0.1:P and forwards every connection to 127.0.0.1:Q. Each direction of the
link has a fixed rate of M Mbit/s (10^6 bit/s) that ALL connections share, as the pipes of one
site's uplink do: 33 parallel fetches get a 33rd of it each, not the full rate each. A pull-
through cache exists because of such a link, and the harness puts one between a proxy and its
upstream to measure the cache where the upstream, not loopback, is the bottleneck.

How the rate is kept: each direction is a FIFO of transmission slots in time. A chunk of n bytes
(at most 64 KiB, as read from the socket) waits until the link is free, occupies it for
n * 8 / rate seconds, and is written on once its last bit "arrived". A gap of up to 50 ms
between slots (mostly a timer that woke late) is made up: the next slot starts where the last
one ended. After a longer pause the link starts afresh, so it saves nothing up and a transfer
takes size * 8 / rate however it starts. Chunks of different connections take turns in the
order they were read, which shares the link about evenly between busy connections. No latency
is added beyond the transmission time.

Memory is bounded: one chunk in flight per connection and direction, and a connection is not
read from again until its previous chunk was written and drained (TCP flow control then slows
the sender). When one side closes, the other side gets EOF (half-close) and the rest still
flows; when both are done, or on an error, both sockets are closed.

On SIGTERM or SIGINT it prints the bytes it carried each way and exits. Python stdlib only.
"""

import argparse
import asyncio
import signal
import socket
import sys
import time

CHUNK = 64 * 1024
# Timers wake a little late, and each wake-up would otherwise push every later slot back by
# that much (a few per cent at these chunk sizes). A slot that follows the previous one within
# SLACK therefore starts right where that one ended; after a longer idle spell it starts now,
# so an idle link saves nothing up.
SLACK = 0.050


class Direction:
    """One direction of the link: a rate shared by every connection, as FIFO time slots."""

    def __init__(self, bytes_per_s):
        self.bytes_per_s = bytes_per_s
        self.free_at = 0.0  # monotonic time at which the link finishes the last slot handed out
        self.carried = 0

    async def transmit(self, n):
        """Waits until n bytes have crossed the link (behind everything queued before them)."""
        self.carried += n
        if self.bytes_per_s <= 0:
            return
        now = time.monotonic()
        start = self.free_at if now - self.free_at <= SLACK else now
        self.free_at = start + n / self.bytes_per_s
        delay = self.free_at - now
        if delay > 0:
            await asyncio.sleep(delay)


class Link:
    def __init__(self, target_port, mbit):
        rate = mbit * 1e6 / 8
        self.target_port = target_port
        self.down = Direction(rate)  # upstream -> client
        self.up = Direction(rate)    # client -> upstream
        self.connections = 0
        self.active = 0

    async def handle(self, c_reader, c_writer):
        self.connections += 1
        self.active += 1
        u_writer = None
        pumps = []
        try:
            try:
                u_reader, u_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError as e:
                print(f"link: cannot reach 127.0.0.1:{self.target_port}: {e}", flush=True)
                return
            for w in (c_writer, u_writer):
                sock = w.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Either pump failing (a reset) ends the connection; a clean EOF only ends its own
            # direction, so a response still flows after the client half-closed.
            pumps = [asyncio.ensure_future(self._pump(c_reader, u_writer, self.up)),
                     asyncio.ensure_future(self._pump(u_reader, c_writer, self.down))]
            pending = set(pumps)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                failed = [t for t in done if t.exception() is not None]  # retrieves them all
                if failed:
                    for t in pending:
                        t.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)
                    break
        except asyncio.CancelledError:
            # Shutting down with the connection open. Ending normally rather than cancelled
            # keeps asyncio's stream callback from logging the cancellation as an error.
            for t in pumps:
                t.cancel()
        finally:
            self.active -= 1
            for w in (c_writer, u_writer):
                if w is not None:
                    w.close()
            for w in (c_writer, u_writer):
                if w is not None:
                    try:
                        await w.wait_closed()
                    except (OSError, asyncio.CancelledError):
                        pass

    @staticmethod
    async def _pump(reader, writer, direction):
        while True:
            data = await reader.read(CHUNK)
            if not data:
                if writer.can_write_eof():
                    try:
                        writer.write_eof()
                    except OSError:
                        pass
                return
            await direction.transmit(len(data))
            writer.write(data)
            await writer.drain()


async def serve(args):
    link = Link(args.target_port, args.mbit)
    server = await asyncio.start_server(link.handle, "127.0.0.1", args.listen_port,
                                        limit=CHUNK, reuse_address=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or
                                                      stop.set_result(None))
    print(f"link: 127.0.0.1:{args.listen_port} -> 127.0.0.1:{args.target_port} at "
          f"{args.mbit:g} Mbit/s each way, shared by all connections", flush=True)
    # Not `async with server`: on Python 3.12 its close waits for every open connection, and
    # the proxies keep theirs open. Open connections are cancelled by asyncio.run's exit.
    await stop
    server.close()
    print(f"link: stopped after {link.connections} connections ({link.active} open); carried "
          f"{link.down.carried} bytes to clients, {link.up.carried} bytes to the target",
          flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen-port", type=int, required=True)
    p.add_argument("--target-port", type=int, required=True)
    p.add_argument("--mbit", type=float, required=True,
                   help="the link's rate in Mbit/s each way, shared by all connections "
                        "(0: no limit)")
    args = p.parse_args()
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
