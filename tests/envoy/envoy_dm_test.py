"""libtcpsteer_dm.so, the dynamic-module build of tcpsteer, in real Envoy beside tcpsteer.wasm.
Usage: envoy_dm_test.py MODULE DM_DIR

- The .so exports exactly the ABI's hooks (nm -D), and the pinned Envoy reports its ABI version as
  matched.
- For each configuration (the presets, rules, SNI, destination, fallback lists, spreading, dry-run,
  workload rules) two Envoys, one running the wasm module and one the dynamic module, get the same
  connections: each connection reaches the same upstream and records the same decision
  (%FILTER_STATE(wasm.tcpsteer:PLAIN)% in tcp_proxy's access log), and the decision lines and
  counters are the same.
- Every invalid configuration is refused at load by both, with the same line.
- The workload identity comes from the node metadata for the wasm module and from istio-proxy's
  environment (POD_NAMESPACE, ISTIO_META_WORKLOAD_NAME, SERVICE_ACCOUNT, the podinfo labels file)
  for the dynamic module."""

import json
import os
import re
import subprocess
import sys
import time

from envoy_harness import (Checks, EchoUpstream, Envoy, access_lines, client_hello, connect,
                           dynamic_module_filter,
                           envoy_binary, read_line, scratch, static_cluster, tcp_proxy,
                           tls_inspector, wasm_filter)

module, dm_dir = sys.argv[1:3]
so = os.path.join(dm_dir, "libtcpsteer_dm.so")
checks = Checks("envoy_dm")
check = checks.check

HOOKS = {"envoy_dynamic_module_on_program_init",
         "envoy_dynamic_module_on_network_filter_config_new",
         "envoy_dynamic_module_on_network_filter_config_destroy",
         "envoy_dynamic_module_on_network_filter_new",
         "envoy_dynamic_module_on_network_filter_new_connection",
         "envoy_dynamic_module_on_network_filter_read",
         "envoy_dynamic_module_on_network_filter_write",
         "envoy_dynamic_module_on_network_filter_event",
         "envoy_dynamic_module_on_network_filter_destroy"}
exported = set(subprocess.run(["nm", "-D", "--defined-only", "--format=just-symbols", so],
                              capture_output=True, text=True).stdout.split())
check("libtcpsteer_dm.so exports exactly the ABI's network-filter hooks", exported == HOOKS,
      f"extra {sorted(exported - HOOKS)}, missing {sorted(HOOKS - exported)}")
needed = set(re.findall(r"\b(envoy_dynamic_module_callback_\w+)\b", subprocess.run(
    ["nm", "-D", "--undefined-only", so], capture_output=True, text=True).stdout))
provided = set(re.findall(r" T (envoy_dynamic_module_callback_\w+)\b", subprocess.run(
    ["nm", "-D", "--defined-only", envoy_binary()], capture_output=True, text=True).stdout))
check("every callback the .so calls is one the pinned Envoy exports (RTLD_NOW resolves them)",
      needed and needed <= provided, f"missing in Envoy: {sorted(needed - provided)}")

DECISION_LOG = "[access] %DOWNSTREAM_REMOTE_ADDRESS% %UPSTREAM_CLUSTER% %FILTER_STATE(wasm.tcpsteer:PLAIN)%\n"
METADATA = {"NAMESPACE": "billing", "WORKLOAD_NAME": "ledger", "SERVICE_ACCOUNT": "ledger",
            "LABELS": {"app": "ledger"}}
labels_file = os.path.join(scratch("podinfo"), "labels")
with open(labels_file, "w") as out:
    out.write('app="ledger"\npod-template-hash="abc"\n')
ISTIO_ENV = {"POD_NAMESPACE": "billing", "ISTIO_META_WORKLOAD_NAME": "ledger",
             "SERVICE_ACCOUNT": "ledger", "TCPSTEER_LABELS_FILE": labels_file}

names = ("egress1", "egress2", "audit", "tcpsteer-failover|egress1+egress2",
         "tcpsteer-failover|egress2+egress1")
upstreams = {name: EchoUpstream(name) for name in names}
clusters = [static_cluster(n, u.port) for n, u in upstreams.items()]


def start(kind, configuration, name, sni_listener=False, env=None):
    access_log = os.path.join(scratch("access"), "access.log")
    proxy = tcp_proxy("egress1", access_log=access_log)
    proxy["typed_config"]["access_log"][0]["typed_config"]["log_format"] = {
        "text_format_source": {"inline_string": DECISION_LOG}}
    plugin = wasm_filter(module, configuration) if kind == "wasm" else dynamic_module_filter(configuration)
    listener = {"name": "main", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [plugin, proxy]}]}
    if sni_listener:
        listener["listener_filters"] = [tls_inspector()]
    envoy = Envoy({"node": {"id": name, "cluster": "tcpsteer-test", "metadata": METADATA},
                   "static_resources": {"listeners": [listener], "clusters": clusters}},
                  name=name, env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": dm_dir, **ISTIO_ENV, **(env or {})},
                  component_log_level="wasm:debug,dynamic_modules:debug")
    envoy.access_log = access_log
    checks.envoys.append(envoy)
    return envoy


def reach(port, source, sni):
    try:
        with connect(port, source) as client:
            client.sendall(client_hello(sni) if sni else b"plain\n")
            return read_line(client)
    except OSError as error:
        return f"error: {error}"


def decisions(envoy, count):
    """"source-ip cluster decision" per connection: the port differs run to run, and two workers
    flush their lines in either order, so lines are compared as a sorted list."""
    return sorted(re.sub(r"^\[access\] ([^ ]+):\d+ ", r"\1 ", line.strip())
                  for line in access_lines(envoy.access_log, count))


