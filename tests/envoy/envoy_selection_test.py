"""Egress selection (issue #23) in real Envoy, every port the OS's.
Usage: envoy_selection_test.py MODULE TCPSTEER_HOST TCPSTEER [DM_DIR]
With DM_DIR every Envoy of the test runs libtcpsteer_dm.so (the dynamic module, from DM_DIR)
instead of tcpsteer.wasm, its workload identity from istio-proxy's environment and labels file.

- Workload rules read the proxy's node metadata (NAMESPACE, WORKLOAD_NAME, SERVICE_ACCOUNT, LABELS
  from Envoy's bootstrap node): two Envoys with the same configuration but different identities
  route the same connection differently; rules for other workloads are not tried (no counter).
- SNI rules through a listener with a TLS inspector (the client's ClientHello names the host),
  destination CIDR and port rules (listeners on 127.0.0.1 and 127.0.0.2), stable spreading by
  source IP (each source stays on its target).
- Every decision in the tcp_proxy access log through %FILTER_STATE(wasm.tcpsteer:PLAIN)%,
  dry-run included; per-rule counters.
- A label selector on a proxy without LABELS is refused by Envoy at load with the filter's line; a
  shadowed rule is a warning line at configure time.
- Failover through an aggregate cluster with active health checks: gateway 1 dies mid-run, new
  connections from its sources reach gateway 2 within the stated bound and none fails after
  detection; the connections open on gateway 1 are closed; gateway 1 returns and new connections
  go back to it.
- The host emulator (tcpsteer-host replay) and `tcpsteer explain` give the same decision as Envoy for
  every connection, and explain refuses an invalid configuration with Envoy's line."""

import json
import os
import socket
import subprocess
import sys
import time

from envoy_harness import (Checks, EchoUpstream, Envoy, access_lines, client_hello, connect,
                           dynamic_module_filter, read_line, scratch, static_cluster, tcp_proxy,
                           tls_inspector, wasm_filter)

module, host_tool, explain_tool = sys.argv[1:4]
dm_dir = sys.argv[4] if len(sys.argv) > 4 else None
STATS = "dynamicmodulescustom" if dm_dir else "wasmcustom"
LOGGER = "dynamic_modules" if dm_dir else "wasm"
checks = Checks("envoy_selection")
check = checks.check

DECISION_LOG = ("[access] src=%DOWNSTREAM_REMOTE_ADDRESS% dst=%DOWNSTREAM_LOCAL_ADDRESS% "
                "sni=%REQUESTED_SERVER_NAME% cluster=%UPSTREAM_CLUSTER% "
                "decision=%FILTER_STATE(wasm.tcpsteer:PLAIN)%\n")

BILLING = {"NAMESPACE": "billing", "WORKLOAD_NAME": "ledger", "SERVICE_ACCOUNT": "ledger",
           "LABELS": {"app": "ledger", "tier": "web"}}
SHOP = {"NAMESPACE": "shop", "WORKLOAD_NAME": "cart", "SERVICE_ACCOUNT": "cart",
        "LABELS": {"app": "cart", "tier": "web"}}

upstreams = {name: EchoUpstream(name) for name in ("egress1", "egress2", "audit")}
clusters = [static_cluster(name, upstream.port) for name, upstream in upstreams.items()]

CONFIG = json.dumps({
    "targets": ["egress1", "egress2", "audit"],
    "rules": [
        {"name": "shop", "namespace": "shop", "sni": "*.example.com", "target": "egress2"},
        {"name": "ledger-bank", "namespace": "billing", "labels": {"app": "ledger"},
         "sni": "*.bank.example", "target": "audit"},
        {"name": "second-ip", "destination_cidr": "127.0.0.2/32", "ports": "1-65535",
         "target": "audit"},
        {"name": "github", "sni": ["github.com", "*.github.com"], "target": "egress2"},
        {"name": "ledger-sa", "service_account": "ledger", "sni": "*.example.com",
         "target": "egress1"},
        {"name": "spread", "sni": "spread.test",
         "spread": {"by": "source_ip", "targets": {"egress1": 1, "egress2": 1}}},
    ]})


