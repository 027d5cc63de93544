#!/usr/bin/env python3
"""Real-socket clients for the proxy e2e tests.

parallel PORT N SOURCES...   N connections spread over the source addresses, all at once; each sends
                              64 KiB of random bytes, half-closes, and checks that the answer is
                              "<egress>\\n" + the same bytes (sha256). Prints "<source> <egress>" lines.
large PORT SOURCE MIB         one connection sending MIB MiB while reading the echo; checks sha256.
"""
import hashlib
import os
import socket
import sys
import threading


def exchange(port, source, payload, results, index):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0)) as s:
            received = bytearray()

            def reader():
                while True:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        return
                    received.extend(chunk)

            t = threading.Thread(target=reader)
            t.start()
            view = memoryview(payload)
            for offset in range(0, len(view), 1 << 16):
                s.sendall(view[offset:offset + (1 << 16)])
            s.shutdown(socket.SHUT_WR)
            t.join()
        name, _, body = bytes(received).partition(b"\n")
        ok = hashlib.sha256(body).digest() == hashlib.sha256(payload).digest()
        results[index] = (source, name.decode(errors="replace"), ok, len(body))
    except OSError as e:
        results[index] = (source, "error:" + str(e), False, 0)


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "parallel":
        n, sources = int(sys.argv[3]), sys.argv[4:]
        results = [None] * n
        threads = [threading.Thread(target=exchange, args=(port, sources[i % len(sources)], os.urandom(65536), results, i))
                   for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        source, mib = sys.argv[3], int(sys.argv[4])
        results = [None]
        exchange(port, source, os.urandom(mib << 20), results, 0)
    bad = 0
    for source, egress, ok, size in results:
        print(f"{source} {egress} {'intact' if ok else 'CORRUPT'} {size}")
        bad += not ok
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
