"""Live reconfiguration of tcpsteer in real Envoy, both ways Istio delivers a filter:
  - LDS from a watched file (what an EnvoyFilter change does): the whole listener is replaced;
  - ECDS from a watched file (what a WasmPlugin change does): only the filter's configuration.
For each: a new configuration applies to new connections; a long transfer started before keeps its
bytes exact for as long as Envoy keeps it (LDS drains the changed filter chain and closes it after
--drain-time-s; ECDS leaves it alone, as the test asserts); an invalid configuration is rejected
(Envoy's own counters) and the previous one keeps serving.
Usage: envoy_reload_test.py MODULE"""

import hashlib
import json
import os
import socket
import sys
import threading
import time

from envoy_harness import (Checks, EchoUpstream, Envoy, connect, read_line, scratch,
                           static_cluster, tcp_proxy, wasm_filter)

module = sys.argv[1]
checks = Checks("envoy_reload")
check = checks.check
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
DRAIN_SECONDS = 2

upstreams = {name: EchoUpstream(name) for name in ("egress1", "egress2")}
clusters = [static_cluster(name, upstream.port) for name, upstream in upstreams.items()]
PARITY = "standalone"                                                        # .11 -> egress2
PINNED = json.dumps({"preset": "standalone", "rules": [{"last_octet": 11, "target": "egress1"}]})
INVALID = json.dumps({"preset": "standalone", "rules": [{"last_octet": 11, "target": "nowhere"}]})


def replace_file(path, document):
    """Writes beside the file and moves it over (Envoy watches for moves into the directory)."""
    staging = path + ".new"
    with open(staging, "w") as out:
        json.dump(document, out)
    os.replace(staging, path)


class LongTransfer:
    """A connection from .11 that keeps sending 64 KiB blocks and checks every echoed byte."""

    def __init__(self, port):
        self.client = connect(port, "127.0.0.11", timeout=30)
        self.egress = read_line(self.client)
        self.sent = 0
        self.received = 0
        self.intact = True
        self.closed_at = None
        self.stop = False
        self.block = hashlib.sha256(b"long").digest() * 2048
        self.expected = b""
        threading.Thread(target=self._write, daemon=True).start()
        threading.Thread(target=self._read, daemon=True).start()

    def _write(self):
        try:
            while not self.stop:
                self.client.sendall(self.block)
                self.sent += len(self.block)
                time.sleep(0.02)
        except OSError:
            pass

    def _read(self):
        pattern = self.block
        offset = 0
        try:
            while True:
                chunk = self.client.recv(65536)
                if not chunk:
                    break
                for i in range(0, len(chunk), 4096):
                    piece = chunk[i:i + 4096]
                    want = (pattern * 2)[offset % len(pattern):offset % len(pattern) + len(piece)]
                    if piece != want:
                        self.intact = False
                    offset += len(piece)
                self.received = offset
        except OSError:
            pass
        self.closed_at = time.time()

    def finish(self):
        self.stop = True
        try:
            self.client.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        deadline = time.time() + 10
        while self.closed_at is None and time.time() < deadline:
            time.sleep(0.05)
        self.client.close()


def wait_counter(envoy, name, at_least, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if envoy.counters("^" + name.replace(".", r"\.") + "$").get(name, 0) >= at_least:
            return True
        time.sleep(0.05)
    return False


def egress_of_new_connection(port):
    with connect(port, "127.0.0.11") as client:
        return read_line(client)


def listener_resource(configuration):
    return {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "main",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [wasm_filter(module, configuration), tcp_proxy("egress1")]}]}


# --- LDS: the listener from a watched file -------------------------------------------------------
workdir = scratch("reload")
lds_path = os.path.join(workdir, "listeners.json")
replace_file(lds_path, {"resources": [listener_resource(PARITY)]})
envoy = Envoy({"dynamic_resources": {"lds_config": {"path_config_source": {
                   "path": lds_path, "watched_directory": {"path": workdir}}}},
               "static_resources": {"clusters": clusters}},
              name="lds", drain_time_s=DRAIN_SECONDS, workdir=workdir)
checks.envoys.append(envoy)
envoy.start()
port = envoy.listener_ports()["main"]
check("lds-first-configuration", egress_of_new_connection(port) == "egress2")
transfer = LongTransfer(port)
check("lds-long-transfer-started-on-egress2", transfer.egress == "egress2", transfer.egress)
time.sleep(0.3)
replace_file(lds_path, {"resources": [listener_resource(PINNED)]})
updated_at = time.time()
check("lds-update-accepted", wait_counter(envoy, "listener_manager.lds.update_success", 2))
port = envoy.listener_ports()["main"]  # a filter-chain-only change keeps the socket
check("lds-new-configuration-for-new-connections", egress_of_new_connection(port) == "egress1")
check("lds-listener-updated-in-place",
      envoy.counters(r"listener_in_place_updated$").get(
          "listener_manager.listener_in_place_updated", 0) == 1)