def plugin_filter(configuration):
    return dynamic_module_filter(configuration) if dm_dir else wasm_filter(module, configuration)


def identity_env(name, metadata):
    """The dynamic module's view of the node metadata: istio-proxy's variables and labels file."""
    if not dm_dir:
        return None
    env = {"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": dm_dir}
    if metadata:
        labels = os.path.join(scratch(f"podinfo-{name}"), "labels")
        with open(labels, "w") as out:
            out.write("".join(f'{k}="{v}"\n' for k, v in metadata.get("LABELS", {}).items()))
        env.update({"POD_NAMESPACE": metadata["NAMESPACE"], "ISTIO_META_WORKLOAD_NAME":
                    metadata["WORKLOAD_NAME"], "SERVICE_ACCOUNT": metadata["SERVICE_ACCOUNT"],
                    "TCPSTEER_LABELS_FILE": labels})
    else:
        env["TCPSTEER_LABELS_FILE"] = os.path.join(scratch("nolabels"), "absent")
    return env


def envoy_with(name, configuration, metadata, addresses=("127.0.0.1",), extra_clusters=(),
               default_cluster="egress1"):
    access_log = os.path.join(scratch("access"), "access.log")
    node = {"id": f"tcpsteer-{name}", "cluster": "tcpsteer-test"}
    if metadata is not None:
        node["metadata"] = metadata
    listeners = []
    for i, address in enumerate(addresses):
        listeners.append({
            "name": f"main{i}", "address": {"socket_address": {"address": address, "port_value": 0}},
            "listener_filters": [tls_inspector()],
            "filter_chains": [{"filters": [plugin_filter(configuration),
                                           tcp_proxy(default_cluster, access_log=access_log)]}]})
    envoy = Envoy({"node": node, "static_resources": {
        "listeners": listeners, "clusters": clusters + list(extra_clusters)}}, name=name,
        component_log_level=f"{LOGGER}:debug", env=identity_env(name, metadata))
    checks.envoys.append(envoy)
    envoy.access_log = access_log
    return envoy


def set_format(envoy):
    """The access log format of the README, on every listener's tcp_proxy."""
    with open(envoy.config_path) as source:
        config = json.load(source)
    for listener in config["static_resources"]["listeners"]:
        proxy = listener["filter_chains"][0]["filters"][-1]["typed_config"]
        proxy["access_log"][0]["typed_config"]["log_format"] = {
            "text_format_source": {"inline_string": DECISION_LOG}}
    with open(envoy.config_path, "w") as out:
        json.dump(config, out)


def upstream_for(port, source, sni=None, address="127.0.0.1"):
    """Connects from `source`, sends a ClientHello naming `sni` (when given) and returns the first
    line the upstream sends: its name."""
    try:
        with connect(port, source, host=address) as client:
            # The listener's TLS inspector waits for the client's first bytes: a ClientHello, or
            # anything else for a connection without SNI.
            client.sendall(client_hello(sni) if sni else b"plain text\n")
            return read_line(client)
    except OSError as error:
        return f"error: {error}"


def replay(configuration, metadata, source, destination, sni):
    """What the host emulator decides for one connection: the decision text it records."""
    args = [host_tool, "replay", module, "--config", configuration, "--log-level", "warn",
            "--conn", f"{source},{destination}"]
    if metadata is not None:
        args += ["--node-metadata", json.dumps(metadata)]
    if sni:
        args += ["--sni", sni]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    for line in out.splitlines():
        event = json.loads(line)
        if event["event"] == "connection":
            return event["filter_state"].get("wasm.tcpsteer", "")
    return f"no decision: {out[-300:]}"


# --- workload, SNI and destination rules, the access log, the counters ---------------------------
billing = envoy_with("billing", CONFIG, BILLING, addresses=("127.0.0.1", "127.0.0.2"))
set_format(billing)
billing.start()
shop = envoy_with("shop", CONFIG, SHOP)
set_format(shop)
shop.start()
ports = billing.listener_ports()
shop_port = shop.listener_ports()["main0"]

