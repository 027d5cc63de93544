"""Real Envoy with tcp_proxy alone against Envoy with tcpsteer.wasm in front of it, same listener and
concurrency otherwise, in one run: new connections/s in a closed loop (wrk, one request per
connection, egress-server behind), Envoy's CPU time per connection (user + system from /proc),
latency p50/p99 (connect + request), bulk MB/s (256 MiB through Envoy), and Envoy's memory with and
without the filter (a V8 VM per worker). The filter runs twice: its decision line below Envoy's log
level (dropped) and written to Envoy's log. Minimal modules (bench/modules/*.wat) split the cost:
tcpsteer's exports with no host call at all (the VM and its transitions), the same with every
callback of a connection exported, plus the source.address read, plus the set_envoy_filter_state
call. Variants interleave A B C ... C B A; each figure is the
median of its runs. Goal: the filter adds <= 10 % CPU per connection with the line dropped and
<= 20 % with it written.
The dynamic module (libtcpsteer_dm.so, issue #24) runs the same way, line dropped and written; goal:
it adds <= 2 % CPU per connection (line dropped) and is at least 3x cheaper than the wasm module.
Usage: envoy_bench.py MODULE EGRESS_SERVER [DM_DIR]   (BENCH_SECONDS, default 5)"""

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "envoy"))
from envoy_harness import (Envoy, dynamic_module_filter, listener, remove_scratch,  # noqa: E402
                           scratch, static_cluster, tcp_proxy, wasm_filter)

module, egress_server = sys.argv[1:3]
dm_dir = sys.argv[3] if len(sys.argv) > 3 else None
seconds = int(os.environ.get("BENCH_SECONDS", "5"))
TICKS = os.sysconf("SC_CLK_TCK")


