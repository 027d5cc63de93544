#!/usr/bin/env python3
"""Clients and a server for tcpsteer-proxy's fault tests (tests/e2e/proxy_faults_test.sh).

hold PORT N SECONDS        open up to N connections at once, hold them, then close them all
pause PORT                 send "a", wait, send "b" (no half-close): the answer must be "egress1\\nab"
halfclose PORT             send "a" then half-close: the answer must be "egress1\\na" then EOF
reset PORT MIB             send MIB MiB without reading the answer, then reset the connection
slow-admin PORT            send half a request line to the admin port; print seconds until closed
burst PORT N               N connections at once, 4 KiB each way through an echo upstream
silent-server PORT         accept connections and never read from them
echo-server PORT           say "egress1\n", then echo; many connections at once (asyncio)
"""
import asyncio
import socket
import struct
import sys
import threading
import time


def connect(port, source="127.0.0.10", timeout=10):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def read_all(s, limit=1 << 20):
    data = b""
    while len(data) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def hold(port, n, seconds):
    held = []
    for _ in range(n):
        try:
            held.append(connect(port, timeout=2))
        except OSError:
            break
    time.sleep(seconds)
    for s in held:
        s.close()
    print(len(held))


def pause(port):
    with connect(port, timeout=5) as s:
        s.sendall(b"a")
        time.sleep(0.3)
        s.sendall(b"b")
        data = b""
        deadline = time.time() + 3
        while data != b"egress1\nab" and time.time() < deadline:
            chunk = s.recv(100)
            if not chunk:
                break
            data += chunk
        print(repr(data))


def halfclose(port):
    with connect(port, timeout=5) as s:
        s.sendall(b"a")
        s.shutdown(socket.SHUT_WR)
        print(repr(read_all(s)))


def reset(port, mib):
    s = connect(port, source="127.0.0.11")
    s.setblocking(False)
    sent, block = 0, b"x" * 65536
    deadline = time.time() + 5
    blocked_since = None
    while sent < mib << 20 and time.time() < deadline:
        try:
            sent += s.send(block)
            blocked_since = None
        except BlockingIOError:
            # Every buffer on the way is full: the upstream is not reading. Reset now.
            blocked_since = blocked_since or time.time()
            if time.time() - blocked_since > 0.3:
                break
            time.sleep(0.01)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # RST
    print(sent)


def slow_admin(port):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /rea")
        started = time.time()
        try:
            while s.recv(100):
                pass
        except OSError:
            pass
        print(round(time.time() - started, 1))


def burst(port, n):
    ok = []
    lock = threading.Lock()

    def one(i):
        try:
            with connect(port, source="127.0.0.%d" % (10 + 2 * (i % 4)), timeout=30) as s:
                s.sendall(b"y" * 4096)
                s.shutdown(socket.SHUT_WR)
                if len(read_all(s)) == 4096 + len("egress1\n"):
                    with lock:
                        ok.append(i)
        except OSError:
            pass

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(len(ok))


def silent_server(port):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(64)
    held = []
    while True:
        held.append(server.accept()[0])


def echo_server(port):
    async def serve(reader, writer):
        writer.write(b"egress1\n")
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=4096, reuse_address=True)
        await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__":
    cmd, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    {"hold": hold, "pause": pause, "halfclose": halfclose, "reset": reset, "slow-admin": slow_admin,
     "burst": burst, "silent-server": silent_server, "echo-server": echo_server}[cmd](*args)
