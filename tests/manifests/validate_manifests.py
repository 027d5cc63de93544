#!/usr/bin/env python3
"""Offline checks of the Kubernetes/Istio deployment (deploy/k8s, deploy/kind, deploy/docker).

1. Every YAML document validates against the strict schema for its apiVersion/kind (vendored in
   tests/fixtures/schemas); the wasm filter inserted by an EnvoyFilter validates against Envoy's schema.
2. Names that must agree do: filter target clusters vs Services and ports, listener names vs the
   ServiceEntry, ConfigMap/mount path/module file name, images vs Dockerfiles, selectors vs labels.
3. Every pod carries the security settings, resources and probes the project requires.
4. With --host/--module: every filter configuration in the manifests is loaded by the real module in
   tcpsteer-host, and the clusters it picks for an even and an odd source are the expected egress.

--self-test breaks the manifests (and envoy.yaml) in memory, one way at a time, and fails unless each break is reported:
the checks above are shown to be able to fail. Exit status: 0 clean, 1 problems found, 2 bad usage.
"""
import argparse
import copy
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import jsonschema
import yaml

NAMESPACE = "tcpsteer"
WASM_FILTER = "envoy.filters.network.wasm"
TCP_PROXY = "envoy.filters.network.tcp_proxy"
# apiVersion/kind -> schema file under the schema directory.
SCHEMAS = {
    ("v1", "Namespace"): "kubernetes/v1.32.2-standalone-strict/namespace-v1.json",
    ("v1", "ServiceAccount"): "kubernetes/v1.32.2-standalone-strict/serviceaccount-v1.json",
    ("v1", "Service"): "kubernetes/v1.32.2-standalone-strict/service-v1.json",
    ("v1", "ConfigMap"): "kubernetes/v1.32.2-standalone-strict/configmap-v1.json",
    ("apps/v1", "Deployment"): "kubernetes/v1.32.2-standalone-strict/deployment-apps-v1.json",
    ("networking.k8s.io/v1", "NetworkPolicy"):
        "kubernetes/v1.32.2-standalone-strict/networkpolicy-networking-v1.json",
    ("networking.istio.io/v1beta1", "ServiceEntry"):
        "istio/v1.30.3/networking.istio.io/serviceentry_v1beta1.json",
    ("networking.istio.io/v1", "ServiceEntry"): "istio/v1.30.3/networking.istio.io/serviceentry_v1.json",
    ("networking.istio.io/v1", "Gateway"): "istio/v1.30.3/networking.istio.io/gateway_v1.json",
    ("networking.istio.io/v1", "VirtualService"): "istio/v1.30.3/networking.istio.io/virtualservice_v1.json",
    ("networking.istio.io/v1", "DestinationRule"): "istio/v1.30.3/networking.istio.io/destinationrule_v1.json",
    ("networking.istio.io/v1alpha3", "EnvoyFilter"):
        "istio/v1.30.3/networking.istio.io/envoyfilter_v1alpha3.json",
    ("extensions.istio.io/v1alpha1", "WasmPlugin"):
        "istio/v1.30.3/extensions.istio.io/wasmplugin_v1alpha1.json",
    ("kind.x-k8s.io/v1alpha4", "Cluster"): "kind/v0.32.0/kind.x-k8s.io/cluster_v1alpha4.json",
}
ENVOY_WASM_SCHEMA = "envoy/data-plane-api-84e8436/network-filter-wasm.json"
# The stand-in variant is client/ + base/ + one plugin set (+ port80, which overlays any of them); the
# gateway variant is client/ + gateways/.
PLUGIN_SETS = ["envoyfilter", "wasmplugin", "wasmplugin-oci"]
OVERLAY_SETS = ["port80"]
GATEWAY_NAMESPACE = "tcpsteer-egress"
INTERNET_NAMESPACE = "internet"
GATEWAY_ROLE = ("tcpsteer.example/role", "egress-gateway")
CLUSTER_RE = re.compile(r"^outbound\|(\d+)\|\|([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$")


class Doc:
    """One YAML document and where it came from."""

    def __init__(self, path, index, body):
        self.path, self.index, self.body = path, index, body

    @property
    def where(self):
        if not isinstance(self.body, dict) or "kind" not in self.body:
            return self.path  # a whole file that is not a Kubernetes object (envoy.yaml)
        name = self.body.get("metadata", {}).get("name", "?")
        return f"{self.path}#{self.index} ({self.kind}/{name})"

    @property
    def kind(self):
        return self.body.get("kind", "?") if isinstance(self.body, dict) else "?"

    @property
    def name(self):
        return self.body.get("metadata", {}).get("name")


def load_docs(repo):
    docs = {}
    k8s = repo / "deploy" / "k8s"
    for folder in sorted(p for p in k8s.iterdir() if p.is_dir()):
        docs[folder.name] = []
        for path in sorted(folder.glob("*.yaml")):
            if path.name == "kustomization.yaml":
                continue  # checked by check_kustomizations
            for index, body in enumerate(yaml.safe_load_all(path.read_text())):
                if body is not None:
                    docs[folder.name].append(Doc(str(path.relative_to(repo)), index, body))
    kind_path = repo / "deploy" / "kind" / "cluster.yaml"
    docs["kind"] = [Doc(str(kind_path.relative_to(repo)), 0, yaml.safe_load(kind_path.read_text()))]
    docs["envoy"] = [Doc(str(path.relative_to(repo)), 0, yaml.safe_load(path.read_text()))
                     for path in sorted((repo / "deploy" / "envoy").glob("*.yaml"))]
    return docs