cases = [  # (envoy, port, address, source, sni, expected upstream, expected rule)
    (billing, ports["main0"], "127.0.0.1", "127.0.0.10", "pay.bank.example", "audit", "ledger-bank"),
    (billing, ports["main0"], "127.0.0.1", "127.0.0.10", "api.example.com", "egress1", "ledger-sa"),
    (billing, ports["main0"], "127.0.0.1", "127.0.0.10", "API.Example.COM", "egress1", "ledger-sa"),
    (billing, ports["main0"], "127.0.0.1", "127.0.0.10", "www.github.com", "egress2", "github"),
    # No rule: last octet modulo the three targets (10 -> egress2, 11 -> audit).
    (billing, ports["main0"], "127.0.0.1", "127.0.0.10", "other.test", "egress2", "default"),
    (billing, ports["main0"], "127.0.0.1", "127.0.0.11", None, "audit", "default"),
    (billing, ports["main1"], "127.0.0.2", "127.0.0.10", "api.example.com", "audit", "second-ip"),
    (shop, shop_port, "127.0.0.1", "127.0.0.10", "api.example.com", "egress2", "shop"),
    (shop, shop_port, "127.0.0.1", "127.0.0.10", "pay.bank.example", "egress2", "default"),
]
seen_by = {billing: 0, shop: 0}
for envoy, port, address, source, sni, expected, rule in cases:
    got = upstream_for(port, source, sni, address)
    seen_by[envoy] += 1
    check(f"{envoy.name}: {source} -> {address} sni={sni} reaches {expected} by rule {rule}",
          got == expected, f"reached {got!r}")
spread = {}
for octet in range(20, 60):
    source = f"127.0.0.{octet}"
    first = upstream_for(ports["main0"], source, "spread.test")
    again = upstream_for(ports["main0"], source, "spread.test")
    spread.setdefault(first, 0)
    spread[first] += 1
    seen_by[billing] += 2
    if first != again:
        break
check("spread by source IP: each source stays on its target, both targets used",
      first == again and set(spread) == {"egress1", "egress2"}, f"{spread}, {first} then {again}")

billing_lines = access_lines(billing.access_log, seen_by[billing])
shop_lines = access_lines(shop.access_log, seen_by[shop])
for envoy, lines, subset in ((billing, billing_lines, [c for c in cases if c[0] is billing]),
                             (shop, shop_lines, [c for c in cases if c[0] is shop])):
    # Two workers flush their access-log lines in either order: each connection's line is found by
    # its source, destination and SNI (which Envoy logs lowercased).
    for _, port, address, source, sni, expected, rule in subset:
        want = f"decision=target={expected} rule={rule}"
        mine = [l for l in lines if f"src={source}:" in l and f"dst={address}:{port} " in l
                and f"sni={sni.lower() if sni else '-'} " in l]
        check(f"{envoy.name} access log: {source} sni={sni} -> {want}",
              mine and all(want in l and f"cluster={expected}" in l for l in mine),
              "".join(mine) or "".join(lines[:4]))
check("the access log prints the SNI Envoy saw (%REQUESTED_SERVER_NAME%)",
      any("sni=pay.bank.example" in line for line in billing_lines), "".join(billing_lines[:3]))

counters = {name.replace(STATS, "wasmcustom", 1): value
            for name, value in billing.counters(rf"^{STATS}\.tcpsteer\.rule\.").items()}
check("per-rule counters count each rule's connections",
      counters.get("wasmcustom.tcpsteer.rule.ledger-bank") == 1
      and counters.get("wasmcustom.tcpsteer.rule.second-ip") == 1
      and counters.get("wasmcustom.tcpsteer.rule.github") == 1, json.dumps(counters))
check("a rule for another workload is never tried here (no counter)",
      "wasmcustom.tcpsteer.rule.shop" not in counters, json.dumps(counters))