# The old connection's filter chain was replaced: Envoy drains it and closes it when the drain
# time runs out. Until then its bytes flow, exact.
deadline = time.time() + DRAIN_SECONDS + 8
while transfer.closed_at is None and time.time() < deadline:
    time.sleep(0.05)
closed_after = (transfer.closed_at or time.time()) - updated_at
check("lds-old-connection-drained-then-closed", transfer.closed_at is not None and
      closed_after >= DRAIN_SECONDS * 0.5, f"closed {closed_after:.1f} s after the update")
check("lds-old-connection-bytes-exact-until-closed", transfer.intact and transfer.received > 0,
      f"{transfer.received} bytes back")
transfer.finish()
print(f"     LDS: the connection opened before the update was closed {closed_after:.1f} s after it "
      f"(--drain-time-s {DRAIN_SECONDS}), {transfer.received} bytes back intact")
rejected_before = envoy.counters(r"lds\.update_rejected$").get(
    "listener_manager.lds.update_rejected", 0)
replace_file(lds_path, {"resources": [listener_resource(INVALID)]})
check("lds-invalid-configuration-rejected",
      wait_counter(envoy, "listener_manager.lds.update_rejected", rejected_before + 1))
check("lds-invalid-configuration-filter-line",
      envoy.wait_for_log("invalid configuration at 'rules[0].target'"))
check("lds-previous-configuration-keeps-serving", egress_of_new_connection(port) == "egress1")
envoy.stop()

# --- ECDS: the filter's configuration alone from a watched file ---------------------------------
ecds_dir = os.path.join(workdir, "ecds")
os.makedirs(ecds_dir, exist_ok=True)
ecds_path = os.path.join(ecds_dir, "tcpsteer.json")


def extension_config(configuration):
    return {"resources": [{"@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                           "name": "tcpsteer",
                           "typed_config": wasm_filter(module, configuration)["typed_config"]}]}


replace_file(ecds_path, extension_config(PARITY))
discovered = {"name": "tcpsteer", "config_discovery": {
    "config_source": {"path_config_source": {"path": ecds_path,
                                             "watched_directory": {"path": ecds_dir}}},
    "type_urls": [WASM_TYPE]}}
envoy = Envoy({"static_resources": {
    "listeners": [{"name": "main",
                   "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                   "filter_chains": [{"filters": [discovered, tcp_proxy("egress1")]}]}],
    "clusters": clusters}}, name="ecds", workdir=workdir, drain_time_s=DRAIN_SECONDS)
checks.envoys.append(envoy)
envoy.start()
port = envoy.listener_ports()["main"]
check("ecds-first-configuration", egress_of_new_connection(port) == "egress2")
transfer = LongTransfer(port)
time.sleep(0.3)
# Envoy 1.40 names these extension_config_discovery.network_filter.<name>.*
ecds_stats = "extension_config_discovery.network_filter.tcpsteer."
replace_file(ecds_path, extension_config(PINNED))
check("ecds-update-accepted", wait_counter(envoy, ecds_stats + "update_success", 2))
check("ecds-new-configuration-for-new-connections", egress_of_new_connection(port) == "egress1")
time.sleep(DRAIN_SECONDS + 1)  # longer than an LDS drain would give it
sent_before = transfer.received
time.sleep(0.5)
check("ecds-old-connection-untouched", transfer.closed_at is None and
      transfer.received > sent_before and transfer.egress == "egress2")
transfer.finish()
check("ecds-old-connection-bytes-exact", transfer.intact and transfer.received > 0)
print(f"     ECDS: the connection opened before the update kept flowing "
      f"({transfer.received} bytes back intact, still on {transfer.egress})")
fails = ecds_stats + "update_rejected"
fails_before = envoy.counters(fails.replace(".", r"\.")).get(fails, 0)
replace_file(ecds_path, extension_config(INVALID))
check("ecds-invalid-configuration-rejected", wait_counter(envoy, fails, fails_before + 1),
      json.dumps(envoy.counters("extension_config_discovery")))
check("ecds-previous-configuration-keeps-serving", egress_of_new_connection(port) == "egress1")
envoy.stop()

for upstream in upstreams.values():
    upstream.close()
checks.finish()
