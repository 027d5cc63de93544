#!/usr/bin/env python3
"""The filter's cost per connection lifecycle, counted by the interpreter (deterministic: the counts
do not move with machine load), against per-case budgets. Cases: the Istio preset and a rules
configuration, the host at warn (the decision line dropped, Istio's default) and at info (written),
for one pod's traffic (its own IP as every source, as in a sidecar) and for cold traffic (a new
source and destination every connection). The first connection (one-time growth) is left out.

The budgets guard what issue #11 reached; its goals (1,500 / 3,000) are printed beside them. One
pod's traffic with the line dropped is held to the goal itself.
usage: cost_budget.py TCPSTEER_HOST MODULE
"""
import json
import subprocess
import sys

RULES = ('{"targets": ["a-{port}", "b-{port}", "c-{port}"], "rules": [{"source_cidr": "10.1.0.0/16",'
         ' "target": 2}, {"last_octet": [100, 199], "target": 1}], "port_map": {"443": 8443}}')

# (name, configuration, host log level, traffic, budget, goal)
CASES = [
    ("istio, line off, sidecar", "istio", "warn", "sidecar", 1500, 1500),
    ("istio, line off, cold", "istio", "warn", "cold", 2150, 1500),
    ("istio, line on, sidecar", "istio", "info", "sidecar", 2200, 3000),
    ("istio, line on, cold", "istio", "info", "cold", 2800, 3000),
    ("rules, line off, cold", RULES, "warn", "cold", 2300, 1500),
    ("rules, line on, cold", RULES, "info", "cold", 2950, 3000),
]
CONNECTIONS = 40


def connection(traffic, n):
    if traffic == "sidecar":
        return f"10.244.0.13:{40000 + n},93.184.216.34:443"
    return f"10.{n % 7}.{n // 7}.{n % 250}:40000,93.184.{n}.34:443"


def measure(host, module, configuration, level, traffic):
    args = [host, "replay", module, "--config", configuration, "--log-level", level]
    for n in range(CONNECTIONS):
        args += ["--conn", connection(traffic, n)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    events = [json.loads(line) for line in out.splitlines()]
    counts = [e["lifecycle_instructions"] for e in events if e["event"] == "connection"]
    configure = next(e for e in events if e["event"] == "configure")
    if len(counts) != CONNECTIONS or configure["status"] != "ok":
        raise SystemExit(f"replay did not run {CONNECTIONS} connections: {out[-400:]}")
    routed = [e for e in events if e["event"] == "connection" and e["filter_state"]]
    if len(routed) != CONNECTIONS:
        raise SystemExit(f"only {len(routed)} of {CONNECTIONS} connections were routed")
    steady = counts[1:]
    return sum(steady) / len(steady), max(steady), configure["on_configure_instructions"]


def main():
    host, module = sys.argv[1], sys.argv[2]
    failed = 0
    for name, configuration, level, traffic, budget, goal in CASES:
        mean, worst, configure = measure(host, module, configuration, level, traffic)
        ok = mean <= budget
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {mean:.0f} wasm instructions per lifecycle "
              f"(max {worst}; budget {budget}, goal {goal}); on_configure {configure}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