check("the configured line names the rules that apply to this proxy",
      billing.wait_for_log("(for this proxy: ledger-bank,second-ip,github,ledger-sa,spread)"),
      "no configured line with the proxy's rules")

# The host emulator with the same metadata and SNI agrees with Envoy on every connection.
for envoy, port, address, source, sni, expected, rule in cases:
    metadata = BILLING if envoy is billing else SHOP
    recorded = replay(CONFIG, metadata, f"{source}:40000", f"{address}:{port}", sni)
    check(f"host emulator agrees: {envoy.name} {source} -> {address} sni={sni}",
          recorded == f"target={expected} rule={rule}", recorded)

# tcpsteer explain, given the proxy's metadata, says what Envoy did for every connection.
for envoy, port, address, source, sni, expected, rule in cases:
    metadata = BILLING if envoy is billing else SHOP
    config_file = os.path.join(scratch("explain"), "config.json")
    metadata_file = config_file + ".metadata"
    with open(config_file, "w") as out:
        out.write(CONFIG)
    with open(metadata_file, "w") as out:
        json.dump(metadata, out)
    connection = f"{source}:40000,{address}:{port}" + (f",{sni}" if sni else "")
    done = subprocess.run([explain_tool, "explain", "--config", config_file, "--metadata",
                           metadata_file, "--json", connection], capture_output=True, text=True)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    said = lines[-1] if lines else {}
    check(f"tcpsteer explain agrees: {envoy.name} {source} -> {address} sni={sni}",
          said.get("target") == expected and said.get("rule") == rule, done.stdout + done.stderr)

# --- dry-run records what would have happened ----------------------------------------------------
dry = envoy_with("dry", json.dumps({**json.loads(CONFIG), "mode": "dry-run"}), BILLING)
set_format(dry)
dry.start()
dry_port = dry.listener_ports()["main0"]
got = upstream_for(dry_port, "127.0.0.10", "pay.bank.example")
line = "".join(access_lines(dry.access_log, 1))
check("dry-run: the connection stays on tcp_proxy's cluster, the log says what would have been",
      got == "egress1" and "decision=target=audit rule=ledger-bank dry-run" in line, f"{got}; {line}")

# --- refused and warned configurations -----------------------------------------------------------
plain = envoy_with("plain", json.dumps({"rules": [{"labels": {"app": "x"}, "target": 0}]}), None)
status, log = plain.run_to_exit()
expected_line = ("invalid configuration at 'rules[0].labels': this proxy has no node.metadata.LABELS;"
                 " expected a proxy with Istio's node metadata (a sidecar or gateway), or no "
                 "workload conditions")
check("a label selector on a proxy without LABELS is refused at load with one clear line",
      status != 0 and expected_line in log, f"status {status}; {log[-600:]}")
config_file = os.path.join(scratch("explain"), "labels.json")
with open(config_file, "w") as out:
    out.write(json.dumps({"rules": [{"labels": {"app": "x"}, "target": 0}]}))
done = subprocess.run([explain_tool, "explain", "--config", config_file], capture_output=True,
                      text=True)
envoy_line = next(("[TCP WASM] " + l.split("[TCP WASM] ", 1)[1] for l in log.splitlines()
                   if "[TCP WASM] invalid" in l), None)
check("tcpsteer explain refuses it with the line Envoy logged, exit 1",
      done.returncode == 1 and envoy_line is not None and done.stdout.strip() == envoy_line,
      f"{done.returncode}: {done.stdout!r} vs Envoy {envoy_line!r}")
shadow = envoy_with("shadow", json.dumps({"preset": "standalone", "rules": [
    {"name": "all-443", "ports": 443, "target": 0},
    {"name": "api", "ports": 443, "sni": "api.example.com", "target": 1}]}), None)
shadow.start()
check("a shadowed rule is a warning line at configure time",
      shadow.wait_for_log(f"[warning][{LOGGER}]") and shadow.wait_for_log(
          "rules[1] (api) can never match: rules[0] (all-443) matches every connection it would"),
      shadow.log()[-800:])