def start_egress_server():
    process = subprocess.Popen([egress_server, "--name", "egress1", "--listen", "127.0.0.1:0",
                                "--threads", "1"], stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        event = json.loads(line)
        if event.get("event") == "listening":
            port = int(event["address"].rsplit(":", 1)[1])
            break
    # Its log lines go nowhere from here on (read and dropped, so the pipe never fills).
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process, port


class Sink:
    """Reads and drops everything: the far end of the bulk transfer."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(connection,), daemon=True).start()

    @staticmethod
    def _drain(connection):
        buffer = bytearray(1 << 20)
        while connection.recv_into(buffer):
            pass
        connection.close()


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# name -> (module or None, Envoy's wasm log level, measure bulk MB/s)
MINIMAL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "modules")
VARIANTS = {
    "tcp_proxy alone": (None, "wasm:warning", True),
    "no-op, every callback": ("noop_every_callback", "wasm:warning", False),
    "no-op module": ("noop", "wasm:warning", False),
    "+ source.address read": ("read_source", "wasm:warning", False),
    "+ set_envoy_filter_state": ("set_cluster", "wasm:warning", False),
    "tcpsteer, line dropped": (module, "wasm:warning", True),
    "tcpsteer, line written": (module, "wasm:info", True),
}
if dm_dir:
    VARIANTS["tcpsteer_dm, line dropped"] = ("dm", "dynamic_modules:warning", True)
    VARIANTS["tcpsteer_dm, line written"] = ("dm", "dynamic_modules:info", True)


def compiled(name, into):
    """bench/modules/NAME.wat compiled by wat2wasm (wabt, installed by make deps)."""
    out = os.path.join(into, name + ".wasm")
    subprocess.run(["wat2wasm", os.path.join(MINIMAL, name + ".wat"), "-o", out], check=True)
    return out


def envoy_for(variant, http_port, sink_port, modules):
    wasm, level, _ = VARIANTS[variant]
    wasm = modules.get(wasm, wasm)

    def chain(cluster, stat_prefix):  # the filter (when there is one) picks the listener's cluster
        filters = [tcp_proxy(cluster, stat_prefix)]
        if wasm == "dm":
            filters.insert(0, dynamic_module_filter(json.dumps({"targets": [cluster]})))
        elif wasm is not None and (cluster == "egress1" or wasm == module):
            filters.insert(0, wasm_filter(wasm, json.dumps({"targets": [cluster]})))
        return filters

    envoy = Envoy({"static_resources": {
        "listeners": [listener("http", chain("egress1", "bench")),
                      listener("bulk", chain("sink", "bulk"))],
        "clusters": [static_cluster("egress1", http_port), static_cluster("sink", sink_port)]}},
        name="bench", concurrency=1, component_log_level=level,
        env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": dm_dir} if dm_dir else None)
    return envoy.start()


def wrk_new_connections(port):
    out = subprocess.run(["wrk", "-t1", "-c20", f"-d{seconds}s", "--latency", "-H",
                          "Connection: close", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(name):
        match = re.search(rf"^\s+{name}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rate, percentile("50"), percentile("99")


def bulk_mb_per_s(port, size=256 << 20):
    block = b"x" * (1 << 20)
    with socket.create_connection(("127.0.0.1", port)) as client:
        started = time.time()
        for _ in range(size // len(block)):
            client.sendall(block)
        client.shutdown(socket.SHUT_WR)
        client.recv(1)  # until the sink closes: every byte went through
        return size / (time.time() - started) / 1e6


def measure(variant, http_port, sink_port, modules):
    envoy = envoy_for(variant, http_port, sink_port, modules)
    pid = envoy.process.pid
    ports = envoy.listener_ports()
    idle_rss = rss_mib(pid)
    total = "tcp.bench.downstream_cx_total"  # tcp_proxy's own count on the http listener
    before_cx = envoy.counters(r"^tcp\.bench\.downstream_cx_total$").get(total, 0)
    before_cpu = cpu_seconds(pid)
    rate, p50, p99 = wrk_new_connections(ports["http"])
    cpu = cpu_seconds(pid) - before_cpu
    connections = envoy.counters(r"^tcp\.bench\.downstream_cx_total$").get(total, 0) - before_cx
    if connections <= 0:
        raise RuntimeError(f"{variant}: no connections counted in {total}")
    mbps = bulk_mb_per_s(ports["bulk"]) if VARIANTS[variant][2] else float("nan")
    envoy.stop()
    return {"rate": rate, "p50": p50, "p99": p99, "cpu_us": cpu / connections * 1e6,
            "mbps": mbps, "rss": idle_rss}


def main():
    server, http_port = start_egress_server()
    sink = Sink()
    modules_dir = scratch("modules")
    modules = {name: compiled(name, modules_dir)
               for name in ("noop_every_callback", "noop", "read_source", "set_cluster")}
    variants = list(VARIANTS)
    runs = {v: [] for v in variants}
    for variant in variants + variants[::-1]:
        runs[variant].append(measure(variant, http_port, sink.port, modules))
    server.terminate()
    remove_scratch()
    envoy_version = subprocess.run(["bash", os.path.join(os.path.dirname(__file__), "..", "scripts",
                                                         "envoy.sh"), "--describe"],
                                   capture_output=True, text=True).stdout.strip()
    print(f"tcpsteer.wasm in real Envoy ({envoy_version}), --concurrency 1, {seconds} s per run, "
          "runs A B .. B A, medians; MB/s where the variant routes the bulk listener itself")
    print(f"{'':26}{'new conn/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/conn':>13}{'MB/s':>9}"
          f"{'RSS MiB':>9}{'CPU vs alone':>14}")
    base = statistics.median(r["cpu_us"] for r in runs["tcp_proxy alone"])
    for variant in variants:
        m = {k: statistics.median(r[k] for r in runs[variant]) for k in runs[variant][0]}
        ratio = m["cpu_us"] / base
        print(f"{variant:26}{m['rate']:>12.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}{m['cpu_us']:>13.1f}"
              f"{m['mbps']:>9.0f}{m['rss']:>9.1f}{ratio:>13.2f}x")
        print(f"{'':4}runs: conn/s " + " ".join(f"{r['rate']:.0f}" for r in runs[variant]) +
              "; CPU us/conn " + " ".join(f"{r['cpu_us']:.1f}" for r in runs[variant]))
    dropped = statistics.median(r["cpu_us"] for r in runs["tcpsteer, line dropped"]) / base - 1
    written = statistics.median(r["cpu_us"] for r in runs["tcpsteer, line written"]) / base - 1
    print(f"filter's added CPU per connection: {dropped * 100:+.1f} % with the line dropped "
          f"(goal <= +10 %), {written * 100:+.1f} % with it written (goal <= +20 %)")
    if dm_dir:
        dm = statistics.median(r["cpu_us"] for r in runs["tcpsteer_dm, line dropped"]) / base - 1
        dm_written = statistics.median(r["cpu_us"] for r in runs["tcpsteer_dm, line written"]) / base - 1
        cheaper = dropped / dm if dm > 0 else float("inf")
        print(f"dynamic module's added CPU per connection: {dm * 100:+.1f} % with the line dropped "
              f"(goal <= +2 %), {dm_written * 100:+.1f} % written; the wasm module adds "
              f"{cheaper:.1f}x as much (goal >= 3x)")


main()
