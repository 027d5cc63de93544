#!/usr/bin/env python3
"""TLS load for bench/egress_path_bench.sh: new connections per second or MB/s to a name served at
an address of its own (the way curl --connect-to dials), verifying the server's certificate.

  tls_load.py connections HOST ADDRESS PORT CAFILE SECONDS PROCESSES
      each process opens TLS connections (SNI HOST), sends one GET and reads the answer, for
      SECONDS; prints connections/s over all processes
  tls_load.py bytes HOST ADDRESS PORT CAFILE PATH
      one connection, GET PATH, reads the whole body; prints MB/s
"""
import multiprocessing
import socket
import ssl
import sys
import time


def context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)  # verifies the chain and the name
    return ctx


def one_connection(ctx, host, address, port):
    with socket.create_connection((address, port)) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            while tls.recv(65536):
                pass


def worker(args):
    host, address, port, cafile, seconds = args
    ctx = context(cafile)
    done = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        one_connection(ctx, host, address, port)
        done += 1
    return done


def main():
    mode = sys.argv[1]
    host, address, port, cafile = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    if mode == "connections":
        seconds, processes = float(sys.argv[6]), int(sys.argv[7])
        with multiprocessing.Pool(processes) as pool:
            counts = pool.map(worker, [(host, address, port, cafile, seconds)] * processes)
        print(f"{sum(counts) / seconds:.0f}")
    elif mode == "bytes":
        path = sys.argv[6]
        ctx = context(cafile)
        with socket.create_connection((address, port)) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                started = time.monotonic()
                tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                total = 0
                while True:
                    chunk = tls.recv(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                elapsed = time.monotonic() - started
        print(f"{total / elapsed / 1e6:.0f} {total}")
    else:
        sys.exit("mode is connections or bytes")


if __name__ == "__main__":
    main()
