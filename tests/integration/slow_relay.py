#!/usr/bin/env python3
"""A TCP relay that slows what the server sends to a bounded rate, so a test can interrupt a
transfer in the middle (mirror_test.sh).

  slow_relay.py LISTEN_PORT TARGET_PORT BYTES_PER_SECOND

Listens on 127.0.0.1:LISTEN_PORT, relays every connection to 127.0.0.1:TARGET_PORT; the
client's bytes go through at once, the server's at most BYTES_PER_SECOND per connection.
Prints "listening" once it accepts connections. Runs until killed.
"""
import socket
import sys
import threading
import time


def pump(src, dst, rate):
    try:
        while True:
            data = src.recv(16384)
            if not data:
                break
            dst.sendall(data)
            if rate:
                time.sleep(len(data) / rate)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    listen_port, target_port, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(64)
    print("listening", flush=True)
    while True:
        client, _ = srv.accept()
        server = socket.create_connection(("127.0.0.1", target_port))
        threading.Thread(target=pump, args=(client, server, 0), daemon=True).start()
        threading.Thread(target=pump, args=(server, client, rate), daemon=True).start()


if __name__ == "__main__":
    main()