# --- failover through an aggregate cluster -------------------------------------------------------
HEALTH = {"timeout": "0.25s", "interval": "0.25s", "no_traffic_interval": "0.25s",
          "unhealthy_threshold": 1, "healthy_threshold": 1, "tcp_health_check": {}}
# A refused connect ejects the gateway at once (tcp_proxy reports it as a local-origin failure), so
# tcp_proxy's next attempt already goes to gateway 2; the health check brings gateway 1 back.
OUTLIER = {"split_external_local_origin_errors": True, "consecutive_local_origin_failure": 1,
           "enforcing_consecutive_local_origin_failure": 100, "interval": "1s",
           "base_ejection_time": "1s", "max_ejection_percent": 100}
gateways = {name: EchoUpstream(name) for name in ("gw1", "gw2")}


def gateway_cluster(name):
    cluster = static_cluster(name, gateways[name].port)
    cluster["connect_timeout"] = "0.25s"
    cluster["health_checks"] = [HEALTH]
    cluster["outlier_detection"] = OUTLIER
    return cluster


AGGREGATE = "tcpsteer-failover|gw1+gw2"
failover_clusters = [gateway_cluster("gw1"), gateway_cluster("gw2"), {
    "name": AGGREGATE, "connect_timeout": "0.25s", "lb_policy": "CLUSTER_PROVIDED",
    "cluster_type": {"name": "envoy.clusters.aggregate", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig",
        "clusters": ["gw1", "gw2"]}}}]
FAILOVER = json.dumps({"targets": ["gw1", "gw2"], "rules": [
    {"name": "ha", "source_cidr": "127.0.0.0/8", "target": ["gw1", "gw2"]}]})
failover = envoy_with("failover", FAILOVER, None, extra_clusters=failover_clusters,
                      default_cluster="gw1")
with open(failover.config_path) as source:
    config = json.load(source)
config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][-1]["typed_config"][
    "max_connect_attempts"] = 3
with open(failover.config_path, "w") as out:
    json.dump(config, out)
failover.start()
failover_port = failover.listener_ports()["main0"]

before = [upstream_for(failover_port, "127.0.0.12") for _ in range(5)]
check("failover: with both gateways up, the fallback list goes to its first gateway",
      before == ["gw1"] * 5, f"{before}")
held = connect(failover_port, "127.0.0.12")
held.sendall(b"held\n")
check("failover: a connection held open on gateway 1", read_line(held) == "gw1")

gateways["gw1"].kill()
killed = time.time()
results = []  # (seconds after the kill, upstream or error)
while time.time() - killed < 3:
    results.append((time.time() - killed, upstream_for(failover_port, "127.0.0.12")))
    time.sleep(0.02)
first_gw2 = next((t for t, got in results if got == "gw2"), None)
after_detection = [got for t, got in results if first_gw2 is not None and t >= first_gw2]
check("failover: new connections reach gateway 2 within 1 s of gateway 1's death",
      first_gw2 is not None and first_gw2 < 1.0, f"first gw2 after {first_gw2}; {results[:8]}")
check("failover: none fails after detection",
      after_detection and all(got == "gw2" for got in after_detection),
      f"{[r for r in results if r[1] != 'gw2'][:5]}")
failed_before = [got for t, got in results if first_gw2 is not None and t < first_gw2]
print(f"     failover: first connection on gw2 {first_gw2 * 1000:.0f} ms after the kill; "
      f"{len(failed_before)} connection(s) before it: {failed_before}", flush=True)
held.settimeout(3)
closed = False
try:
    while True:  # the echo of "held" may still be buffered; then end of stream or a reset
        if held.recv(100) == b"":
            closed = True
            break
except OSError as error:
    closed = not isinstance(error, socket.timeout)  # a reset; a timeout means it stayed open
check("failover: a connection open on the dead gateway is closed, not moved", closed)
held.close()