def decision_lines(envoy):
    """The filter's per-connection lines, without addresses' ports (they differ run to run)."""
    return [re.sub(r":\d+ ", " ", line.split("[TCP WASM] ", 1)[1])
            for line in envoy.log().splitlines() if "[TCP WASM] new connection" in line]


CONFIGS = {
    "standalone": "standalone",
    "rules": json.dumps({
        "targets": ["egress1", "egress2", "audit"],
        "rules": [{"source_cidr": "127.0.0.16/30", "target": "audit"},
                  {"last_octet": [20, 29], "target": 1}]}),
    "sni-destination-fallback": json.dumps({
        "preset": "standalone",
        "rules": [{"name": "github", "sni": ["github.com", "*.github.com"], "target": ["egress2", "egress1"]},
                  {"name": "local", "destination_cidr": "127.0.0.0/8", "destination_except": "127.0.0.2/32",
                   "sni": "*.example.com", "target": ["egress1", "egress2"]}]}),
    "workload-spread": json.dumps({
        "targets": ["egress1", "egress2", "audit"],
        "rules": [{"name": "ledger", "namespace": "billing", "labels": {"app": "ledger"},
                   "sni": "*.bank.example", "target": "audit"},
                  {"name": "shop", "namespace": "shop", "target": "audit"},
                  {"name": "spread", "spread": {"by": "source_ip", "targets": {"egress1": 1, "egress2": 2}}}]}),
    "dry-run": json.dumps({"preset": "standalone", "mode": "dry-run",
                           "rules": [{"name": "all", "target": 1}]}),
}
CONNECTIONS = [(f"127.0.0.{octet}", sni) for octet in range(10, 40, 3)
               for sni in (None, "api.github.com", "www.example.com", "pay.bank.example")]

for label, configuration in CONFIGS.items():
    pair = {kind: start(kind, configuration, f"{kind}-{label}", sni_listener=True) for kind in ("wasm", "dm")}
    for envoy in pair.values():
        envoy.start()
    reached = {kind: [reach(envoy.listener_ports()["main"], source, sni) for source, sni in CONNECTIONS]
               for kind, envoy in pair.items()}
    recorded = {kind: decisions(envoy, len(CONNECTIONS)) for kind, envoy in pair.items()}
    check(f"{label}: both modules send each of {len(CONNECTIONS)} connections to the same upstream",
          reached["wasm"] == reached["dm"] and not any(r.startswith("error") for r in reached["wasm"]),
          f"wasm {reached['wasm'][:6]} dm {reached['dm'][:6]}")
    check(f"{label}: both record the same decision for every connection",
          len(recorded["wasm"]) == len(CONNECTIONS) and recorded["wasm"] == recorded["dm"],
          f"wasm {recorded['wasm'][:4]} dm {recorded['dm'][:4]}")
    lines = {kind: decision_lines(envoy) for kind, envoy in pair.items()}
    check(f"{label}: the same decision lines", lines["wasm"] and sorted(lines["wasm"]) == sorted(lines["dm"]),
          f"wasm {lines['wasm'][:2]} dm {lines['dm'][:2]}")
    counters = {kind: {name.split(".", 1)[1]: value for name, value in
                       envoy.counters(r"^(wasmcustom|dynamicmodulescustom)\.tcpsteer\.").items()}
                for kind, envoy in pair.items()}
    check(f"{label}: the same counters", counters["wasm"] and counters["wasm"] == counters["dm"],
          f"wasm {counters['wasm']} dm {counters['dm']}")
    if label == "standalone":
        check("Envoy reports the dynamic module's ABI version as matched",
              "Dynamic module ABI version v0.2.0 matched." in pair["dm"].log(), pair["dm"].log()[-500:])
    for envoy in pair.values():
        envoy.stop()

# Invalid configurations: refused by both at load, with the same line.
INVALID = ['{"targets": []}', '{"rules": [{"source_cidr": "10.1.0.0/8", "target": 0}]}',
           '{"rules": [{"labels": {"tier": "x"}, "namespace": "billing", "target": 0, "bogus": 1}]}',
           '{"rules": [{"sni": "*", "target": 0}]}', "kubernetes"]
for number, configuration in enumerate(INVALID):
    refusals = {}
    for kind in ("wasm", "dm"):
        envoy = start(kind, configuration, f"{kind}-invalid-{number}")
        status, log = envoy.run_to_exit()
        line = next((l.split("[TCP WASM] ", 1)[1] for l in log.splitlines() if "[TCP WASM] invalid" in l), None)
        refusals[kind] = (status != 0, line)
    check(f"invalid configuration {number}: both refuse it at load with the same line",
          refusals["wasm"][0] and refusals["dm"][0] and refusals["wasm"][1]
          and refusals["wasm"][1] == refusals["dm"][1], f"{refusals}")

# A labels "file" that is a device or a FIFO is not read (it would never end, or block Envoy's main
# thread): the proxy has no labels, so a label rule is refused at once.
fifo = os.path.join(scratch("fifo"), "labels")
os.mkfifo(fifo)
for hostile in ("/dev/zero", fifo):
    envoy = start("dm", '{"rules": [{"labels": {"app": "ledger"}, "target": 0}]}',
                  "dm-hostile-labels", env={"TCPSTEER_LABELS_FILE": hostile})
    started = time.time()
    status, log = envoy.run_to_exit(timeout=30)
    check(f"labels file {hostile}: not read; the label rule is refused at once",
          status != 0 and "this proxy has no node.metadata.LABELS" in log and time.time() - started < 20,
          log[-400:])

checks.finish()