class Checker:
    def __init__(self, repo, schema_dir, host=None, module=None, kubectl=None, explain=None):
        self.repo, self.schema_dir, self.host, self.module = repo, schema_dir, host, module
        self.kubectl = kubectl
        self.explain = explain
        self.errors = []
        self._schemas = {}
        self._host_runs = {}

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    def schema(self, relative):
        if relative not in self._schemas:
            self._schemas[relative] = json.loads((self.schema_dir / relative).read_text())
        return self._schemas[relative]

    # ---- 1. schemas ------------------------------------------------------------------------------
    def validate_envoy_bootstrap(self, doc):
        """The standalone envoy.yaml: each wasm filter against Envoy's schema, its module path, its
        configuration in the real module."""
        listeners = doc.body.get("static_resources", {}).get("listeners", [])
        clusters = [c.get("name") for c in doc.body.get("static_resources", {}).get("clusters", [])]
        wasm_filters = 0
        for listener in listeners:
            for chain in listener.get("filter_chains", []):
                names = [f.get("name") for f in chain.get("filters", [])]
                for i, f in enumerate(chain.get("filters", [])):
                    if f.get("name") != WASM_FILTER:
                        continue
                    wasm_filters += 1
                    where = f"{doc.where} listener {listener.get('name')} filter {i}"
                    self.report_schema_errors(where, self.schema(ENVOY_WASM_SCHEMA), f)
                    if TCP_PROXY not in names[i + 1:]:
                        self.error(where, "the wasm filter must come before envoy.filters.network.tcp_proxy")
                    config = f.get("typed_config", {}).get("config", {})
                    filename = config.get("vm_config", {}).get("code", {}).get("local", {}).get("filename")
                    if filename != "build/wasm/filter/tcpsteer.wasm":
                        self.error(where, f"module {filename!r} is not the one make wasm builds")
                    value = config.get("configuration", {}).get("value", "")
                    metadata = doc.body.get("node", {}).get("metadata")
                    if self.host and self.module and (metadata or '"rules"' in value):
                        # A selection configuration (envoy-selection.yaml; its routing is run in
                        # tests/envoy/envoy_selection_test.py): with the file's node metadata it
                        # loads, and every decision names a cluster of the file.
                        for sni in ["api.github.com", "www.example.com", ""]:
                            args = ["replay", self.module, "--config", value, "--conn", "127.0.0.10:1,127.0.0.1:10443"]
                            args += ["--node-metadata", json.dumps(metadata)] if metadata else []
                            args += ["--sni", sni] if sni else []
                            run = self.run_host(args)
                            routed = re.search(r'"cluster":"([^"]*)"', run.stdout)
                            if run.returncode != 0 or not routed or routed.group(1) not in clusters:
                                self.error(where, f"tcpsteer.wasm routes sni={sni!r} to "
                                           f"{routed.group(1) if routed else None!r}, not a cluster of this file")
                    elif self.host and self.module:
                        # The first cluster is the even sources' (egress1, egress_gateway1), the second the odd ones'.
                        for source, cluster in zip(["127.0.0.10", "127.0.0.11"], clusters):
                            run = self.run_host(["replay", self.module, "--config", value,
                                                 "--conn", f"{source}:1,127.0.0.1:10443"])
                            if run.returncode != 0 or f'"cluster":"{cluster}"' not in run.stdout:
                                self.error(where, f"tcpsteer.wasm does not route {source} to {cluster} with "
                                           f"configuration {value!r}")
        if wasm_filters == 0:
            self.error(doc.where, "no envoy.filters.network.wasm filter")

    def validate_egress_gateway(self, doc):
        """deploy/envoy/egress-gateway.yaml, Istio's PASSTHROUGH gateway shape: the TLS inspector,
        every filter chain matched by SNI with tcp_proxy and no TLS termination, and no catch-all
        chain (a name not allowed must find no chain: the gateway is not an open proxy)."""
        for listener in doc.body.get("static_resources", {}).get("listeners", []):
            where = f"{doc.where} listener {listener.get('name')}"
            inspectors = [f.get("name") for f in listener.get("listener_filters", [])]
            if "envoy.filters.listener.tls_inspector" not in inspectors:
                self.error(where, "no envoy.filters.listener.tls_inspector: SNI chains never match")
            if listener.get("default_filter_chain"):
                self.error(where, "a default_filter_chain makes the gateway an open proxy")
            for i, chain in enumerate(listener.get("filter_chains", [])):
                if not chain.get("filter_chain_match", {}).get("server_names"):
                    self.error(f"{where} chain {i}", "a chain without server_names takes any name")
                if chain.get("transport_socket"):
                    self.error(f"{where} chain {i}", "a passthrough gateway never terminates TLS")
                if [f.get("name") for f in chain.get("filters", [])][-1:] != [TCP_PROXY]:
                    self.error(f"{where} chain {i}", "the chain must end in tcp_proxy")

    def validate_schema(self, doc):
        if doc.path == "deploy/envoy/egress-gateway.yaml":
            self.validate_egress_gateway(doc)
            return
        if doc.path.startswith("deploy/envoy/"):
            self.validate_envoy_bootstrap(doc)
            return
        body = doc.body
        if not isinstance(body, dict):
            self.error(doc.where, "not a mapping")
            return
        key = (body.get("apiVersion"), body.get("kind"))
        if key not in SCHEMAS:
            self.error(doc.where, f"no schema for apiVersion/kind {key}; add it to SCHEMAS or fix the document")
            return
        self.report_schema_errors(doc.where, self.schema(SCHEMAS[key]), body)
        if body.get("kind") == "EnvoyFilter":
            for i, patch in enumerate(body.get("spec", {}).get("configPatches", [])):
                value = patch.get("patch", {}).get("value", {})
                if patch.get("applyTo") == "NETWORK_FILTER" and value.get("name") == WASM_FILTER:
                    self.report_schema_errors(f"{doc.where} configPatches[{i}].patch.value",
                                              self.schema(ENVOY_WASM_SCHEMA), value)

    def report_schema_errors(self, where, schema, body):
        validator = jsonschema.Draft7Validator(schema)
        for err in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
            path = ".".join(str(p) for p in err.absolute_path) or "(document)"
            self.error(where, f"schema: at {path}: {err.message[:300]}")

    # ---- 2. consistency within one applied set ---------------------------------------------------
    def check_set(self, label, docs):
        by_kind = {}
        for doc in docs:
            by_kind.setdefault(doc.kind, []).append(doc)
        services = {d.name: d for d in by_kind.get("Service", [])}
        deployments = by_kind.get("Deployment", [])
        entries = by_kind.get("ServiceEntry", [])
        where = f"[{label}]"

        for doc in docs:
            ns = doc.body.get("metadata", {}).get("namespace")
            if doc.kind != "Namespace" and ns != NAMESPACE:
                self.error(doc.where, f"namespace is {ns!r}, expected {NAMESPACE!r} (one namespace holds the demo)")
        namespaces = [d for d in by_kind.get("Namespace", []) if d.name == NAMESPACE]
        if not namespaces:
            self.error(where, f"no Namespace {NAMESPACE}")
        elif namespaces[0].body["metadata"].get("labels", {}).get("istio-injection") != "enabled":
            self.error(namespaces[0].where, "label istio-injection: enabled is missing (the client needs its sidecar)")

        if len(entries) != 1:
            self.error(where, f"expected exactly one ServiceEntry in effect, found {len(entries)}")
            return
        entry = entries[0].body["spec"]
        entry_ports = {p["number"]: p for p in entry.get("ports", [])}
        addresses = entry.get("addresses", [])

        # Services select pods; target ports exist on those pods.
        for name, svc in services.items():
            selector = svc.body["spec"].get("selector", {})
            matches = [d for d in deployments if labels_match(selector, pod_labels(d))]
            if len(matches) != 1:
                self.error(svc.where, f"selector {selector} matches {len(matches)} Deployments, expected 1")
                continue
            ports = container_ports(matches[0])
            for port in svc.body["spec"].get("ports", []):
                target = port.get("targetPort", port["port"])
                if target not in ports and target not in ports.values():
                    self.error(svc.where, f"targetPort {target!r} is not a container port of {matches[0].name}")

        for dep in deployments:
            selector = dep.body["spec"]["selector"].get("matchLabels", {})
            if not labels_match(selector, pod_labels(dep)):
                self.error(dep.where, f"spec.selector {selector} does not match the pod template labels")

        # Where the filter is configured, and with what.
        client = [d for d in deployments if pod_labels(d).get("sidecar.istio.io/inject") == "true"]
        if len(client) != 1:
            self.error(where, f"expected one Deployment with sidecar.istio.io/inject=true, found {len(client)}")
            return
        client = client[0]
        mount = wasm_mount(self, client)
        names = script_names(self)
        for doc in by_kind.get("EnvoyFilter", []):
            spec = doc.body["spec"]
            self.check_selector(doc, spec.get("workloadSelector", {}).get("labels", {}), client, deployments)
            for i, patch in enumerate(spec.get("configPatches", [])):
                self.check_envoyfilter_patch(f"{doc.where} configPatches[{i}]", patch, addresses, entry_ports,
                                             services, mount, names)
        for doc in by_kind.get("WasmPlugin", []):
            spec = doc.body["spec"]
            self.check_selector(doc, spec.get("selector", {}).get("matchLabels", {}), client, deployments)
            if spec.get("type") != "NETWORK":
                self.error(doc.where, "type must be NETWORK (the default, HTTP, never reaches tcp_proxy chains)")
            ports = [p["number"] for m in spec.get("match", []) for p in m.get("ports", [])]
            for port in ports:
                self.check_tcp_port(doc.where, port, entry_ports)
            url = spec.get("url", "")
            if url.startswith("file://"):
                expected = f"file://{mount[1]}/{names['WASM_KEY']}" if mount else None
                if mount and url != expected:
                    self.error(doc.where, f"url {url} does not match the mounted module {expected}")
            elif url.startswith("oci://"):
                self.check_oci(doc, url)
            self.check_filter_config(doc.where, json.dumps(spec.get("pluginConfig", {})), ports, services)
        plugins = len(by_kind.get("EnvoyFilter", [])) + len(by_kind.get("WasmPlugin", []))
        if plugins == 0:
            self.error(where, "no EnvoyFilter or WasmPlugin installs the filter")

        for doc in by_kind.get("NetworkPolicy", []):
            selector = doc.body["spec"].get("podSelector", {})
            if not any(selector_matches(selector, pod_labels(d)) for d in deployments):
                self.error(doc.where, f"podSelector {selector} selects no pod of the demo")

    # ---- 2b. the gateway variant ----------------------------------------------------------------
    def check_gateway_set(self, docs):
        """client/ + gateways/: the filter's targets are the two gateways' clusters; each gateway has a
        Service, a PASSTHROUGH Gateway for the external host and a plain-TCP hop; the VirtualService
        is bound to the gateways only; the ServiceEntry resolves the host for the gateways; the
        policies let the client reach only the gateways and only the gateways reach the internet."""
        where = "[client+gateways]"
        by_kind = {}
        for doc in docs:
            by_kind.setdefault(doc.kind, []).append(doc)

        def ns_of(doc):
            return doc.body.get("metadata", {}).get("namespace")

        namespaces = {d.name: d for d in by_kind.get("Namespace", [])}
        for name, injection in ((NAMESPACE, "enabled"), (GATEWAY_NAMESPACE, "enabled"),
                                (INTERNET_NAMESPACE, "disabled")):
            if name not in namespaces:
                self.error(where, f"no Namespace {name}")
            elif namespaces[name].body["metadata"].get("labels", {}).get("istio-injection") != injection:
                self.error(namespaces[name].where, f"label istio-injection must be {injection}")
        deployments = by_kind.get("Deployment", [])
        gateways = [d for d in deployments if is_gateway(d)]
        clients = [d for d in deployments if d.name == "demo-client" and ns_of(d) == NAMESPACE]
        standins = [d for d in deployments if ns_of(d) == INTERNET_NAMESPACE]
        if len(gateways) != 2 or len(clients) != 1 or len(standins) != 1:
            self.error(where, f"expected 2 gateway Deployments, 1 client and 1 stand-in in {INTERNET_NAMESPACE}, found "
                       f"{len(gateways)}, {len(clients)}, {len(standins)}")
            return
        client, standin = clients[0], standins[0]
        for gw in gateways:
            labels = pod_labels(gw)
            if ns_of(gw) != GATEWAY_NAMESPACE:
                self.error(gw.where, f"gateways live in namespace {GATEWAY_NAMESPACE}")
            if labels.get(GATEWAY_ROLE[0]) != GATEWAY_ROLE[1]:
                self.error(gw.where, f"pod label {GATEWAY_ROLE[0]}: {GATEWAY_ROLE[1]} is missing (the policies use it)")
            if labels.get("sidecar.istio.io/inject") != "true":
                self.error(gw.where, 'pod label sidecar.istio.io/inject: "true" is needed for gateway injection')
        if pod_labels(standin).get("sidecar.istio.io/inject") != "false":
            self.error(standin.where, 'the stand-in is outside the mesh: sidecar.istio.io/inject: "false"')

        entries = [d for d in by_kind.get("ServiceEntry", [])]
        if len(entries) != 1:
            self.error(where, f"expected one ServiceEntry, found {len(entries)}")
            return
        entry = entries[0]
        hosts = entry.body["spec"].get("hosts", [])
        entry_ports = {p["number"]: p for p in entry.body["spec"].get("ports", [])}
        if entry.body["spec"].get("resolution") != "DNS":
            self.error(entry.where, "resolution must be DNS (gateways cannot use passthrough clusters: with NONE a "
                       "gateway sends the traffic to itself)")
        for port, p in entry_ports.items():
            if p.get("protocol") not in ("TLS", "HTTPS"):
                self.error(entry.where, f"port {port} is {p.get('protocol')}: only TLS leaves through the gateways")
        services = {(ns_of(d), d.name): d for d in by_kind.get("Service", [])}
        for endpoint in entry.body["spec"].get("endpoints", []):
            m = re.fullmatch(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local", endpoint.get("address", ""))
            svc = services.get((m.group(2), m.group(1))) if m else None
            if svc is None:
                self.error(entry.where, f"endpoint {endpoint.get('address')!r} is not a Service of the manifests")
                continue
            if svc.body["spec"].get("clusterIP") != "None":
                self.error(svc.where, "the stand-in's Service must be headless (clusterIP: None): the gateway then "
                           "connects to the pod itself and the stand-in sees the gateway's address")
            if not labels_match(svc.body["spec"].get("selector", {}), pod_labels(standin)):
                self.error(svc.where, "does not select the stand-in")
            names = {p["name"] for p in entry_ports.values()}
            for name, number in endpoint.get("ports", {}).items():
                if name not in names:
                    self.error(entry.where, f"endpoint port key {name!r} is not a ServiceEntry port name {sorted(names)}")
                if number not in container_ports(standin).values():
                    self.error(entry.where, f"endpoint port {number} is not a container port of the stand-in")

        # Each gateway: Service (port 443 -> a container port), Gateway, DestinationRule.
        gateway_objects = {d.name: d for d in by_kind.get("Gateway", [])}
        rules = {d.body["spec"].get("host"): d for d in by_kind.get("DestinationRule", [])}
        clusters = []
        for gw in sorted(gateways, key=lambda d: d.name):
            svc = [d for d in by_kind.get("Service", []) if ns_of(d) == ns_of(gw)
                   and labels_match(d.body["spec"].get("selector", {}), pod_labels(gw))]
            if len(svc) != 1:
                self.error(gw.where, f"expected one Service selecting it, found {len(svc)}")
                continue
            svc = svc[0]
            ports = svc.body["spec"].get("ports", [])
            if len(ports) != 1 or ports[0].get("name") not in ("tls", "https"):
                self.error(svc.where, "one port, named tls (the client's sidecar then treats it as TLS, not HTTP)")
                continue
            service_port = ports[0]["port"]
            target = ports[0].get("targetPort", service_port)
            if target not in container_ports(gw).values() and target not in container_ports(gw):
                self.error(svc.where, f"targetPort {target} is not a container port of {gw.name}")
            fqdn = f"{svc.name}.{ns_of(svc)}.svc.cluster.local"
            clusters.append(f"outbound|{service_port}||{fqdn}")
            selecting = [g for g in gateway_objects.values()
                         if labels_match(g.body["spec"].get("selector", {}), pod_labels(gw))]
            if len(selecting) != 1:
                self.error(gw.where, f"expected one Gateway selecting it, found {len(selecting)}")
            for g in selecting:
                for server in g.body["spec"].get("servers", []):
                    if server["port"]["number"] != service_port:
                        self.error(g.where, f"server port {server['port']['number']} is not the Service port "
                                   f"{service_port} (Istio maps the Service port to the listener)")
                    if server["port"].get("protocol") != "TLS" or server.get("tls", {}).get("mode") != "PASSTHROUGH":
                        self.error(g.where, "the server must be protocol TLS with tls.mode PASSTHROUGH (the client's "
                                   "TLS is carried on, never terminated)")
                    if sorted(server.get("hosts", [])) != sorted(hosts):
                        self.error(g.where, f"hosts {server.get('hosts')} differ from the ServiceEntry's {hosts}")
            rule = rules.get(fqdn)
            if rule is None or rule.body["spec"].get("trafficPolicy", {}).get("tls", {}).get("mode") != "DISABLE":
                self.error(where, f"no DestinationRule for {fqdn} with trafficPolicy.tls.mode DISABLE (the hop must stay "
                           "plain so the gateway reads the client's own SNI)")
        for host in hosts:
            if host in rules and rules[host].body["spec"].get("trafficPolicy", {}).get("tls"):
                self.error(rules[host].where, "no TLS settings for the external host: the gateway would wrap the "
                           "client's TLS in its own")

        services_by_vs = by_kind.get("VirtualService", [])
        if len(services_by_vs) != 1:
            self.error(where, f"expected one VirtualService, found {len(services_by_vs)}")
        for vs in services_by_vs:
            spec = vs.body["spec"]
            bound = spec.get("gateways", [])
            if "mesh" in bound or not bound:
                self.error(vs.where, "bind it to the gateways only: a mesh route would compete with the filter")
            if sorted(bound) != sorted(gateway_objects):
                self.error(vs.where, f"gateways {bound} are not the Gateways {sorted(gateway_objects)}")
            if ns_of(vs) != GATEWAY_NAMESPACE:
                self.error(vs.where, f"it belongs with the Gateways in {GATEWAY_NAMESPACE}")
            if spec.get("http") or spec.get("tcp") or not spec.get("tls"):
                self.error(vs.where, "only tls routes: a PASSTHROUGH server takes its filter chains from them")
            for route in spec.get("tls", []):
                for match in route.get("match", []):
                    if not set(match.get("sniHosts", [])) or not set(match["sniHosts"]) <= set(hosts):
                        self.error(vs.where, f"sniHosts {match.get('sniHosts')} must be the allowed hosts {hosts}")
                for dest in route.get("route", []):
                    if dest["destination"].get("host") not in hosts or \
                            dest["destination"].get("port", {}).get("number") not in entry_ports:
                        self.error(vs.where, f"destination {dest['destination']} is not a host:port of the ServiceEntry")

        # The filter: targets are the gateway clusters, even first; the real module agrees.
        filters = by_kind.get("EnvoyFilter", [])
        if len(filters) != 1:
            self.error(where, f"expected one EnvoyFilter, found {len(filters)}")
            return
        ef = filters[0]
        self.check_selector(ef, ef.body["spec"].get("workloadSelector", {}).get("labels", {}), client, deployments)
        patch = ef.body["spec"]["configPatches"][0]
        listener = patch["match"]["listener"]
        text = patch["patch"]["value"]["typed_config"]["config"]["configuration"]["value"]
        config = json.loads(text)
        port = listener.get("portNumber")
        targets = [t["cluster"] if isinstance(t, dict) else t for t in config.get("targets", [])]
        rendered = [t.replace("{port}", str(port)) for t in targets]
        if rendered != clusters:
            self.error(ef.where, f"targets {rendered} are not the gateways' clusters {clusters} (egress1 first)")
        if listener.get("name") not in {f"{a}_{port}" for a in entry.body["spec"].get("addresses", [])}:
            self.error(ef.where, f"listener.name {listener.get('name')!r} is not the ServiceEntry's listener")
        if self.host and self.module and rendered == clusters:
            for source, cluster in (("10.244.0.12", clusters[0]), ("10.244.0.13", clusters[1])):
                run = self.run_host(["replay", self.module, "--root-id", "tcpsteer", "--config", text,
                                     "--conn", f"{source}:40000,198.18.0.10:{port}"])
                if run.returncode != 0 or f'"cluster":"{cluster}"' not in run.stdout:
                    self.error(ef.where, f"tcpsteer.wasm does not send {source} to {cluster}")

        self.check_gateway_policies(by_kind.get("NetworkPolicy", []), client, gateways, standin, ns_of)

    def check_gateway_policies(self, policies, client, gateways, standin, ns_of):
        """Which pods each policy lets through, evaluated on the manifests' own labels and ports."""
        def selects(policy, dep):
            return ns_of(policy) == ns_of(dep) and selector_matches(policy.body["spec"].get("podSelector", {}),
                                                                    pod_labels(dep))

        def peers(policy, rule_peers, dep):
            """No peers: anyone; a peer without namespaceSelector is in the policy's own namespace."""
            if not rule_peers:
                return True
            for peer in rule_peers:
                ns_sel = peer.get("namespaceSelector")
                if ns_sel is None:
                    ns_ok = ns_of(dep) == ns_of(policy)
                else:
                    ns_ok = labels_match(ns_sel.get("matchLabels", {}), {"kubernetes.io/metadata.name": ns_of(dep)})
                pod_sel = peer.get("podSelector")
                if ns_ok and (pod_sel is None or selector_matches(pod_sel, pod_labels(dep))):
                    return True
            return False

        def allowed(direction, src, dst, port):
            """Does a policy on `src` (egress) or `dst` (ingress) allow this TCP port?"""
            owner = src if direction == "egress" else dst
            other = dst if direction == "egress" else src
            governing = [p for p in policies if selects(p, owner)
                         and direction.capitalize() in p.body["spec"].get("policyTypes", [])]
            if not governing:
                return None  # not isolated in that direction
            for policy in governing:
                for rule in policy.body["spec"].get(direction, []) or []:
                    rule_peers = rule.get("to" if direction == "egress" else "from", [])
                    ports = [p.get("port") for p in rule.get("ports", [])]
                    if peers(policy, rule_peers, other) and (not ports or port in ports):
                        return True
            return False

        standin_port = container_ports(standin).get("tls")
        for gw in gateways:
            gw_port = container_ports(gw).get("tls")
            for direction in ("egress", "ingress"):
                if allowed(direction, client, gw, gw_port) is not True:
                    self.error(f"[client+gateways] NetworkPolicy",
                               f"{direction} of client -> {gw.name}:{gw_port} is not allowed (or not isolated)")
                if allowed(direction, gw, standin, standin_port) is not True:
                    self.error(f"[client+gateways] NetworkPolicy",
                               f"{direction} of {gw.name} -> stand-in:{standin_port} is not allowed (or not isolated)")
        for direction in ("egress", "ingress"):
            if allowed(direction, client, standin, standin_port) is not False:
                self.error("[client+gateways] NetworkPolicy",
                           f"{direction} of client -> stand-in:{standin_port} must be denied: only the gateways egress")

    def check_rendered(self):
        """`kubectl kustomize` renders every kustomization; the documents it gives validate, and the
        gateway variant's client makes HTTPS requests only."""
        k8s = self.repo / "deploy" / "k8s"
        for folder in sorted(p for p in k8s.iterdir() if (p / "kustomization.yaml").exists()):
            if folder.name in OVERLAY_SETS:
                continue  # a Component renders only inside a kustomization that lists it
            where = f"kubectl kustomize {folder.relative_to(self.repo)}"
            run = subprocess.run([self.kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=False)
            if run.returncode != 0:
                self.error(where, f"fails: {run.stderr.strip()[:300]}")
                continue
            docs = [Doc(where, i, body) for i, body in enumerate(yaml.safe_load_all(run.stdout)) if body]
            for doc in docs:
                self.validate_schema(doc)
            if folder.name == "selection":
                self.check_selection_set(where, docs)
            if folder.name == "gateways":
                client = [d for d in docs if d.kind == "Deployment" and d.name == "demo-client"]
                args = client[0].body["spec"]["template"]["spec"]["containers"][0].get("args", []) if client else []
                if "--schemes=https" not in args:
                    self.error(where, "the client must make HTTPS requests only (--schemes=https): plain HTTP has no "
                               "way out in the gateway variant")

    def check_selection_set(self, where, docs):
        """The selection variant, as kubectl renders it: one filter configuration in both client
        namespaces' EnvoyFilters; every fallback list it routes to (asked of tcpsteer explain, for
        each namespace's proxy) is an aggregate cluster of the failover EnvoyFilter with the members'
        clusters in order; outlier detection on both gateways' DestinationRules (what moves a
        fallback list in Istio); the gateways admit the clients of both namespaces."""
        filters = {d.body["metadata"].get("namespace"): d for d in docs
                   if d.kind == "EnvoyFilter" and d.name == "tcpsteer"}
        if set(filters) != {"tcpsteer", "tcpsteer-b"}:
            self.error(where, f"expected the EnvoyFilter tcpsteer in tcpsteer and tcpsteer-b, found {sorted(filters)}")
            return
        if filters["tcpsteer"].body["spec"] != filters["tcpsteer-b"].body["spec"]:
            self.error(where, "the two client namespaces' EnvoyFilters differ: one configuration serves both")
        config = filters["tcpsteer"].body["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["config"]
        configuration = config["configuration"]["value"]
        guide = (self.repo / "docs" / "istio.md").read_text().split("## Choosing egress", 1)[-1]
        shown = re.search(r"```json\n(.*?)```", guide, re.S)
        if not shown or json.loads(shown.group(1)) != json.loads(configuration):
            self.error(where, "docs/istio.md's selection configuration differs from deploy/k8s/selection's")
        aggregates = {}
        for doc in docs:
            if doc.kind != "EnvoyFilter" or doc.name == "tcpsteer":
                continue
            for patch in doc.body["spec"].get("configPatches", []):
                value = patch.get("patch", {}).get("value", {})
                if patch.get("applyTo") == "CLUSTER" and value.get("cluster_type", {}).get("name") == "envoy.clusters.aggregate":
                    aggregates[value["name"]] = value["cluster_type"]["typed_config"].get("clusters", [])
        if self.explain:
            seen_first = {}
            for namespace in ("tcpsteer", "tcpsteer-b"):
                with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
                    out.write(configuration)
                run = subprocess.run([self.explain, "explain", "--config", out.name, "--namespace", namespace,
                                      "--json", "10.244.0.10:40000,198.18.0.10:443,api.tcpsteer.example"],
                                     capture_output=True, text=True, check=False)
                os.unlink(out.name)
                decided = [json.loads(line) for line in run.stdout.splitlines() if '"cluster"' in line]
                if run.returncode != 0 or not decided:
                    self.error(where, f"tcpsteer explain refused the configuration for namespace {namespace}: "
                               f"{(run.stdout + run.stderr).strip()[:300]}")
                    continue
                cluster, target = decided[0]["cluster"], decided[0]["target"]
                members = target.split("+")
                if len(members) < 2:
                    self.error(where, f"namespace {namespace}: expected a fallback list, the filter picks {target}")
                    continue
                want = [f"outbound|443||{m}.tcpsteer-egress.svc.cluster.local" for m in members]
                if aggregates.get(cluster) != want:
                    self.error(where, f"namespace {namespace}: the filter routes to {cluster!r}, which the failover "
                               f"EnvoyFilter must define as an aggregate of {want}; it has {aggregates.get(cluster)}")
                seen_first[namespace] = members[0]
            if len(set(seen_first.values())) != 2:
                self.error(where, f"each client namespace must prefer its own gateway: {seen_first}")
        for host in ("egress1", "egress2"):
            rule = [d for d in docs if d.kind == "DestinationRule"
                    and d.body["spec"].get("host") == f"{host}.tcpsteer-egress.svc.cluster.local"]
            outlier = rule[0].body["spec"].get("trafficPolicy", {}).get("outlierDetection", {}) if rule else {}
            if not (outlier.get("splitExternalLocalOriginErrors") and outlier.get("consecutiveLocalOriginFailures")):
                self.error(where, f"{host}'s DestinationRule needs outlierDetection with splitExternalLocalOriginErrors "
                           "and consecutiveLocalOriginFailures: without it a dead gateway is never ejected and the "
                           "fallback list never moves")
        policy = [d for d in docs if d.kind == "NetworkPolicy" and d.name == "egress-gateways"]
        admitted = {peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                    for rule in (policy[0].body["spec"].get("ingress", []) if policy else [])
                    for peer in rule.get("from", [])}
        if not {"tcpsteer", "tcpsteer-b"} <= admitted:
            self.error(where, f"the gateways admit clients from {sorted(n for n in admitted if n)}, not both namespaces")

    def check_selector(self, doc, selector, client, deployments):
        selected = [d for d in deployments if labels_match(selector, pod_labels(d))]
        if selected != [client]:
            self.error(doc.where, f"selector {selector} must select exactly the client pods ({client.name}), "
                       f"selects {[d.name for d in selected]}")

    def check_tcp_port(self, where, port, entry_ports):
        entry_port = entry_ports.get(port)
        if entry_port is None:
            self.error(where, f"port {port} is not a port of the ServiceEntry")
        elif entry_port.get("protocol") not in ("TCP", "TLS", "HTTPS"):
            self.error(where, f"port {port} is {entry_port.get('protocol')} in the ServiceEntry: its listener uses "
                       "the HTTP connection manager, not tcp_proxy, so the filter cannot reroute it")

    def check_envoyfilter_patch(self, where, patch, addresses, entry_ports, services, mount, names):
        match = patch.get("match", {})
        listener = match.get("listener", {})
        value = patch.get("patch", {}).get("value", {})
        if patch.get("applyTo") != "NETWORK_FILTER" or value.get("name") != WASM_FILTER:
            self.error(where, "expected applyTo NETWORK_FILTER inserting envoy.filters.network.wasm")
            return
        if match.get("context") != "SIDECAR_OUTBOUND":
            self.error(where, "match.context must be SIDECAR_OUTBOUND (the client's outbound connections)")
        if patch["patch"].get("operation") != "INSERT_BEFORE":
            self.error(where, "patch.operation must be INSERT_BEFORE (the filter state must exist before tcp_proxy)")
        filter_name = listener.get("filterChain", {}).get("filter", {}).get("name")
        if filter_name != TCP_PROXY:
            self.error(where, f"filterChain.filter.name is {filter_name!r}; Istio compares exact strings and "
                       f"only {TCP_PROXY!r} matches")
        port = listener.get("portNumber")
        self.check_tcp_port(where, port, entry_ports)
        expected_names = {f"{address}_{port}" for address in addresses}
        if listener.get("name") not in expected_names:
            self.error(where, f"listener.name {listener.get('name')!r} is not one of the ServiceEntry's listeners "
                       f"{sorted(expected_names)}")
        config = value.get("typed_config", {}).get("config", {})
        filename = config.get("vm_config", {}).get("code", {}).get("local", {}).get("filename")
        if mount:
            expected = f"{mount[1]}/{names['WASM_KEY']}"
            if filename != expected:
                self.error(where, f"vm_config.code.local.filename {filename!r} is not the mounted module {expected!r}")
        configuration = config.get("configuration", {})
        if configuration.get("@type") != "type.googleapis.com/google.protobuf.StringValue":
            self.error(where, "configuration must be a google.protobuf.StringValue (the filter reads JSON text)")
            return
        self.check_filter_config(where, configuration.get("value", ""), [port], services)

    def check_filter_config(self, where, text, listener_ports, services):
        try:
            config = json.loads(text)
        except json.JSONDecodeError as e:
            self.error(where, f"filter configuration is not JSON: {e}")
            return
        if not isinstance(config, dict):
            return
        match_ports = config.get("match_ports")
        if match_ports is not None:
            for port in listener_ports:
                if port not in match_ports:
                    self.error(where, f"the filter is installed on port {port} but its match_ports {match_ports} "
                               "skip that port")
        port_map = {int(k): v for k, v in config.get("port_map", {}).items()}
        for target in config.get("targets", []):
            template = target["cluster"] if isinstance(target, dict) else target
            for port in listener_ports:
                cluster = template.replace("{port}", str(port_map.get(port, port)))
                self.check_cluster(where, cluster, services)
        if self.host and self.module:
            self.replay(where, text, listener_ports, services)

    def check_cluster(self, where, cluster, services):
        m = CLUSTER_RE.match(cluster)
        if not m:
            self.error(where, f"cluster {cluster!r} is not an Istio outbound cluster name outbound|PORT||NAME.NS.svc.cluster.local")
            return
        port, name, ns = int(m.group(1)), m.group(2), m.group(3)
        svc = services.get(name)
        if ns != NAMESPACE or svc is None:
            self.error(where, f"cluster {cluster!r} names Service {name}.{ns}, which the manifests do not define")
        elif port not in [p["port"] for p in svc.body["spec"]["ports"]]:
            self.error(where, f"cluster {cluster!r}: Service {name} has no port {port}")

    def run_host(self, args):
        """tcpsteer-host, once per distinct argument list: a configuration appears in every applied
        combination of sets, and the answer does not change."""
        key = tuple(args)
        if key not in self._host_runs:
            self._host_runs[key] = subprocess.run([self.host] + args, capture_output=True, text=True, check=False)
        return self._host_runs[key]

    def replay(self, where, text, listener_ports, services):
        """The real module takes the configuration and routes an even and an odd source as the rule says."""
        for port in listener_ports:
            conns = ["--conn", f"10.244.0.12:40000,198.18.0.10:{port}", "--conn", f"10.244.0.13:40001,198.18.0.10:{port}"]
            run = self.run_host(["replay", self.module, "--root-id", "tcpsteer", "--config", text] + conns)
            if run.returncode != 0:
                lines = [json.loads(line).get("message", line) for line in run.stdout.splitlines() if '"log"' in line]
                self.error(where, f"tcpsteer.wasm refuses this configuration (exit {run.returncode}): "
                           f"{' | '.join(lines) or run.stderr.strip()}")
                continue
            events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
            clusters = [e.get("cluster") for e in events if e.get("event") == "connection"]
            for cluster, egress in zip(clusters, ["egress1", "egress2"]):
                if cluster is None or not CLUSTER_RE.match(cluster) or CLUSTER_RE.match(cluster).group(2) != egress:
                    self.error(where, f"tcpsteer.wasm routed {'an even' if egress == 'egress1' else 'an odd'} "
                               f"source on port {port} to {cluster!r}, expected {egress}")
                else:
                    self.check_cluster(where, cluster, services)

    def check_oci(self, doc, url):
        m = re.match(r"^oci://[^/]+/(.+):([^:@/]+)$", url)
        if not m:
            self.error(doc.where, f"url {url} is not oci://REGISTRY/REPOSITORY:TAG")
            return
        self.check_image(doc.where, f"{m.group(1)}:{m.group(2)}")
        if not re.fullmatch(r"[0-9a-f]{64}", doc.body["spec"].get("sha256", "")):
            self.error(doc.where, "the OCI form must carry sha256 (64 hex digits), the pushed image's digest")

    # ---- 3. pods ---------------------------------------------------------------------------------
    def check_pod_security(self, dep):
        spec = dep.body["spec"]["template"]["spec"]
        gateway = is_gateway(dep)
        pod = spec.get("securityContext", {})
        if pod.get("runAsNonRoot") is not True:
            self.error(dep.where, "pod securityContext.runAsNonRoot must be true")
        if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            self.error(dep.where, "pod securityContext.seccompProfile.type must be RuntimeDefault")
        if not isinstance(pod.get("runAsUser"), int) or pod["runAsUser"] == 0:
            self.error(dep.where, "pod securityContext.runAsUser must be a non-zero numeric UID "
                       "(runAsNonRoot cannot verify a user name)")
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            cwhere = f"{dep.where} container {c.get('name')}"
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                self.error(cwhere, "securityContext.readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation") is not False:
                self.error(cwhere, "securityContext.allowPrivilegeEscalation must be false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                self.error(cwhere, "securityContext.capabilities.drop must contain ALL")
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in c.get("resources", {}).get(kind, {}):
                        self.error(cwhere, f"resources.{kind}.{resource} is missing")
            # A gateway's Envoy is restarted by istio-agent, and Istio's charts give it no liveness probe.
            for probe in ("readinessProbe",) if gateway else ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    self.error(cwhere, f"{probe} is missing")
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None and port not in container_ports(dep) and port not in container_ports(dep).values():
                    self.error(cwhere, f"{probe} port {port!r} is not a container port")
            if gateway:
                if c.get("name") != "istio-proxy" or c.get("image") != "auto":
                    self.error(cwhere, "a gateway-injected pod has one container, istio-proxy, with image: auto "
                               "(the injector fills in Istio's proxy image)")
                continue
            self.check_image(cwhere, c.get("image", ""))
            if c.get("image", "").endswith(":latest") or ":" not in c.get("image", ""):
                self.error(cwhere, "pin the image tag: :latest makes the kubelet pull from a registry kind cannot reach")
        if gateway:
            pass  # resources are on the istio-proxy container itself
        elif pod_labels(dep).get("sidecar.istio.io/inject") == "true":
            annotations = dep.body["spec"]["template"]["metadata"].get("annotations", {})
            for key in ("proxyCPU", "proxyMemory", "proxyCPULimit", "proxyMemoryLimit"):
                if f"sidecar.istio.io/{key}" not in annotations:
                    self.error(dep.where, f"annotation sidecar.istio.io/{key} is missing (requests/limits of istio-proxy)")
        elif pod_labels(dep).get("sidecar.istio.io/inject") != "false":
            self.error(dep.where, 'pod label sidecar.istio.io/inject must say "true" or "false" explicitly')

    def check_image(self, where, image):
        m = re.fullmatch(r"tcpsteer/([a-z0-9-]+):([0-9A-Za-z._-]+)", image)
        if not m:
            self.error(where, f"image {image!r} is not tcpsteer/NAME:TAG")
            return
        dockerfile = self.repo / "deploy" / "docker" / f"{m.group(1)}.Dockerfile"
        if not dockerfile.exists():
            self.error(where, f"image {image}: no {dockerfile.relative_to(self.repo)} builds it")
        names = script_names(self)
        if names.get("IMAGE_TAG") != m.group(2):
            self.error(where, f"image tag {m.group(2)} differs from IMAGE_TAG={names.get('IMAGE_TAG')} in scripts/kind-demo.sh")

    def run(self, docs):
        for folder in docs.values():
            for doc in folder:
                self.validate_schema(doc)
        for folder in ("client", "base", "gateways"):
            for doc in docs.get(folder, []):
                if doc.kind == "Deployment":
                    self.check_pod_security(doc)
        for plugin in PLUGIN_SETS:
            for overlays in ([], OVERLAY_SETS):
                sets = ["client", "base", plugin] + overlays
                self.check_set("+".join(sets), apply_sets(docs, sets))
        self.check_gateway_set(apply_sets(docs, ["client", "gateways"]))
        if self.kubectl:
            self.check_rendered()
        self.check_dockerfiles()
        self.check_kustomizations()
        self.check_kind(docs["kind"][0])
        return self.errors

    def check_kustomizations(self):
        """Each folder's kustomization.yaml lists exactly the folder's manifests (kubectl apply -k and
        kind-demo.sh's file-by-file apply deploy the same documents)."""
        k8s = self.repo / "deploy" / "k8s"
        for folder in sorted(p for p in k8s.iterdir() if p.is_dir()):
            path = folder / "kustomization.yaml"
            where = str(path.relative_to(self.repo))
            if not path.exists():
                self.error(where, "missing: every manifest folder has one")
                continue
            body = yaml.safe_load(path.read_text())
            files = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
            listed = set(body.get("resources", [])) | {p["path"] for p in body.get("patches", []) if "path" in p}
            parent = {"base": "../client", "gateways": "../client"}.get(folder.name)
            if folder.name in PLUGIN_SETS:
                parent = "../base"
            expected = files | ({parent} if parent else set())
            if folder.name == "selection":  # the gateway variant plus a second client namespace
                expected = files | {"../gateways", "team-b"}
            if folder.name in OVERLAY_SETS and body.get("kind") != "Component":
                self.error(where, "an overlay set is a kustomize Component (kind: Component)")
            if listed != expected:
                self.error(where, f"lists {sorted(listed)}, but the folder holds {sorted(expected)}")

    def check_dockerfiles(self):
        for path in sorted((self.repo / "deploy" / "docker").glob("*.Dockerfile")):
            text = path.read_text()
            where = str(path.relative_to(self.repo))
            args = dict(re.findall(r"^ARG\s+([A-Z_]+)=(\S+)", text, re.M))
            froms = [re.sub(r"\$\{([A-Z_]+)\}", lambda m: args.get(m.group(1), m.group(0)), image)
                     for image in re.findall(r"^FROM\s+(\S+)", text, re.M)]
            if path.stem == "plugin":
                if froms[-1:] != ["scratch"] or "/plugin.wasm" not in text:
                    self.error(where, "the plugin image must be FROM scratch with the module at /plugin.wasm")
                continue
            if len(froms) < 2:
                self.error(where, "expected a multi-stage build (a build stage and a runtime stage)")
            for image in froms:
                if not re.search(r":\d[\w.-]*$", image):
                    self.error(where, f"base image {image} is not pinned to a version tag")
            if "scripts/install-deps.sh" not in text:
                self.error(where, "the build stage must install with scripts/install-deps.sh")
            users = re.findall(r"^USER\s+(\S+)", text, re.M)
            if not users or users[-1].split(":")[0] in ("0", "root"):
                self.error(where, "the runtime stage must end with a non-root numeric USER")
            if f"/usr/local/bin/{path.stem}" not in text:
                self.error(where, f"the image must run /usr/local/bin/{path.stem}")
        self.check_dockerfile_build_commands()

    def check_dockerfile_build_commands(self):
        """The build stages' CMake calls use options, targets and output paths the project has."""
        cmake_text = "\n".join(p.read_text() for p in self.repo.rglob("CMakeLists.txt") if "build" not in p.parts)
        cache_vars = set(re.findall(r"option\((\w+)", cmake_text)) | set(
            re.findall(r"set\((\w+)[^)]*CACHE", cmake_text))
        targets = set(re.findall(r"add_executable\(([\w-]+)", cmake_text)) | set(
            re.findall(r"tcpsteer_app\(([\w-]+)", cmake_text))
        for path in sorted((self.repo / "deploy" / "docker").glob("*.Dockerfile")):
            # Instructions only: comments show docker commands (--target module), not CMake calls.
            text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
            where = str(path.relative_to(self.repo))
            for var in re.findall(r"-D(\w+)=", text):
                if not var.startswith("CMAKE_") and var not in cache_vars:
                    self.error(where, f"-D{var} is not an option of the project's CMake files")
            for target in re.findall(r"--target (\S+)", text):
                if target not in targets:
                    self.error(where, f"--target {target}: no such executable in the CMake files")
                elif f"/build/apps/{target}" not in text:
                    self.error(where, f"the build output of {target} is /build/apps/{target} (apps/CMakeLists.txt)")
            toolchain = re.search(r"-DCMAKE_TOOLCHAIN_FILE=(\S+)", text)
            if toolchain and not (self.repo / toolchain.group(1)).exists():
                self.error(where, f"toolchain file {toolchain.group(1)} does not exist")

    def check_kind(self, doc):
        names = script_names(self)
        if doc.body.get("name") != names.get("CLUSTER_NAME"):
            self.error(doc.where, f"cluster name {doc.body.get('name')!r} differs from CLUSTER_NAME in scripts/kind-demo.sh")


def apply_sets(docs, sets):
    """Documents in effect after applying the folders in order (later documents replace same kind/name)."""
    effective = {}
    for folder in sets:
        for doc in docs.get(folder, []):
            effective[(doc.kind, doc.name)] = doc
    return list(effective.values())


def is_gateway(dep):
    """A Deployment filled in by Istio's gateway injection template."""
    annotations = dep.body["spec"]["template"]["metadata"].get("annotations", {})
    return annotations.get("inject.istio.io/templates") == "gateway"


def pod_labels(dep):
    return dep.body["spec"]["template"]["metadata"].get("labels", {})


def labels_match(match_labels, labels):
    """A plain label map (Service selector, workloadSelector, matchLabels) against pod labels."""
    return selector_matches({"matchLabels": match_labels}, labels)


def selector_matches(selector, labels):
    """A LabelSelector (matchLabels, matchExpressions with In); an empty one selects nothing here."""
    match_labels = selector.get("matchLabels", {})
    expressions = selector.get("matchExpressions", [])
    if not match_labels and not expressions:
        return False
    return all(labels.get(k) == v for k, v in match_labels.items()) and all(
        labels.get(e["key"]) in e["values"] for e in expressions if e["operator"] == "In")


def container_ports(dep):
    ports = {}
    for c in dep.body["spec"]["template"]["spec"].get("containers", []):
        for p in c.get("ports", []):
            ports[p.get("name", str(p["containerPort"]))] = p["containerPort"]
    return ports


def wasm_mount(checker, client):
    """(ConfigMap name, mount path) of the module volume from the userVolume annotations."""
    annotations = client.body["spec"]["template"]["metadata"].get("annotations", {})
    names = script_names(checker)
    try:
        volumes = json.loads(annotations.get("sidecar.istio.io/userVolume", "null"))
        mounts = json.loads(annotations.get("sidecar.istio.io/userVolumeMount", "null"))
    except json.JSONDecodeError as e:
        checker.error(client.where, f"userVolume/userVolumeMount annotation is not JSON: {e}")
        return None
    if not isinstance(volumes, dict) or not isinstance(mounts, dict):
        checker.error(client.where, "sidecar.istio.io/userVolume and userVolumeMount must be JSON objects keyed by "
                      "volume name (the injection template ranges over keys; the array form mounts nothing)")
        return None
    for volume, source in volumes.items():
        if source.get("configMap", {}).get("name") == names.get("WASM_CONFIGMAP"):
            if volume not in mounts:
                checker.error(client.where, f"userVolume {volume} has no userVolumeMount")
                return None
            return names["WASM_CONFIGMAP"], mounts[volume]["mountPath"].rstrip("/")
    checker.error(client.where, f"no userVolume mounts the ConfigMap {names.get('WASM_CONFIGMAP')!r} "
                  "that scripts/kind-demo.sh creates")
    return None


def script_names(checker):
    """Names scripts/kind-demo.sh defines once (NAME=value lines at its top)."""
    if not hasattr(checker, "_script_names"):
        text = (checker.repo / "scripts" / "kind-demo.sh").read_text()
        checker._script_names = dict(re.findall(r"^([A-Z_]+)=\$\{[A-Z_]+:-([^}]*)\}$", text, re.M))
        checker._script_names.update(re.findall(r"^([A-Z_]+)=([A-Za-z0-9._/-]+)$", text, re.M))
    return checker._script_names


# ---- self-test -----------------------------------------------------------------------------------
def find(docs, folder, kind, name=None):
    return next(d for d in docs[folder] if d.kind == kind and (name is None or d.name == name))


def client_of(docs):
    return find(docs, "client", "Deployment", "demo-client").body


def envoy_doc(docs, name):
    return next(d for d in docs["envoy"] if d.path.endswith("/" + name)).body


def envoyfilter_value(docs):
    return find(docs, "envoyfilter", "EnvoyFilter").body["spec"]["configPatches"][0]["patch"]["value"]


def set_config(docs, text):
    envoyfilter_value(docs)["typed_config"]["config"]["configuration"]["value"] = text


MUTATIONS = [
    ("unknown field in a container", lambda d: client_of(d)["spec"]["template"]["spec"]["containers"][0].update(
        {"imagePullPolicyy": "Always"}), "schema: at spec.template.spec.containers.0"),
    ("typo in the Envoy wasm filter", lambda d: envoyfilter_value(d).update(
        {"typed_confg": envoyfilter_value(d).pop("typed_config")}), "patch.value: schema"),
    ("bad runtime", lambda d: envoyfilter_value(d)["typed_config"]["config"]["vm_config"].update(
        {"runtime": "envoy.wasm.runtime.v9"}), "schema: at typed_config.config.vm_config.runtime"),
    ("target Service that does not exist", lambda d: set_config(
        d, '{"targets": ["outbound|{port}||egress1.tcpsteer.svc.cluster.local", '
           '"outbound|{port}||egress3.tcpsteer.svc.cluster.local"]}'), "names Service egress3.tcpsteer"),
    ("target port the Service lacks", lambda d: set_config(
        d, '{"targets": ["outbound|8443||egress1.tcpsteer.svc.cluster.local", '
           '"outbound|{port}||egress2.tcpsteer.svc.cluster.local"]}'), "Service egress1 has no port 8443"),
    ("match_ports skipping the listener", lambda d: set_config(d, '{"match_ports": [8443]}'),
     "skip that port"),
    ("module filename vs mount", lambda d: envoyfilter_value(d)["typed_config"]["config"]["vm_config"]["code"][
        "local"].update({"filename": "/etc/wasm/tcpsteer.wasm"}), "is not the mounted module"),
    ("WasmPlugin url vs mount", lambda d: find(d, "wasmplugin", "WasmPlugin").body["spec"].update(
        {"url": "file:///var/local/lib/wasm/filter.wasm"}), "does not match the mounted module"),
    ("userVolume in array form", lambda d: client_of(d)["spec"]["template"]["metadata"]["annotations"].update(
        {"sidecar.istio.io/userVolume": '[{"name":"tcpsteer-wasm","configMap":{"name":"tcpsteer-wasm"}}]'}),
     "must be JSON objects keyed by volume name"),
    ("deprecated tcp_proxy alias", lambda d: find(d, "envoyfilter", "EnvoyFilter").body["spec"]["configPatches"][0][
        "match"]["listener"]["filterChain"]["filter"].update({"name": "envoy.tcp_proxy"}), "compares exact strings"),
    ("listener name vs ServiceEntry address", lambda d: find(d, "envoyfilter", "EnvoyFilter").body["spec"][
        "configPatches"][0]["match"]["listener"].update({"name": "0.0.0.0_443"}), "is not one of the ServiceEntry"),
    ("filter on the HTTP port", lambda d: find(d, "wasmplugin", "WasmPlugin").body["spec"]["match"][0].update(
        {"ports": [{"number": 80}]}), "HTTP connection manager"),
    ("writable root filesystem", lambda d: client_of(d)["spec"]["template"]["spec"]["containers"][0][
        "securityContext"].update({"readOnlyRootFilesystem": False}), "readOnlyRootFilesystem must be true"),
    ("capabilities kept", lambda d: find(d, "base", "Deployment", "egress2").body["spec"]["template"]["spec"][
        "containers"][0]["securityContext"].pop("capabilities"), "drop must contain ALL"),
    ("no limits", lambda d: client_of(d)["spec"]["template"]["spec"]["containers"][0]["resources"].pop("limits"),
     "resources.limits.cpu is missing"),
    ("no probe", lambda d: find(d, "base", "Deployment", "egress1").body["spec"]["template"]["spec"]["containers"][
        0].pop("livenessProbe"), "livenessProbe is missing"),
    ("image without a Dockerfile", lambda d: client_of(d)["spec"]["template"]["spec"]["containers"][0].update(
        {"image": "tcpsteer/go-client:0.1.0"}), "no deploy/docker/go-client.Dockerfile"),
    ("Service selector vs labels", lambda d: find(d, "base", "Service", "egress2").body["spec"].update(
        {"selector": {"app": "egress-2"}}), "matches 0 Deployments"),
    ("EnvoyFilter selecting the egress pods", lambda d: find(d, "envoyfilter", "EnvoyFilter").body["spec"].update(
        {"workloadSelector": {"labels": {"app": "egress1"}}}), "must select exactly the client pods"),
    ("OCI form without digest", lambda d: find(d, "wasmplugin-oci", "WasmPlugin").body["spec"].pop("sha256"),
     "must carry sha256"),
    ("wrong namespace", lambda d: find(d, "base", "Service", "egress1").body["metadata"].update(
        {"namespace": "default"}), "expected 'tcpsteer'"),
    ("envoy.yaml wasm filter typo", lambda d: envoy_doc(d, "envoy.yaml")["static_resources"]["listeners"][0][
        "filter_chains"][0]["filters"][0]["typed_config"]["config"].update({"vm_confg": {}}),
     "deploy/envoy/envoy.yaml listener tcpsteer_http filter 0: schema"),
    ("egress gateway takes any name", lambda d: envoy_doc(d, "egress-gateway.yaml")["static_resources"][
        "listeners"][0]["filter_chains"][0].pop("filter_chain_match"),
     "deploy/envoy/egress-gateway.yaml listener egress_gateway chain 0: a chain without server_names"),
    ("egress gateway without the TLS inspector", lambda d: envoy_doc(d, "egress-gateway.yaml")[
        "static_resources"]["listeners"][0].pop("listener_filters"),
     "deploy/envoy/egress-gateway.yaml listener egress_gateway: no envoy.filters.listener.tls_inspector"),
]

def gateway_doc(docs, kind, name):
    return find(docs, "gateways", kind, name).body


def gateway_policy(docs, name):
    return gateway_doc(docs, "NetworkPolicy", name)["spec"]


MUTATIONS += [
    ("VirtualService bound to the mesh too", lambda d: gateway_doc(d, "VirtualService", "api-via-egress-gateways")[
        "spec"].update({"gateways": ["mesh", "egress1", "egress2"]}), "bind it to the gateways only"),
    ("Gateway terminating TLS", lambda d: gateway_doc(d, "Gateway", "egress2")["spec"]["servers"][0].update(
        {"tls": {"mode": "SIMPLE", "credentialName": "x"}}), "tls.mode PASSTHROUGH"),
    ("Gateway mode typo", lambda d: gateway_doc(d, "Gateway", "egress1")["spec"]["servers"][0].update(
        {"tls": {"mode": "PASSTROUGH"}}), "schema: at spec.servers.0.tls.mode"),
    ("Gateway for another host", lambda d: gateway_doc(d, "Gateway", "egress1")["spec"]["servers"][0].update(
        {"hosts": ["*"]}), "differ from the ServiceEntry's"),
    ("hop wrapped in mTLS", lambda d: gateway_doc(d, "DestinationRule", "egress2-plain-hop")["spec"].update(
        {"trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}), "no DestinationRule for egress2.tcpsteer-egress"),
    ("filter targets the stand-ins' namespace", lambda d: find(d, "gateways", "EnvoyFilter").body["spec"][
        "configPatches"][0]["patch"]["value"]["typed_config"]["config"]["configuration"].update(
        {"value": '{"targets": ["outbound|{port}||egress1.tcpsteer.svc.cluster.local", '
                  '"outbound|{port}||egress2.tcpsteer.svc.cluster.local"]}'}), "are not the gateways' clusters"),
    ("filter targets swapped", lambda d: find(d, "gateways", "EnvoyFilter").body["spec"][
        "configPatches"][0]["patch"]["value"]["typed_config"]["config"]["configuration"].update(
        {"value": '{"targets": ["outbound|{port}||egress2.tcpsteer-egress.svc.cluster.local", '
                  '"outbound|{port}||egress1.tcpsteer-egress.svc.cluster.local"]}'}), "(egress1 first)"),
    ("client allowed to the internet", lambda d: gateway_policy(d, "demo-client-egress")["egress"].append(
        {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "internet"}}}]}),
     "client -> stand-in:8443 must be denied"),
    ("client policy on the Service port", lambda d: gateway_policy(d, "demo-client-egress")["egress"][0].update(
        {"ports": [{"protocol": "TCP", "port": 443}]}), "egress of client -> egress1:8443 is not allowed"),
    ("stand-in open to all", lambda d: gateway_policy(d, "standin-from-gateways-only")["ingress"][0].pop("from"),
     "ingress of client -> stand-in:8443 must be denied"),
    ("stand-in Service with a cluster IP", lambda d: gateway_doc(d, "Service", "standin")["spec"].pop("clusterIP"),
     "must be headless"),
    ("ServiceEntry endpoint port by number", lambda d: gateway_doc(d, "ServiceEntry", "external-api")["spec"][
        "endpoints"][0].update({"ports": {"443": 8443}}), "is not a ServiceEntry port name"),
    ("ServiceEntry without DNS", lambda d: gateway_doc(d, "ServiceEntry", "external-api")["spec"].update(
        {"resolution": "NONE"}), "resolution must be DNS"),
    ("gateway Service port named http", lambda d: gateway_doc(d, "Service", "egress1")["spec"]["ports"][0].update(
        {"name": "http"}), "one port, named tls"),
    ("gateway without the role label", lambda d: gateway_doc(d, "Deployment", "egress2")["spec"]["template"][
        "metadata"]["labels"].pop("tcpsteer.example/role"), "the policies use it"),
    ("gateway with a pinned image", lambda d: gateway_doc(d, "Deployment", "egress1")["spec"]["template"]["spec"][
        "containers"][0].update({"image": "istio/proxyv2:1.30.3"}), "with image: auto"),
]
HOST_MUTATIONS = [
    ("configuration the module refuses", lambda d: set_config(
        d, '{"targets": ["outbound|{port}||egress1.tcpsteer.svc.cluster.local"], "match_ports": [443], '
           '"on_unroutable": "drop"}'), "tcpsteer.wasm refuses this configuration"),
    ("rule that sends everything to egress1", lambda d: set_config(
        d, '{"targets": ["outbound|{port}||egress1.tcpsteer.svc.cluster.local", '
           '"outbound|{port}||egress2.tcpsteer.svc.cluster.local"], "rules": [{"source_cidr": "0.0.0.0/0", '
           '"target": 0}]}'), "source on port 443 to 'outbound|443||egress1"),
]


def self_test(repo, schema_dir, host, module):
    pristine = load_docs(repo)
    baseline = Checker(repo, schema_dir, host, module).run(copy.deepcopy(pristine))
    if baseline:
        print("self-test needs clean manifests first:\n  " + "\n  ".join(baseline))
        return 1
    failures = 0
    mutations = MUTATIONS + (HOST_MUTATIONS if host else [])
    for label, mutate, expected in mutations:
        docs = copy.deepcopy(pristine)
        mutate(docs)
        errors = Checker(repo, schema_dir, host, module).run(docs)
        hit = [e for e in errors if expected in e]
        print(f"{'ok  ' if hit else 'FAIL'} {label}: {hit[0] if hit else 'not reported; got: ' + repr(errors[:3])}")
        failures += 0 if hit else 1
    print(f"self-test: {len(mutations) - failures}/{len(mutations)} broken manifests reported")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parents[2])
    parser.add_argument("--schemas", type=pathlib.Path, default=None, help="default: tests/fixtures/schemas")
    parser.add_argument("--host", help="tcpsteer-host binary: replay each filter configuration in the real module")
    parser.add_argument("--module", help="tcpsteer.wasm (with --host)")
    parser.add_argument("--kubectl", help="kubectl binary: also render every kustomization and validate the output")
    parser.add_argument("--explain", help="tcpsteer binary: ask tcpsteer explain what the selection variant routes to")
    parser.add_argument("--self-test", action="store_true", help="prove that broken manifests are reported")
    args = parser.parse_args()
    schema_dir = args.schemas or args.repo / "tests" / "fixtures" / "schemas"
    if bool(args.host) != bool(args.module):
        parser.error("--host and --module go together")
    if args.self_test:
        return self_test(args.repo, schema_dir, args.host, args.module)
    docs = load_docs(args.repo)
    errors = Checker(args.repo, schema_dir, args.host, args.module, args.kubectl, args.explain).run(docs)
    count = sum(len(v) for v in docs.values())
    for e in errors:
        print(e)
    print(f"{count} documents in {len(docs)} sets: {len(errors)} problem(s)"
          + (" (filter configurations replayed in the real module)" if args.host else "")
          + (" (kustomizations rendered by kubectl)" if args.kubectl else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