gateways["gw1"] = EchoUpstream("gw1", port=gateways["gw1"].port)
back = time.time()
returned = None
while time.time() - back < 5:
    if upstream_for(failover_port, "127.0.0.12") == "gw1":
        returned = time.time() - back
        break
    time.sleep(0.05)
check("failover: gateway 1 back, new connections return to it within 2 s",
      returned is not None and returned < 2.0, f"returned after {returned}")
if returned is not None:
    print(f"     failover: back on gw1 {returned * 1000:.0f} ms after it returned", flush=True)
stats = failover.counters(r"^cluster\.gw[12]\.(health_check\.(failure|success)|upstream_cx_total)$")
check("failover: Envoy's own stats show the health checks that drove it",
      stats.get("cluster.gw1.health_check.failure", 0) > 0
      and stats.get("cluster.gw2.upstream_cx_total", 0) > 0, json.dumps(stats))

# --- deploy/envoy/envoy-selection.yaml, as shipped (ports and the module path replaced) -----------
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
shipped = open(os.path.join(ROOT, "deploy", "envoy", "envoy-selection.yaml")).read()
shipped_gateways = {"egress1": EchoUpstream("egress1"), "egress2": EchoUpstream("egress2")}
text = (shipped.replace("port_value: 10444", "port_value: 0").replace("port_value: 9902", "port_value: 0")
        .replace("port_value: 18081", f"port_value: {shipped_gateways['egress1'].port}")
        .replace("port_value: 18082", f"port_value: {shipped_gateways['egress2'].port}")
        .replace("build/wasm/filter/tcpsteer.wasm", os.path.abspath(module)))
shipped_access = os.path.join(scratch("access"), "shipped.log")
text = text.replace("path: /dev/stdout", f"path: {shipped_access}")
check("envoy-selection.yaml: every replaced value was there",
      text.count("port_value: 0") == 2 and os.path.abspath(module) in text
      and shipped_access in text)
selection = Envoy(text, name="shipped-selection", component_log_level="wasm:info")
checks.envoys.append(selection)
selection.start()
port = selection.listener_ports()["tcpsteer_selection"]
github = upstream_for(port, "127.0.0.10", "api.github.com")
example = upstream_for(port, "127.0.0.10", "www.example.com")
others = {upstream_for(port, f"127.0.0.{octet}", "other.test") for octet in range(10, 20)}
check("envoy-selection.yaml: github -> egress1, example -> egress2, the rest of billing on one "
      "gateway (spread by workload)", github == "egress1" and example == "egress2"
      and len(others) == 1 and others <= {"egress1", "egress2"}, f"{github} {example} {others}")
selection.access_log = shipped_access
logged = "".join(access_lines(selection.access_log, 12))
check("envoy-selection.yaml: its access log prints each decision",
      "sni=api.github.com cluster=tcpsteer-failover|egress1+egress2 target=egress1+egress2 "
      "rule=github" in logged and "sni=www.example.com cluster=tcpsteer-failover|egress2+egress1 "
      "target=egress2+egress1 rule=example" in logged,
      logged[:600])
embedded = shipped.split("value: |", 1)[1].split("vm_config:", 1)[0]
config_file = os.path.join(scratch("explain"), "shipped.json")
with open(config_file, "w") as out:
    out.write(embedded)
done = subprocess.run([explain_tool, "explain", "--config", config_file, "--namespace", "billing",
                       "--workload", "ledger", "--json", "10.0.0.1:1,1.1.1.1:443,api.github.com",
                       "10.0.0.1:1,1.1.1.1:443,www.example.com"], capture_output=True, text=True)
named = [json.loads(l)["cluster"] for l in done.stdout.splitlines() if '"cluster"' in l]
defined = [f"name: {cluster}" in shipped for cluster in named]
check("envoy-selection.yaml defines the aggregate clusters tcpsteer explain names",
      len(named) == 2 and all(defined), f"{named} {defined} {done.stderr}")

checks.finish()
